package server_test

import (
	"bytes"
	"context"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/koekje/koekje/config"
)

// After a reload or a restart with another configuration, a page that
// runs the first part of the configuration before it (a browser caches it
// for 5 minutes; a page left open keeps it) still gets the second part it
// was made with, word for word; the new first part names the new second
// part; a part never served is 404.
func TestReloadKeepsTheSecondPartOfBefore(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "koekje.db")
	s := newServerOn(t, path, func(*serverDeps) {})
	old := s.Bundle("demo").More
	oldBody := do(t, s, "GET", "/s/demo."+old.ETag+".js", "")
	if oldBody.status != http.StatusOK {
		t.Fatalf("second part: %d", oldBody.status)
	}
	next := config.Demo()
	next.Sites[0].Revision++
	next.Sites[0].Categories[1].Title["en"] = "Preferences"
	s2, err := s.Reload(context.Background(), next)
	if err != nil {
		t.Fatal(err)
	}
	cur := s2.Bundle("demo").More
	if cur.ETag == old.ETag {
		t.Fatal("the second part did not change with the configuration")
	}
	got := do(t, s2, "GET", "/s/demo."+old.ETag+".js", "")
	if got.status != http.StatusOK || !bytes.Equal(got.body, oldBody.body) || got.header.Get("Cache-Control") != "public, max-age=31536000, immutable" {
		t.Errorf("the second part of before, after the reload: %d %q %.100s", got.status, got.header.Get("Cache-Control"), got.body)
	}
	if br := do(t, s2, "GET", "/s/demo."+old.ETag+".js", "", "Accept-Encoding", "br"); br.status != http.StatusOK || br.header.Get("Content-Encoding") != "br" {
		t.Errorf("the second part of before, in brotli: %d %q", br.status, br.header.Get("Content-Encoding"))
	}
	if now := do(t, s2, "GET", "/s/demo."+cur.ETag+".js", ""); now.status != http.StatusOK || bytes.Equal(now.body, oldBody.body) {
		t.Errorf("the new second part: %d", now.status)
	}
	if first := do(t, s2, "GET", "/s/demo.js", ""); !bytes.Contains(first.body, []byte(cur.ETag)) || bytes.Contains(first.body, []byte(old.ETag)) {
		t.Errorf("the new first part does not name the new second part")
	}
	// Kept across another reload; a made-up version is still unknown.
	s3, err := s2.Reload(context.Background(), config.Demo())
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{old.ETag, cur.ETag} {
		if r := do(t, s3, "GET", "/s/demo."+v+".js", ""); r.status != http.StatusOK {
			t.Errorf("second part %s after two reloads: %d", v, r.status)
		}
	}
	if r := do(t, s3, "GET", "/s/demo.0123456789abcdef.js", ""); r.status != http.StatusNotFound {
		t.Errorf("a second part never served: %d", r.status)
	}
	// A restart on the same database with the newer configuration.
	next2 := config.Demo()
	next2.Sites[0].Revision++
	next2.Sites[0].Categories[1].Title["en"] = "Preferences"
	s4 := newServerOn(t, path, func(d *serverDeps) { d.Config = next2 })
	if got := do(t, s4, "GET", "/s/demo."+old.ETag+".js", ""); got.status != http.StatusOK || !bytes.Equal(got.body, oldBody.body) {
		t.Errorf("the second part of before, after a restart: %d", got.status)
	}
}
