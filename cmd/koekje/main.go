// Command koekje runs the Koekje consent server and its auditor tools.
package main

import (
	"os"

	"github.com/koekje/koekje/cmd/koekje/cli"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = ""

func main() {
	cli.Version = version
	os.Exit(cli.Main())
}
