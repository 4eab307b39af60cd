package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// healthCmd asks the server at --addr for /healthz and prints the status
// it got ("ok", or "degraded: " and why); it fails unless 200.
func healthCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("health", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", envOr(getenv, "KOEKJE_ADDR", "127.0.0.1:8080"), "the server's address (KOEKJE_ADDR)")
	if err := parseAnywhere(fs, args); err != nil {
		return err
	}
	host, port, err := net.SplitHostPort(*addr)
	if err != nil {
		return err
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+net.JoinHostPort(host, port)+"/healthz", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var answer struct {
		Status, Reason string
		Error          struct{ Message string }
	}
	json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&answer)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthz answered %d %s", resp.StatusCode, answer.Error.Message)
	}
	if answer.Status == "" {
		return errors.New("healthz answered 200 without a status: is koekje serving at " + *addr + "?")
	}
	if answer.Reason != "" {
		fmt.Fprintf(stdout, "%s: %s\n", answer.Status, answer.Reason)
	} else {
		fmt.Fprintln(stdout, answer.Status)
	}
	return nil
}
