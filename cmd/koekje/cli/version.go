package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"

	"github.com/koekje/koekje/server/store"
)

// Version, Revision and Built stamp a release; main sets them from its
// own, given at build time with -ldflags "-X main.version=v1.2.0
// -X main.revision=COMMIT -X main.built=TIME" (the release script and the
// Dockerfile do). Left empty, they come from Go's build info: the module
// version and the VCS revision and time that go build records in a git
// checkout. A build with neither, such as one from a copy without .git,
// says it is unstamped.
var Version, Revision, Built string

// build is what the binary knows of how it was built.
type build struct {
	version, revision, time, goVersion string
	modified                           bool
}

func buildInfo() build {
	b := build{version: Version, revision: Revision, time: Built, goVersion: runtime.Version()}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return b
	}
	b.goVersion = bi.GoVersion
	if b.version == "" && bi.Main.Version != "(devel)" {
		b.version = bi.Main.Version
	}
	if b.revision != "" {
		return b
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			b.revision = s.Value
		case "vcs.time":
			b.time = s.Value
		case "vcs.modified":
			b.modified = s.Value == "true"
		}
	}
	return b
}

// stamped reports whether the build says which code it is.
func (b build) stamped() bool { return b.version != "" || b.revision != "" }

// versionString is the version in one line, as the server logs it.
func versionString() string {
	b := buildInfo()
	if !b.stamped() {
		return "devel (unstamped) " + b.goVersion
	}
	v := b.version
	if v == "" {
		v = "devel"
	}
	if b.revision != "" {
		dirty := ""
		if b.modified {
			dirty = ", modified"
		}
		v += fmt.Sprintf(" (%.12s, %s%s)", b.revision, b.time, dirty)
	}
	return v + " " + b.goVersion
}

func versionCmd(_ context.Context, args []string, _ func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	fs.SetOutput(stderr)
	if err := parseAnywhere(fs, args); err != nil {
		return err
	}
	b := buildInfo()
	switch {
	case !b.stamped():
		fmt.Fprintln(stdout, "koekje devel, unstamped: built without a version or a VCS revision (release builds are stamped; see Upgrade in the README)")
	case b.version == "":
		fmt.Fprintln(stdout, "koekje devel")
	default:
		fmt.Fprintln(stdout, "koekje", b.version)
	}
	if b.revision != "" {
		mod := ""
		if b.modified {
			mod = ", with uncommitted changes"
		}
		fmt.Fprintf(stdout, "revision %s (%s%s)\n", b.revision, b.time, mod)
	}
	// Stores of files first: the one a first start uses.
	drivers := store.Drivers()
	slices.SortStableFunc(drivers, func(a, b *store.Driver) int {
		switch {
		case a.File() == b.File():
			return 0
		case a.File():
			return -1
		}
		return 1
	})
	var schemas []string
	for _, d := range drivers {
		schemas = append(schemas, fmt.Sprintf("%d (%s)", d.Schema, d.Name))
	}
	fmt.Fprintf(stdout, "database schema %s\n", strings.Join(schemas, ", "))
	fmt.Fprintf(stdout, "%s %s/%s\n", b.goVersion, runtime.GOOS, runtime.GOARCH)
	return nil
}
