package cli

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/koekje/koekje/server/translog"
)

// serveUntil runs serve with args on env until the returned stop, and
// returns its base URL and its log lines.
func serveUntil(t *testing.T, env map[string]string, args ...string) (base string, logs *syncBuffer, stop func()) {
	t.Helper()
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	logs = &syncBuffer{}
	go func() {
		done <- Run(ctx, append([]string{"serve", "--addr", addr}, args...), func(k string) string { return env[k] }, io.Discard, logs)
	}()
	base = "http://" + addr
	t.Cleanup(cancel)
	for deadline := time.Now().Add(10 * time.Second); !healthy(base); time.Sleep(20 * time.Millisecond) {
		select {
		case err := <-done:
			t.Fatalf("serve %v: %v\n%s", args, err, logs)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve %v did not become healthy:\n%s", args, logs)
		}
	}
	return base, logs, func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}
}

func healthy(base string) bool {
	resp, err := http.Get(base + "/healthz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == 200
}

// The log keeps its first name for life: a restart under a public URL of
// another host serves the same log under the same key and says so at
// start; verify (offline and the route) agrees; naming the log otherwise
// with keys log-key is refused. A new log on a public address needs the
// public URL it is named after. (A log that renamed itself at a start
// would answer 500 on its routes and 409 on the verify route until the
// next record.)
func TestLogNamedForLife(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "k.db")
	env := map[string]string{"KOEKJE_DB": db, "KOEKJE_ADMIN_TOKEN": adminToken, "KOEKJE_RATE_LIMIT": "0"}

	base, _, stop := serveUntil(t, env)
	firstKey, _ := httpGet(t, base+"/log/key", "")
	resp, err := http.Post(base+"/api/v1/consents", "text/plain", strings.NewReader(`{"site":"demo","action":"accept_all"}`))
	if err != nil || resp.StatusCode != 201 {
		t.Fatalf("post: %v %v", resp, err)
	}
	resp.Body.Close()
	stop()
	named := "127.0.0.1:" + strings.TrimPrefix(base[strings.LastIndex(base, ":"):], ":") + "/log"

	base, logs, stop := serveUntil(t, env, "--public-url", "https://consent.example.nl")
	key, _ := httpGet(t, base+"/log/key", "")
	if string(key) != string(firstKey) {
		t.Errorf("the log's key after the restart: %s, want %s", key, firstKey)
	}
	signed, code := httpGet(t, base+"/log/checkpoint", "")
	if cp, _, err := translog.OpenCheckpoint(signed, strings.TrimSpace(string(firstKey))); code != 200 || err != nil || cp.Size != 1 || cp.Origin != named {
		t.Errorf("checkpoint after the restart: %d %v %+v\n%s", code, err, cp, signed)
	}
	body, code := httpGet(t, base+"/api/v1/sites/demo/verify", adminToken)
	var res struct {
		OK bool `json:"ok"`
	}
	if json.Unmarshal(body, &res); code != 200 || !res.OK {
		t.Errorf("the verify route after the restart: %d %s", code, body)
	}
	stop()
	if !strings.Contains(logs.String(), "does not name this log") {
		t.Errorf("no warning that the public URL does not name the log:\n%s", logs)
	}
	if out, err := runCLI(t, env, "verify"); err != nil || !strings.Contains(out, `"ok":true`) {
		t.Errorf("verify: %v %s", err, out)
	}
	if _, err := runCLI(t, env, "keys", "log-key", "--public-url", "https://consent.example.nl"); err == nil || !strings.Contains(err.Error(), named) {
		t.Errorf("keys log-key under another name: %v, want it refused naming %s", err, named)
	}
	out, err := runCLI(t, env, "keys", "log-key", "--public-url", "http://"+strings.TrimSuffix(named, "/log"))
	if err != nil || strings.TrimSpace(out) != strings.TrimSpace(string(firstKey)) {
		t.Errorf("keys log-key under the log's own name: %v %q", err, out)
	}

	// A new database on a public address without a public URL: no log is
	// made under the listen address.
	fresh := map[string]string{"KOEKJE_DB": filepath.Join(t.TempDir(), "new.db"), "KOEKJE_ADMIN_TOKEN": adminToken}
	ln, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	err = Run(context.Background(), []string{"serve", "--addr", addr}, func(k string) string { return fresh[k] }, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "KOEKJE_PUBLIC_URL") {
		t.Errorf("a new log on %s without a public URL: %v, want a refusal naming KOEKJE_PUBLIC_URL", addr, err)
	}
}
