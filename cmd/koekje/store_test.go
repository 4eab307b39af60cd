package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/koekje/koekje/server/postgres/pgtest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.StopShared()
	os.Exit(code)
}

// --db postgres://… serves from PostgreSQL, without the transparency log
// (said in the log), never logging the DSN's password; the auditor
// commands read the same database.
func TestServePostgres(t *testing.T) {
	dsn := pgtest.Shared(t).NewDatabase(t) + "&password=not-for-the-log"
	dir := t.TempDir()
	addr := freeAddr(t)
	env := map[string]string{"KOEKJE_DB": dsn, "KOEKJE_KEY_FILE": filepath.Join(dir, "koekje.key"), "KOEKJE_RATE_LIMIT": "0"}
	getenv := func(k string) string { return env[k] }
	var stderr syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"--addr", addr}, getenv, io.Discard, &stderr) }()
	base := "http://" + addr
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
	if resp, err := http.Get(base + "/log/checkpoint"); err != nil || resp.StatusCode != 404 {
		t.Errorf("checkpoint of a store without a log: %v %v", resp, err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	log := stderr.String()
	if strings.Contains(log, "not-for-the-log") {
		t.Error("the log holds the DSN's password")
	}
	if !strings.Contains(log, "the transparency log does not run on PostgreSQL yet") {
		t.Errorf("the log does not say the server runs without the transparency log:\n%s", log)
	}
	if _, err := os.Stat(filepath.Join(dir, "koekje.admin-token")); err != nil {
		t.Errorf("the generated admin token is not kept beside the key file: %v", err)
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"verify"}, getenv, &out, io.Discard); err != nil || !strings.Contains(out.String(), `"ok":true,"site":"demo","records":3`) {
		t.Errorf("verify: %v\n%s", err, out.String())
	}
	out.Reset()
	if err := run(context.Background(), []string{"lookup", ids[1]}, getenv, &out, io.Discard); err != nil || strings.Count(out.String(), ids[1]) != 1 {
		t.Errorf("lookup: %v\n%s", err, out.String())
	}
	env["KOEKJE_KEY_FILE"] = ""
	if err := run(context.Background(), []string{"verify"}, getenv, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "--key-file") {
		t.Errorf("verify without a key file: %v", err)
	}
}
