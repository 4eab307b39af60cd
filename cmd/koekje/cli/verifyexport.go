package cli

import (
	"context"
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
	"github.com/koekje/koekje/server/translog"
)

// verifyExportCmd checks an NDJSON or CSV export offline, against the
// public log (over HTTP, or saved to a directory) and the site's audit key:
// no database and no key file.
func verifyExportCmd(ctx context.Context, args []string, _ func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("verify-export", flag.ContinueOnError)
	fs.SetOutput(stderr)
	logURL := fs.String("log", "", "the consent server's public URL (its /log/… is read)")
	tiles := fs.String("tiles", "", "a directory holding the log saved as served (checkpoint, tile/…), instead of --log")
	logKey := fs.String("log-key", "", "the log's verifier key you pinned, required")
	auditKey := fs.String("audit-key", "", "the site's audit key, hex (koekje keys audit-key --site S), required")
	var witnessKeys []string
	fs.Func("witness-key", "a witness's verifier key (repeat for more)", func(v string) error { witnessKeys = append(witnessKeys, v); return nil })
	witnesses := fs.Int("witnesses", -1, "how many of those witnesses must have cosigned the log's checkpoint (default: all given)")
	if err := parseAnywhere(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 || *logKey == "" || *auditKey == "" || (*logURL == "") == (*tiles == "") {
		return errors.New("usage: koekje verify-export --log URL|--tiles DIR --log-key KEY --audit-key HEX [--witness-key KEY… --witnesses N] FILE")
	}
	key, err := hex.DecodeString(*auditKey)
	if err != nil || len(key) != 32 {
		return errors.New("--audit-key: want 64 hex digits")
	}
	if *witnesses < 0 {
		*witnesses = len(witnessKeys)
	}
	if *witnesses > len(witnessKeys) {
		return fmt.Errorf("--witnesses %d: only %d --witness-key given", *witnesses, len(witnessKeys))
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
	res := export.Verify(f, export.VerifyOptions{Log: log, LogKey: *logKey, WitnessKeys: witnessKeys, Witnesses: *witnesses, AuditKey: key})
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	enc.Encode(res)
	took := time.Since(start).Round(time.Millisecond)
	if len(witnessKeys) == 0 {
		fmt.Fprintln(stderr, "koekje: no --witness-key given: the log's checkpoint was taken on its own word")
	}
	if !res.OK {
		fmt.Fprintf(stderr, "koekje: the export does not verify (%d records read, %d log entries, %s): %s\n", res.Records, res.Entries, took, res.Error)
		return ErrFailed
	}
	fmt.Fprintf(stderr, "koekje: %d records verified, %d log entries read, in %s\n", res.Records, res.Entries, took)
	return nil
}
