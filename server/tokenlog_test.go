package server_test

import (
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/koekje/koekje/config"
)

// Purges and key rotations are logged with the name of the token that did
// them, never the token.
func TestAdminActionsNameTheirToken(t *testing.T) {
	t.Parallel()
	const named = "an-ops-admin-token-of-enough-length"
	sum := sha256.Sum256([]byte(named))
	var logs syncBuffer
	s := newServerWith(t, func(d *serverDeps) {
		cfg := config.Demo()
		cfg.Tokens = []*config.Token{{Name: "ops", Scope: "admin", SHA256: "sha256:" + hex.EncodeToString(sum[:])}}
		d.Config = cfg
		d.Log = slog.New(slog.NewJSONHandler(&logs, nil))
	})
	for _, tt := range []struct{ token, name string }{{adminToken, "admin-token"}, {named, "ops"}} {
		if r := do(t, s, "POST", "/api/v1/sites/demo/purge?before=2000-01-01", "", "Authorization", "Bearer "+tt.token); r.status != 200 {
			t.Fatalf("purge: %d %s", r.status, r.body)
		}
		if r := do(t, s, "POST", "/api/v1/keys/rotate", "", "Authorization", "Bearer "+tt.token); r.status != 201 {
			t.Fatalf("rotate: %d %s", r.status, r.body)
		}
		for _, msg := range []string{`"msg":"purge"`, `"msg":"signing key rotated"`} {
			found := false
			for _, line := range strings.Split(logs.String(), "\n") {
				if strings.Contains(line, msg) && strings.Contains(line, `"token":"`+tt.name+`"`) {
					found = true
				}
			}
			if !found {
				t.Errorf("no %s line naming %s:\n%s", msg, tt.name, logs.String())
			}
		}
	}
	if strings.Contains(logs.String(), adminToken) || strings.Contains(logs.String(), named) {
		t.Error("a token is in the log")
	}
}

// syncBuffer is a strings.Builder safe to write from handlers.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
