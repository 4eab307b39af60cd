package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"path/filepath"
	"strings"
	"testing"

	"github.com/koekje/koekje/server/consent"
	"github.com/koekje/koekje/server/sqlite"
)

func runCLI(t *testing.T, env map[string]string, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := Run(context.Background(), args, func(k string) string { return env[k] }, &out, &out)
	return out.String(), err
}

// runCLIOut is runCLI with standard output and error apart.
func runCLIOut(t *testing.T, env map[string]string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errs bytes.Buffer
	err = Run(context.Background(), args, func(k string) string { return env[k] }, &out, &errs)
	return out.String(), errs.String(), err
}

// Help is there for every command and exits 0; the version says what was
// built.
func TestHelpAndVersion(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}} {
		out, err := runCLI(t, nil, args...)
		if err != nil || !strings.Contains(out, "verify-receipt") || !strings.Contains(out, "Flags go anywhere") {
			t.Errorf("%v: %v %q", args, err, out)
		}
	}
	help, _ := runCLI(t, nil, "-h")
	for _, c := range commands {
		out, err := runCLI(t, nil, c.name, "-h")
		if !errors.Is(err, flag.ErrHelp) || out == "" {
			t.Errorf("%s -h: %v %q", c.name, err, out)
		}
		if !strings.Contains(help, "\n  "+c.name+" ") {
			t.Errorf("the usage does not list %s:\n%s", c.name, help)
		}
	}
	if _, err := runCLI(t, nil, "no-such-command"); err == nil || !strings.Contains(err.Error(), `unknown command "no-such-command"`) {
		t.Errorf("an unknown command: %v", err)
	}
	out, err := runCLI(t, nil, "version")
	if err != nil || !strings.HasPrefix(out, "koekje ") || !strings.Contains(out, "go1.") || strings.Contains(out, "dev\n") {
		t.Errorf("version: %v %q", err, out)
	}
}

// Auditor commands work from the sites the database holds: no "ok" about
// a demo site the database never had, flags anywhere on the line.
func TestAuditorCommandsUseTheDatabasesSites(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "k.db")
	db, err := sqlite.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	var id string
	for range 3 {
		r := &consent.Record{Site: "voip-nl", Action: consent.RejectAll, Choices: map[string]bool{"necessary": true}, Revision: 1, ConfigHash: "sha256:x", Language: "nl"}
		if err := db.Append(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		id = r.ConsentID.String()
	}
	db.Close()
	out, err := runCLI(t, nil, "verify", "--db", path)
	if err != nil || !strings.Contains(out, `"site":"voip-nl","records":3`) || strings.Contains(out, "demo") {
		t.Errorf("verify without a config: %v %s", err, out)
	}
	if out, err := runCLI(t, nil, "verify", "--site", "demo", "--db", path); err == nil || !strings.Contains(err.Error(), `holds no site "demo" (it holds voip-nl)`) {
		t.Errorf("verify --site demo: %v %s", err, out)
	}
	if out, errs, err := runCLIOut(t, nil, "export", "--db", path); err != nil || strings.Count(out, "\n") != 4 || !strings.HasPrefix(errs, "koekje export: 3 records of voip-nl (ndjson) in ") { // 3 records, the summary
		t.Errorf("export ndjson without a config: %v %s %s", err, out, errs)
	}
	if _, err := runCLI(t, nil, "export", "--format", "csv", "--db", path); err == nil || !strings.Contains(err.Error(), "not in the configuration") {
		t.Errorf("export csv of a site the config lacks: %v", err)
	}
	if out, err := runCLI(t, nil, "lookup", id, "--db", path); err != nil || !strings.Contains(out, id) {
		t.Errorf("lookup ID --db: %v %s", err, out)
	}
	if out, err := runCLI(t, nil, "keys", "list", "--db", path); err != nil || !strings.Contains(out, "(signs)") {
		t.Errorf("keys list --db: %v %s", err, out)
	}
}

// A second server on the same database file refuses to start.
func TestOneServerPerDatabase(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "k.db")
	release, err := lockServe(path)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"KOEKJE_DB": path, "KOEKJE_ADMIN_TOKEN": "one-server-admin-token-0123456789"}
	if _, err := runCLI(t, env, "serve", "--addr", "127.0.0.1:0"); err == nil || !strings.Contains(err.Error(), "another koekje serve is using") {
		t.Fatalf("second server: %v", err)
	}
	release()
	if r2, err := lockServe(path); err != nil {
		t.Fatalf("after the first let go: %v", err)
	} else {
		r2()
	}
}
