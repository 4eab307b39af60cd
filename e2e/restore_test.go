package e2e

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// docBlock is the first fenced block of a section of a Markdown file whose
// text contains marker.
func docBlock(t *testing.T, file, title, marker string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## "+title+"\n")
	if !ok {
		t.Fatalf("%s has no section %q", file, title)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	for _, b := range fenced(section) {
		if strings.Contains(b.text, marker) {
			return b.text
		}
	}
	t.Fatalf("%s: section %q has no block with %q", file, title, marker)
	return ""
}

// stop ends a koekje serve as systemctl stop does: SIGTERM, then the wait.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("koekje serve did not stop cleanly: %v\n%s", err, p.logs)
	}
}

// get reads a path of a running server.
func (p *proc) get(t *testing.T, path string) (string, int) {
	t.Helper()
	resp, err := client.Get(p.base + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b), resp.StatusCode
}

// The procedure of the server reference's "The log held, and its
// recovery", line by line, with koekje processes: a backup when the log
// holds 19 leaves, the public log grown to 37 and audited, the backup
// restored (the server starts held and records on), recover-log from the
// auditor's state, and a restart that signs on from 37, as the same
// auditor proves.
func TestDocumentedRestore(t *testing.T) {
	procedure := docBlock(t, "../server/README.md", "The log held, and its recovery", "koekje recover-log")
	dir := t.TempDir()
	db, backup, state := filepath.Join(dir, "koekje.db"), filepath.Join(dir, "backup.db"), filepath.Join(dir, "audit")
	p := startKoekje(t, db)
	logKey, _ := p.get(t, "/log/key")
	logKey = strings.TrimSpace(logKey)
	post := func(n int) {
		t.Helper()
		for range n {
			if _, status, code, err := postChoice(p.base); status != 201 {
				t.Fatalf("a choice: %d %s %v", status, code, err)
			}
		}
	}
	health := func() (status, reason string) {
		t.Helper()
		b, code := p.get(t, "/healthz")
		if code != 200 {
			t.Fatalf("healthz: %d %s", code, b)
		}
		var h struct{ Status, Reason string }
		json.Unmarshal([]byte(b), &h)
		return h.Status, h.Reason
	}
	size := func() int64 {
		b, _ := p.get(t, "/log/checkpoint")
		lines := strings.Split(b, "\n")
		if len(lines) < 2 {
			return -1
		}
		n, _ := strconv.ParseInt(lines[1], 10, 64)
		return n
	}
	post(19)
	paths := strings.NewReplacer("/backup/koekje.db", backup, "/var/lib/koekje/koekje.db", db, "https://consent.example.nl", p.base, "/audit", state, "KEY", logKey)
	starts, ran := 0, map[string]bool{}
	for _, line := range strings.Split(procedure, "\n") {
		line, _, _ = strings.Cut(line, "#")
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		switch strings.Join(fields[:2], " ") {
		case "systemctl stop":
			p.stop(t)
		case "systemctl start":
			starts++
			p = startKoekje(t, db)
			if starts == 1 { // on the restored backup
				if status, reason := health(); status != "degraded" || !strings.Contains(reason, "the database holds 19 leaves, the reference 37") {
					t.Errorf("healthz on the restored backup: %s %q", status, reason)
				}
				post(5)
			}
		case "cp " + fields[1]:
			b, err := os.ReadFile(paths.Replace(fields[1]))
			if err != nil {
				t.Fatal(err)
			}
			to := paths.Replace(fields[2])
			os.Remove(to + "-wal")
			os.Remove(to + "-shm")
			if err := os.WriteFile(to, b, 0o600); err != nil {
				t.Fatal(err)
			}
		default:
			if fields[0] != "koekje" {
				t.Fatalf("the procedure's line %q is not one this test runs", line)
			}
			args := strings.Fields(paths.Replace(strings.Join(fields[1:], " ")))
			switch args[0] {
			case "backup", "recover-log":
				args = append(args, "--db", db)
			case "log-audit":
				args = append(args, "--allow-unwitnessed") // the log has no witness
			}
			out, err := koekje(t, args...).CombinedOutput()
			if err != nil {
				t.Fatalf("koekje %s: %v\n%s", strings.Join(args, " "), err, out)
			}
			ran[args[0]] = true
			switch args[0] {
			case "backup":
				post(18)
				// Published once the log reference holds it, within a
				// quarter second.
				for deadline := time.Now().Add(10 * time.Second); size() != 37 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
				}
			case "recover-log":
				if !strings.Contains(string(out), "restored leaves 19 to 36") {
					t.Errorf("koekje recover-log: %s", out)
				}
			}
		}
	}
	if !ran["backup"] || !ran["log-audit"] || !ran["recover-log"] || starts != 2 {
		t.Fatalf("the procedure ran %v and %d starts; want backup, log-audit, recover-log and two starts", ran, starts)
	}
	for deadline := time.Now().Add(10 * time.Second); size() != 42 && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
	}
	if n := size(); n != 42 {
		t.Fatalf("the log has %d leaves after the recovery, want 37 and the 5 that waited", n)
	}
	if status, reason := health(); status != "ok" {
		t.Errorf("healthz after the recovery: %s %q", status, reason)
	}
	out, err := koekje(t, "log-audit", "--url", p.base, "--state", state, "--allow-unwitnessed").CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"size": 42,`) || !strings.Contains(string(out), `"since": 37,`) {
		t.Errorf("log-audit after the recovery: %v\n%s", err, out)
	}
}

// The procedure of the server reference's "A successor log", line by
// line, with koekje processes: a backup restored after the public log
// grew from 19 to 37 leaves, with no tiles kept, starts held and records
// 5 choices; successor-log ends the old log, and the restart signs on
// under the new name: 19 leaves carried, the statement, the 5 that waited.
func TestDocumentedSuccessor(t *testing.T) {
	procedure := docBlock(t, "../server/README.md", "The log held, and its recovery", "koekje successor-log")
	dir := t.TempDir()
	db, backup := filepath.Join(dir, "koekje.db"), filepath.Join(dir, "backup.db")
	p := startKoekje(t, db)
	logKey, _ := p.get(t, "/log/key")
	oldName, _, _ := strings.Cut(strings.TrimSpace(logKey), "+")
	post := func(n int) {
		t.Helper()
		for range n {
			if _, status, code, err := postChoice(p.base); status != 201 {
				t.Fatalf("a choice: %d %s %v", status, code, err)
			}
		}
	}
	checkpoint := func() (origin string, size int64) {
		b, _ := p.get(t, "/log/checkpoint")
		lines := strings.Split(b, "\n")
		if len(lines) < 2 {
			return "", -1
		}
		n, _ := strconv.ParseInt(lines[1], 10, 64)
		return lines[0], n
	}
	post(19)
	if out, err := koekje(t, "backup", "--db", db, "--to", backup).CombinedOutput(); err != nil {
		t.Fatalf("koekje backup: %v\n%s", err, out)
	}
	post(18)
	p.stop(t)
	b, err := os.ReadFile(backup)
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(db + "-wal")
	os.Remove(db + "-shm")
	if err := os.WriteFile(db, b, 0o600); err != nil {
		t.Fatal(err)
	}

	starts, succeeded := 0, false
	for _, line := range strings.Split(procedure, "\n") {
		line, _, _ = strings.Cut(line, "#")
		fields := strings.Fields(line)
		switch {
		case len(fields) == 0:
		case strings.Join(fields, " ") == "systemctl stop koekje":
			p.stop(t)
		case strings.Join(fields, " ") == "systemctl start koekje":
			starts++
			p = startKoekje(t, db)
			if starts == 1 {
				b, _ := p.get(t, "/healthz")
				if !strings.Contains(b, `"degraded"`) || !strings.Contains(b, "the database holds 19 leaves, the reference 37") {
					t.Errorf("healthz on the restored backup: %s", b)
				}
				post(5)
			}
		case fields[0] == "koekje" && len(fields) == 2 && fields[1] == "successor-log":
			out, err := koekje(t, "successor-log", "--db", db).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "is succeeded by the log "+oldName+"/2") || !strings.Contains(string(out), "It does not hold leaves 19 to 36") {
				t.Fatalf("koekje successor-log: %v\n%s", err, out)
			}
			succeeded = true
		default:
			t.Fatalf("the procedure's line %q is not one this test runs", line)
		}
	}
	if !succeeded || starts != 2 {
		t.Fatalf("the procedure ran successor-log %v and %d starts; want it and two starts", succeeded, starts)
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if _, n := checkpoint(); n == 25 {
			break
		}
	}
	if origin, n := checkpoint(); origin != oldName+"/2" || n != 25 {
		t.Fatalf("after the succession the log is %q with %d leaves, want %s/2 with 19, the statement and the 5 that waited", origin, n, oldName)
	}
	if b, _ := p.get(t, "/healthz"); !strings.Contains(b, `"ok"`) {
		t.Errorf("healthz after the succession: %s", b)
	}
	p.stop(t)
	if out, err := koekje(t, "verify", "--db", db).CombinedOutput(); err != nil || !strings.Contains(string(out), `"lost":"leaves 19 to 36 of `+oldName) {
		t.Errorf("koekje verify after the succession: %v\n%s", err, out)
	}
}
