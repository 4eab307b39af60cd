package e2e

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/koekje/koekje/server/postgres/pgtest"
)

// Two koekje serve processes write one site's chain in one PostgreSQL
// database, as two instances behind a load balancer do. One is killed with
// SIGKILL in the middle of the load while the other goes on writing: every
// record either acknowledged is stored, the chain verifies, and a restarted
// instance links onto it.
func TestTwoInstancesOnPostgresKillOne(t *testing.T) {
	dsn := pgtest.Shared(t).NewDatabase(t)
	keyFile := filepath.Join(t.TempDir(), "koekje.key")
	args := []string{"--key-file", keyFile}
	a := startKoekje(t, dsn, args...) // makes the key file and the schema
	b := startKoekje(t, dsn, args...)

	const midLoad = 400
	stop := make(chan struct{})
	var (
		ackedA, ackedB atomic.Int64
		acksA, acksB   []ack
	)
	doneA, doneB := make(chan struct{}), make(chan struct{})
	go func() { acksA = load(t, a.base, 24, stop, &ackedA); close(doneA) }()
	go func() { acksB = load(t, b.base, 24, stop, &ackedB); close(doneB) }()
	if !poll(func() bool { return ackedA.Load() >= midLoad && ackedB.Load() >= midLoad }) {
		t.Fatalf("under load: %d and %d records acknowledged", ackedA.Load(), ackedB.Load())
	}
	retriesA := metric(t, a.base, "koekje_store_batch_retries_total")
	if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	a.cmd.Wait()
	// The survivor keeps writing the same chain after the other died,
	// whatever batch the dead one left behind.
	afterKill := ackedB.Load()
	if !poll(func() bool { return ackedB.Load() >= afterKill+midLoad }) {
		t.Errorf("the surviving instance acknowledged only %d records after the kill", ackedB.Load()-afterKill)
	}
	close(stop)
	<-doneA
	<-doneB

	retriesB := metric(t, b.base, "koekje_store_batch_retries_total")
	batchesB := metric(t, b.base, "koekje_store_batch_records_count")

	// A restarted instance links onto the chain both wrote.
	c := startKoekje(t, dsn, args...)
	if _, status, _, err := postChoice(c.base); err != nil || status != 201 {
		t.Fatalf("after restart: %d %v", status, err)
	}
	for _, p := range []*proc{b, c} {
		p.cmd.Process.Signal(syscall.SIGTERM)
		p.cmd.Wait()
	}

	ids := stored(t, dsn, args...)
	checkAcked(t, acksA, ids)
	checkAcked(t, acksB, ids)
	if want := len(acksA) + len(acksB) + 1; len(ids) < want {
		t.Errorf("%d records stored, fewer than the %d acknowledged", len(ids), want)
	}
	// Every record is in the transparency log, or still queued for it
	// (the killed instance may have been the integrator).
	out, err := koekje(t, append([]string{"verify", "--db", dsn}, args...)...).Output()
	var res struct {
		OK      bool  `json:"ok"`
		Records int64 `json:"records"`
		Log     *struct {
			Leaves  int64 `json:"leaves"`
			Pending int64 `json:"pending_records"`
		} `json:"log"`
	}
	if err := errors.Join(err, json.Unmarshal(out, &res)); err != nil || !res.OK || res.Log == nil || res.Log.Leaves+res.Log.Pending != res.Records || res.Records != int64(len(ids)) {
		t.Errorf("verify against the log: %v %s", err, out)
	}
	t.Logf("acknowledged: %d by the killed instance, %d by the survivor; %d stored", len(acksA), len(acksB), len(ids))
	t.Logf("batches retried after a conflict: %.0f and %.0f (%.1f per 1,000 records; the survivor wrote %.0f batches)",
		retriesA, retriesB, 1000*(retriesA+retriesB)/float64(len(ids)), batchesB)
}

// metric reads one unlabelled sample from a server's /metrics.
func metric(t *testing.T, base, name string) float64 {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer ops-admin-token-of-28-chars")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	t.Fatalf("no %s in /metrics (status %d)", name, resp.StatusCode)
	return 0
}
