package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"runtime/debug"
)

// Version is what koekje version prints; main sets it from its own
// version, set at build time with -ldflags "-X main.version=…". Empty, the
// module version and the VCS revision come from the build info.
var Version = ""

// versionString is the version as koekje version prints it.
func versionString() string {
	if Version != "" {
		return Version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	if v == "" || v == "(devel)" {
		v = "devel"
	}
	var rev, at, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = ", modified"
			}
		}
	}
	if rev != "" {
		v += fmt.Sprintf(" (%.12s, %s%s)", rev, at, dirty)
	}
	return v + " " + bi.GoVersion
}

func versionCmd(_ context.Context, args []string, _ func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("version takes no arguments")
	}
	fmt.Fprintln(stdout, "koekje", versionString())
	return nil
}
