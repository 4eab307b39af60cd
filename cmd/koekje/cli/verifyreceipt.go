package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/koekje/koekje/server/proof"
)

// verifyReceiptCmd checks a receipt offline: its signature against a JWKS
// file and, with --proof, its place in the transparency log.
func verifyReceiptCmd(_ context.Context, args []string, _ func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("verify-receipt", flag.ContinueOnError)
	fs.SetOutput(stderr)
	keys := fs.String("keys", "", "the JWKS file (GET /api/v1/keys), required")
	proofFile := fs.String("proof", "", "the receipt's tlog-proof file (GET …/proof)")
	logKey := fs.String("log-key", "", "the log's verifier key you pinned (needed with --proof)")
	var witnessKeys []string
	fs.Func("witness-key", "a witness's verifier key (repeat for more)", func(v string) error { witnessKeys = append(witnessKeys, v); return nil })
	witnesses := fs.Int("witnesses", 0, "how many of those witnesses must have cosigned")
	if err := parseAnywhere(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 || *keys == "" || (*proofFile != "" && *logKey == "") {
		return errors.New("usage: koekje verify-receipt --keys JWKS [--proof FILE --log-key KEY [--witness-key KEY… --witnesses N]] RECEIPT")
	}
	raw, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		return err
	}
	jwt := strings.TrimSpace(string(raw))
	var answer struct{ JWT string }
	if json.Unmarshal(raw, &answer) == nil && answer.JWT != "" {
		jwt = answer.JWT // the receipt API's answer, {"jwt": …, "claims": …}
	}
	jwks, err := os.ReadFile(*keys)
	if err != nil {
		return err
	}
	var tp []byte
	if *proofFile != "" {
		if tp, err = os.ReadFile(*proofFile); err != nil {
			return err
		}
	}
	rc := proof.CheckReceipt(jwt, jwks, tp, *logKey, witnessKeys, *witnesses)
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	enc.Encode(rc)
	if !rc.OK {
		fmt.Fprintln(stderr, "koekje: the receipt does not verify:", rc.Error)
		return ErrFailed
	}
	return nil
}
