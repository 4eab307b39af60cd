package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/koekje/koekje/server/translog"
)

// logAuditCmd audits a log from its public tiles alone (translog.Audit),
// keeping its state in --state.
func logAuditCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("log-audit", flag.ContinueOnError)
	fs.SetOutput(stderr)
	base := fs.String("url", "", "the consent server's public URL (its /log/… is read), required")
	logKey := fs.String("log-key", "", "the log's verifier key you pinned (required the first time; then kept in the state)")
	policyFile := fs.String("policy", "", "the log's witness policy you pinned (default: its /log/policy, pinned on first use)")
	acceptPolicy := fs.Bool("accept-policy", false, "pin the log's policy even if it accepts what the pinned one did not")
	allowUnwitnessed := fs.Bool("allow-unwitnessed", false, "accept a policy without witnesses (\"quorum none\")")
	state := fs.String("state", defaultAuditState(getenv), "the directory that keeps each log's pinned key and policy, its newest verified checkpoint and tiles (KOEKJE_LOG_AUDIT_STATE)")
	since := fs.String("since", "", "a checkpoint you kept: the log must extend it")
	site := fs.String("site", "", "a site whose leaves to list (with --audit-key)")
	auditKey := fs.String("audit-key", "", "the site's audit key, hex (koekje keys audit-key --site S)")
	if err := parseAnywhere(fs, args); err != nil {
		return err
	}
	if *base == "" || (*site == "") != (*auditKey == "") {
		return errors.New("usage: koekje log-audit --url URL [--log-key KEY] [--policy FILE] [--state DIR] [--since FILE] [--site S --audit-key HEX]")
	}
	if *state == "" {
		return errors.New("log-audit: no state directory: give --state or KOEKJE_LOG_AUDIT_STATE")
	}
	tiles := &translog.Remote{Base: strings.TrimSuffix(*base, "/") + "/log/", Client: &http.Client{Timeout: 30 * time.Second}, Ctx: ctx}
	res := &translog.AuditResult{Site: *site}
	prog := newProgress(stderr)
	defer prog.close()
	prog.Phase("log leaves checked")
	a := &translog.Audit{Tiles: tiles, StateDir: *state, LogKey: *logKey, PolicyFile: *policyFile, AcceptPolicy: *acceptPolicy,
		AllowUnwitnessed: *allowUnwitnessed, Since: *since, AuditKey: *auditKey, Count: prog.Add}
	err := a.Run(res)
	prog.close()
	if err != nil {
		res.Error = err.Error()
	}
	res.OK = err == nil
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	enc.Encode(res)
	verdict := "ok"
	if err != nil {
		verdict = "FAILED"
	}
	prog.end("koekje log-audit: %d of %d leaves checked, %s", prog.n.Load(), res.Size, verdict)
	if err != nil {
		fmt.Fprintln(stderr, "koekje:", err)
		return ErrFailed
	}
	return nil
}

// defaultAuditState is where log-audit keeps its state unless told.
func defaultAuditState(getenv func(string) string) string {
	if d := getenv("KOEKJE_LOG_AUDIT_STATE"); d != "" {
		return d
	}
	if d := getenv("XDG_CONFIG_HOME"); d != "" {
		return filepath.Join(d, "koekje", "log-audit")
	}
	if d := getenv("HOME"); d != "" {
		return filepath.Join(d, ".config", "koekje", "log-audit")
	}
	return ""
}
