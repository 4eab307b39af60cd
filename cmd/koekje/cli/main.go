package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// Main runs koekje as a process: its arguments and environment, ended by
// SIGINT or SIGTERM, and returns the exit code. The e2e tests' binary calls
// it too, to stand in for the built program.
func Main() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := Run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp): // -h printed the flags
		return 0
	case errors.Is(err, ErrInconclusive): // a scan that could not see all
		return 2
	case errors.Is(err, ErrFailed):
		return 1
	default:
		fmt.Fprintln(os.Stderr, "koekje:", err)
		return 1
	}
}
