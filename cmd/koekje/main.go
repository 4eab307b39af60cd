// Command koekje runs the Koekje consent server and its auditor tools.
package main

import (
	"os"

	"github.com/koekje/koekje/cmd/koekje/cli"
)

// version, revision and built stamp a release, set at build time with
// -ldflags "-X main.version=v1.2.0 -X main.revision=COMMIT -X main.built=TIME".
var version, revision, built string

func main() {
	cli.Version, cli.Revision, cli.Built = version, revision, built
	os.Exit(cli.Main())
}
