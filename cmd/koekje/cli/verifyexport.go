package cli

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/koekje/koekje/server/export"
	"github.com/koekje/koekje/server/proof"
	"github.com/koekje/koekje/server/translog"
)

// verifyExportCmd checks an NDJSON or CSV export offline, against the
// public log (over HTTP, or saved to a directory) under the witness policy
// the auditor pinned, and the site's audit key: no database and no key
// file. As verify-receipt, it takes a policy without witnesses only when
// asked to.
func verifyExportCmd(ctx context.Context, args []string, _ func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("verify-export", flag.ContinueOnError)
	fs.SetOutput(stderr)
	logURL := fs.String("log", "", "the consent server's public URL (its /log/… is read)")
	tiles := fs.String("tiles", "", "a directory holding the log saved as served (checkpoint, tile/…), instead of --log")
	policyFile := fs.String("policy", "", "the log's witness policy you pinned (GET /log/policy), required")
	allowUnwitnessed := fs.Bool("allow-unwitnessed", false, "accept a policy without witnesses (\"quorum none\"): the log's signature alone")
	auditKey := fs.String("audit-key", "", "the site's audit key, hex (koekje keys audit-key --site S), required")
	keysFrom := fs.String("keys", "", "the site's signing keys, a JWKS file or URL (GET /api/v1/keys) you pinned: every purge the export names must be signed by one; required when it names a purge")
	if err := parseAnywhere(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 || *policyFile == "" || *auditKey == "" || (*logURL == "") == (*tiles == "") {
		return errors.New("usage: koekje verify-export --log URL|--tiles DIR --policy FILE [--allow-unwitnessed] --audit-key HEX [--keys FILE|URL] FILE")
	}
	key, err := hex.DecodeString(*auditKey)
	if err != nil || len(key) != 32 {
		return errors.New("--audit-key: want 64 hex digits")
	}
	policy, err := readPolicy(*policyFile)
	if err != nil {
		return err
	}
	if policy.Unwitnessed() && !*allowUnwitnessed {
		return fmt.Errorf("--policy %s: the log has no witnesses (quorum none), so the export is held to the log's own signature alone; give --allow-unwitnessed to accept that", *policyFile)
	}
	var keys map[string]ed25519.PublicKey
	if *keysFrom != "" {
		if keys, err = readJWKS(ctx, *keysFrom); err != nil {
			return fmt.Errorf("--keys %s: %w", *keysFrom, err)
		}
	}
	var log export.Log = translog.Dir{Root: *tiles}
	if *logURL != "" {
		log = &translog.Remote{Base: strings.TrimSuffix(*logURL, "/") + "/log/", Client: &http.Client{Timeout: 30 * time.Second}, Ctx: ctx}
	}
	f, err := os.Open(fs.Arg(0))
	if err != nil {
		return err
	}
	defer f.Close()
	start := time.Now()
	prog := newProgress(stderr)
	defer prog.close()
	prog.Phase("lines of the export read")
	res := export.Verify(lineCounter{f, prog}, export.VerifyOptions{Log: log, Policy: policy, AuditKey: key, Keys: keys})
	prog.close()
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	enc.Encode(res)
	took := time.Since(start).Round(time.Millisecond)
	if policy.Unwitnessed() {
		fmt.Fprintln(stderr, "koekje: the log's policy names no witnesses: its checkpoint was taken on its own word")
	}
	if !res.OK {
		fmt.Fprintf(stderr, "koekje: the export does not verify (%d records read, %d log entries, %s): %s\n", res.Records, res.Entries, took, res.Error)
		return ErrFailed
	}
	fmt.Fprintf(stderr, "koekje: %d records verified, %d log entries read, in %s\n", res.Records, res.Entries, took)
	return nil
}

// lineCounter counts the lines read through it into a progress.
type lineCounter struct {
	r io.Reader
	p *progress
}

func (l lineCounter) Read(b []byte) (int, error) {
	n, err := l.r.Read(b)
	l.p.Add(int64(bytes.Count(b[:n], []byte{'\n'})))
	return n, err
}

// readJWKS reads a site's signing keys from a JWKS file, or from a URL
// (GET /api/v1/keys).
func readJWKS(ctx context.Context, from string) (map[string]ed25519.PublicKey, error) {
	var b []byte
	var err error
	if strings.HasPrefix(from, "https://") || strings.HasPrefix(from, "http://") {
		b, err = fetch(ctx, from)
	} else {
		b, err = os.ReadFile(from)
	}
	if err != nil {
		return nil, err
	}
	keys, err := proof.ParseJWKS(b)
	if err == nil && len(keys) == 0 {
		err = errors.New("the key set holds no Ed25519 key named by its thumbprint")
	}
	return keys, err
}

// fetch reads a small document (at most 1 MiB) from url.
func fetch(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return io.ReadAll(io.LimitReader(resp.Body, 1<<20))
}
