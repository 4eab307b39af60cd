package server

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/koekje/koekje/config"
	"github.com/koekje/koekje/server/proof"
	"github.com/koekje/koekje/server/sqlite"
)

// Second parts asked for under made-up site names are 404 and leave the
// index of earlier versions as it was: it holds configured sites only.
func TestEarlierPartsOnlyForConfiguredSites(t *testing.T) {
	t.Parallel()
	db, err := sqlite.Open(filepath.Join(t.TempDir(), "k.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	keys, err := proof.OpenKeys(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(context.Background(), Deps{Config: config.Demo(), Store: db, Keys: keys,
		TokenKey: bytes.Repeat([]byte{3}, 64), AdminToken: "an-admin-token-of-enough-length", PublicURL: "http://example.com"})
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/s/nope.0123456789abcdef.js", "/s/other.0123456789abcdef.js", "/s/demo.0123456789abcdef.js"} {
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if rec.Code != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", path, rec.Code)
		}
	}
	if len(s.earlier.index) != 1 || s.earlier.index["demo"] == nil {
		t.Errorf("the index of earlier versions holds %d sites, want demo alone", len(s.earlier.index))
	}
}
