package server

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/koekje/koekje/config"
	"github.com/koekje/koekje/server/proof"
	"github.com/koekje/koekje/server/sqlite"
	"github.com/koekje/koekje/server/translog"
)

// While no witness cosigns a checkpoint with the record, the proof route
// waits, then answers 503 with Retry-After, saying what it waits for; it
// never hands out a proof under an uncosigned checkpoint. (Not parallel:
// it shortens the wait for the whole package.)
func TestProofRouteWaitsThenSaysSo(t *testing.T) {
	defer func(w time.Duration) { proofWait = w }(proofWait)
	proofWait = 300 * time.Millisecond
	ctx := context.Background()
	db, err := sqlite.Open(filepath.Join(t.TempDir(), "k.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	signer, err := db.StartLog(ctx, "koekje.test/log")
	if err != nil {
		t.Fatal(err)
	}
	keys, err := proof.OpenKeys(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	silent, _ := translog.NewCosigner("silent.test", bytes.Repeat([]byte{2}, 32))
	policy, _ := translog.NewPolicy(signer.VerifierKey(), []string{silent.VerifierKey()}, 1)
	s, err := New(ctx, Deps{Config: config.Demo(), Store: db, Keys: keys, TokenKey: bytes.Repeat([]byte{3}, 64),
		AdminToken: "an-admin-token-of-enough-length", PublicURL: "http://example.com", LogKey: signer.VerifierKey(), Policy: policy})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	post := httptest.NewRequest("POST", "/api/v1/consents", strings.NewReader(`{"site":"demo","action":"accept_all"}`))
	post.Header.Set("Content-Type", "application/json")
	s.ServeHTTP(rec, post)
	var a struct {
		ConsentID string `json:"consent_id"`
		Token     string `json:"token"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &a); err != nil || rec.Code != 201 {
		t.Fatalf("post: %d %s", rec.Code, rec.Body)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if cp, _, err := s.latestCheckpoint(ctx); err == nil && cp.Size == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no signed checkpoint")
		}
	}
	req := httptest.NewRequest("GET", "/api/v1/consents/"+a.ConsentID+"/proof", nil)
	req.Header.Set("Authorization", "Bearer "+a.Token)
	rec = httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") != "5" || !strings.Contains(rec.Body.String(), "witnesses have not cosigned") {
		t.Errorf("a proof no witness cosigned: %d Retry-After %q %s", rec.Code, rec.Header().Get("Retry-After"), rec.Body)
	}
}
