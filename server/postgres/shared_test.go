package postgres_test

import (
	"bytes"
	"context"
	"net/http/httptest"
	"testing"

	"github.com/koekje/koekje/config"
	"github.com/koekje/koekje/server"
	"github.com/koekje/koekje/server/postgres"
	"github.com/koekje/koekje/server/proof"
)

// Failed admin tokens count across the instances that share the store: ten
// guesses spread over two instances block the guesser's network at both.
func TestTokenFailuresAcrossInstances(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, name := open(t, "")
	b, _ := open(t, name)
	var servers []*server.Server
	for _, db := range []*postgres.DB{a, b} {
		keys, err := proof.OpenKeys(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		s, err := server.New(ctx, server.Deps{Config: config.Demo(), Store: db, Keys: keys, TokenKey: bytes.Repeat([]byte{4}, 64),
			AdminToken: "shared-failures-admin-token-0123", PublicURL: "http://consent.test", SharedStore: true})
		if err != nil {
			t.Fatal(err)
		}
		servers = append(servers, s)
	}
	get := func(s *server.Server, token string) int {
		req := httptest.NewRequest("GET", "/api/v1/sites/demo/verify", nil)
		req.RemoteAddr = "198.51.100.7:1234"
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		return rec.Code
	}
	for i := range 10 {
		if code := get(servers[i%2], "wrong-guess"); code != 401 {
			t.Fatalf("guess %d: %d, want 401", i+1, code)
		}
	}
	for i, s := range servers {
		if code := get(s, "shared-failures-admin-token-0123"); code != 429 {
			t.Errorf("instance %d after ten guesses over both: %d, want 429", i, code)
		}
	}
}
