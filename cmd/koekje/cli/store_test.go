package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/koekje/koekje/server/postgres/pgtest"
	"github.com/koekje/koekje/server/translog"
	"github.com/koekje/koekje/server/witness"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.StopShared()
	os.Exit(code)
}

// --db postgres://… serves from PostgreSQL with the transparency log and a
// witness, never logging the DSN's password; the auditor commands read the
// same database, and verify holds it against the witness.
func TestServePostgres(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Shared(t).NewDatabase(t) + "&password=not-for-the-log"
	dir := t.TempDir()
	addr := freeAddr(t)
	base := "http://" + addr
	env := map[string]string{"KOEKJE_DB": dsn, "KOEKJE_KEY_FILE": filepath.Join(dir, "koekje.key"), "KOEKJE_RATE_LIMIT": "0"}
	getenv := func(k string) string { return env[k] }
	var keyOut bytes.Buffer
	if err := Run(context.Background(), []string{"keys", "log-key", "--public-url", base}, getenv, &keyOut, io.Discard); err != nil {
		t.Fatal(err)
	}
	logKey := strings.TrimSpace(keyOut.String())
	w, err := witness.Open(filepath.Join(dir, "w.db"), "witness.test", []string{logKey}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	ws := httptest.NewServer(w.Handler())
	defer ws.Close()
	withWitness := ws.URL + "=" + w.VerifierKey()

	var stderr syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, []string{"--addr", addr, "--witness", withWitness, "--witness-interval", "200ms"}, getenv, io.Discard, &stderr)
	}()
	waitHealthy(t, base)
	var ids []string
	for range 3 {
		resp, err := http.Post(base+"/api/v1/consents", "text/plain", strings.NewReader(`{"site":"demo","action":"accept_all"}`))
		if err != nil {
			t.Fatal(err)
		}
		var got struct {
			ConsentID string `json:"consent_id"`
		}
		json.NewDecoder(resp.Body).Decode(&got)
		resp.Body.Close()
		if resp.StatusCode != 201 || got.ConsentID == "" {
			t.Fatalf("post: %d %+v", resp.StatusCode, got)
		}
		ids = append(ids, got.ConsentID)
	}
	// The witness is asked every 200 ms: the cosigned checkpoint follows.
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		resp, err := http.Get(base + "/log/checkpoint")
		if err != nil {
			t.Fatal(err)
		}
		signed, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if cp, names, err := translog.OpenWitnessed(signed, logKey, []string{w.VerifierKey()}); err == nil && cp.Size == 3 && len(names) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no cosigned checkpoint of the 3 records: %d %s", resp.StatusCode, signed)
		}
	}
	// The only instance is the integrator: it took the three records in.
	token, err := os.ReadFile(filepath.Join(dir, "koekje.admin-token"))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", base+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(metrics), "\nkoekje_log_integrated_records_total 3\n") {
		t.Errorf("metrics without the 3 integrated records:\n%s", metrics)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	log := stderr.String()
	if strings.Contains(log, "not-for-the-log") {
		t.Error("the log holds the DSN's password")
	}
	if _, err := os.Stat(filepath.Join(dir, "koekje.admin-token")); err != nil {
		t.Errorf("the generated admin token is not kept beside the key file: %v", err)
	}
	var out bytes.Buffer
	if err := Run(context.Background(), []string{"verify", "--witness", withWitness}, getenv, &out, io.Discard); err != nil ||
		!strings.Contains(out.String(), `"ok":true,"site":"demo","records":3`) || !strings.Contains(out.String(), `"leaves":3`) {
		t.Errorf("verify against the witness: %v\n%s", err, out.String())
	}
	out.Reset()
	if err := Run(context.Background(), []string{"lookup", ids[1]}, getenv, &out, io.Discard); err != nil || strings.Count(out.String(), ids[1]) != 1 {
		t.Errorf("lookup: %v\n%s", err, out.String())
	}
	env["KOEKJE_KEY_FILE"] = ""
	if err := Run(context.Background(), []string{"verify"}, getenv, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "--key-file") {
		t.Errorf("verify without a key file: %v", err)
	}
}
