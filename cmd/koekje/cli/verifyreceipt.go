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
	"github.com/koekje/koekje/server/translog"
)

// readPolicy reads a witness policy file.
func readPolicy(path string) (*translog.Policy, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	p, err := translog.ParsePolicy(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}

// verifyReceiptCmd checks a receipt offline: its signature against a JWKS
// file and, with --proof, its place in the transparency log under the log's
// witness policy (its key, its witnesses and how many must cosign), which
// the verifier pinned from /log/policy. A policy without witnesses is
// accepted only when asked for: such a proof rests on the log's word alone.
func verifyReceiptCmd(_ context.Context, args []string, _ func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("verify-receipt", flag.ContinueOnError)
	fs.SetOutput(stderr)
	keys := fs.String("keys", "", "the JWKS file (GET /api/v1/keys), required")
	proofFile := fs.String("proof", "", "the receipt's tlog-proof file (GET …/proof)")
	policyFile := fs.String("policy", "", "the log's witness policy you pinned (GET /log/policy), required with --proof")
	allowUnwitnessed := fs.Bool("allow-unwitnessed", false, "accept a policy without witnesses (\"quorum none\"): the log's signature alone")
	if err := parseAnywhere(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 || *keys == "" || (*proofFile != "" && *policyFile == "") {
		return errors.New("usage: koekje verify-receipt --keys JWKS [--proof FILE --policy FILE [--allow-unwitnessed]] RECEIPT")
	}
	var policy *translog.Policy
	if *policyFile != "" {
		var err error
		if policy, err = readPolicy(*policyFile); err != nil {
			return err
		}
		if policy.Unwitnessed() && !*allowUnwitnessed {
			return fmt.Errorf("--policy %s: the log has no witnesses (quorum none), so its proofs rest on its own signature alone; give --allow-unwitnessed to accept that", *policyFile)
		}
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
	rc := proof.CheckReceipt(jwt, jwks, tp, policy)
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	enc.Encode(rc)
	if !rc.OK {
		fmt.Fprintln(stderr, "koekje: the receipt does not verify:", rc.Error)
		return ErrFailed
	}
	return nil
}
