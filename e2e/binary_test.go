package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The tests in this file run koekje as a process of its own, as an operator
// does: the test binary itself, re-run with asKoekje in its environment,
// which TestMain hands to the command's Main instead of the tests. The
// program is the same code as the built binary (cmd/koekje's main only
// calls cli.Main), without building it a second time.

// asKoekje in a test binary's environment makes it run as koekje.
const asKoekje = "KOEKJE_E2E_AS_KOEKJE=1"

// koekje is the command line koekje args, run as its own process.
func koekje(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self, args...)
	cmd.Env = append(os.Environ(), asKoekje)
	return cmd
}

// The tests that start koekje processes do not run in parallel: a port
// picked free and closed can be taken by another test's server before this
// one binds it, and this test would then talk to that one (seen under load:
// one test's records counted in another's database).

// proc is a running koekje serve.
type proc struct {
	cmd  *exec.Cmd
	base string
	logs *bytes.Buffer
}

func startKoekje(t *testing.T, db string, extra ...string) *proc {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	args := append([]string{"serve", "--db", db, "--addr", addr, "--rate-limit", "0", "--admin-token", "ops-admin-token-of-28-chars"}, extra...)
	p := &proc{cmd: koekje(t, args...), base: "http://" + addr, logs: &bytes.Buffer{}}
	p.cmd.Stderr = p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.cmd.Process.Kill(); p.cmd.Wait() })
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(p.base + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("koekje did not start:\n%s", p.logs)
	return nil
}

// ack is a 201 the server gave: the record it promised to keep.
type ack struct {
	ConsentID string `json:"consent_id"`
	RecordID  string `json:"record_id"`
}

var client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

// postChoice sends one choice; it returns the ack of a 201, or the status
// and error code otherwise.
func postChoice(base string) (a ack, status int, code string, err error) {
	resp, err := client.Post(base+"/api/v1/consents", "text/plain", strings.NewReader(`{"site":"demo","action":"custom","choices":{"analytics":true},"url":"http://localhost/"}`))
	if err != nil {
		return a, 0, "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode == 201 {
		err = json.NewDecoder(resp.Body).Decode(&a)
		return a, 201, "", err
	}
	var e struct{ Error struct{ Code string } }
	json.NewDecoder(resp.Body).Decode(&e)
	return a, resp.StatusCode, e.Error.Code, nil
}

// load posts from clients goroutines until stop is closed and returns every
// acknowledged record. Statuses other than 201 and 503 fail the test.
func load(t *testing.T, base string, clients int, stop <-chan struct{}, acked *atomic.Int64) []ack {
	var (
		mu   sync.Mutex
		acks []ack
		wg   sync.WaitGroup
	)
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				a, status, code, err := postChoice(base)
				switch {
				case err != nil:
					// The server went away mid-request: not acknowledged.
					time.Sleep(5 * time.Millisecond)
				case status == 201:
					mu.Lock()
					acks = append(acks, a)
					mu.Unlock()
					acked.Add(1)
				case status == 503 && code == "unavailable":
				default:
					t.Errorf("status %d (%s) under load", status, code)
					return
				}
			}
		}()
	}
	wg.Wait()
	return acks
}

// stored returns the record IDs in the database, and checks the chain.
func stored(t *testing.T, db string, extra ...string) map[string]bool {
	t.Helper()
	out, err := koekje(t, append([]string{"verify", "--db", db}, extra...)...).CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte(`"ok":true`)) {
		t.Fatalf("verify after restart: %v\n%s", err, out)
	}
	out, err = koekje(t, append([]string{"export", "--db", db, "--site", "demo"}, extra...)...).Output()
	if err != nil {
		t.Fatalf("export: %v", err)
	}
	ids := map[string]bool{}
	for _, line := range bytes.Split(bytes.TrimSpace(out), []byte("\n")) {
		var r struct {
			RecordID string `json:"record_id"`
		}
		// The last line is the export's summary, no record.
		if json.Unmarshal(line, &r) == nil && r.RecordID != "" {
			ids[r.RecordID] = true
		}
	}
	return ids
}

func checkAcked(t *testing.T, acks []ack, ids map[string]bool) {
	t.Helper()
	lost := 0
	for _, a := range acks {
		if !ids[a.RecordID] {
			lost++
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d acknowledged records are gone", lost, len(acks))
	}
	if len(acks) == 0 {
		t.Error("nothing was acknowledged: the test proved nothing")
	}
}

// signalMidLoad puts 48 clients on p, sends sig once the server has
// acknowledged midLoad records (so writes are in flight, not just starting),
// and returns the acknowledged records and how the process ended.
func signalMidLoad(t *testing.T, p *proc, sig syscall.Signal) ([]ack, error) {
	t.Helper()
	const midLoad = 500
	stop := make(chan struct{})
	var (
		acks  []ack
		acked atomic.Int64
	)
	done := make(chan struct{})
	go func() { acks = load(t, p.base, 48, stop, &acked); close(done) }()
	if !poll(func() bool { return acked.Load() >= midLoad }) {
		t.Errorf("only %d records acknowledged under load", acked.Load())
	}
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	err := p.cmd.Wait()
	close(stop)
	<-done
	return acks, err
}

// SIGKILL in the middle of a load loses no acknowledged record, and the
// chain verifies after a restart on the same database.
func TestKillMidLoad(t *testing.T) {
	db := filepath.Join(t.TempDir(), "k.db")
	p := startKoekje(t, db)
	acks, _ := signalMidLoad(t, p, syscall.SIGKILL)
	p2 := startKoekje(t, db)
	if _, status, _, err := postChoice(p2.base); err != nil || status != 201 {
		t.Fatalf("after restart: %d %v", status, err)
	}
	p2.cmd.Process.Signal(syscall.SIGTERM)
	p2.cmd.Wait()
	ids := stored(t, db)
	checkAcked(t, acks, ids)
	t.Logf("%d acknowledged before SIGKILL, %d stored", len(acks), len(ids))
}

// SIGTERM answers what is in flight and commits it: every request that got
// an answer before the server closed got a 201, and every 201 is stored.
func TestTermMidLoad(t *testing.T) {
	db := filepath.Join(t.TempDir(), "k.db")
	p := startKoekje(t, db)
	acks, err := signalMidLoad(t, p, syscall.SIGTERM)
	if err != nil {
		t.Errorf("koekje exited with %v after SIGTERM:\n%s", err, p.logs)
	}
	if !strings.Contains(p.logs.String(), "shutting down") {
		t.Error("no shutdown in the log")
	}
	ids := stored(t, db)
	checkAcked(t, acks, ids)
	if len(ids) != len(acks) {
		t.Errorf("%d records stored, %d acknowledged: a request in flight was cut off after its record was written", len(ids), len(acks))
	}
}

// A full disk gives clear 503s and no partial records; once there is room
// the same process writes again.
func TestFullDisk(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("this test mounts a small tmpfs and needs root")
		}
		t.Skip("mounting a small tmpfs needs root")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	remount := func(opts string) {
		t.Helper()
		if out, err := exec.Command("mount", "-o", "remount,"+opts, dir).CombinedOutput(); err != nil {
			t.Fatalf("remount %s: %v %s", opts, err, out)
		}
	}
	db := filepath.Join(dir, "k.db")
	p := startKoekje(t, db)
	var acks []ack
	full := false
	for i := 0; i < 20000 && !full; i++ {
		a, status, code, err := postChoice(p.base)
		switch {
		case err != nil:
			t.Fatal(err)
		case status == 201:
			acks = append(acks, a)
		case status == 503 && code == "unavailable":
			full = true
		default:
			t.Fatalf("status %d %s while filling the disk", status, code)
		}
	}
	if !full {
		t.Fatal("the disk never filled")
	}
	remount("size=64m")
	a, status, _, err := postChoice(p.base)
	if err != nil || status != 201 {
		t.Fatalf("after making room: %d %v", status, err)
	}
	acks = append(acks, a)
	p.cmd.Process.Signal(syscall.SIGTERM)
	if err := p.cmd.Wait(); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatal(err)
		}
	}
	ids := stored(t, db)
	checkAcked(t, acks, ids)
	if len(ids) != len(acks) {
		t.Errorf("%d records stored, %d acknowledged: a failed write left a record", len(ids), len(acks))
	}
}
