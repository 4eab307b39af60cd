package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/koekje/koekje/config"
)

// tokenCmd makes a new admin token and prints the config entry holding its hash.
func tokenCmd(_ context.Context, args []string, _ func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	name := fs.String("name", "auditor", "the token's name")
	scope := fs.String("scope", "audit", "audit (read and export) or admin")
	if err := parseAnywhere(fs, args); err != nil {
		return err
	}
	// The entry printed must be one check-config accepts.
	if !slices.Contains(config.Scopes, *scope) {
		return fmt.Errorf("--scope %q: want one of %s", *scope, strings.Join(config.Scopes, ", "))
	}
	tok := newToken()
	sum := sha256.Sum256([]byte(tok))
	fmt.Fprintf(stdout, "token (give it to the holder; it is not stored): %s\n\nconfig entry:\ntokens:\n  - name: %s\n    scope: %s\n    sha256: sha256:%s\n",
		tok, *name, *scope, hex.EncodeToString(sum[:]))
	return nil
}
