package server_test

import (
	"bytes"
	"testing"

	"github.com/koekje/koekje/config"
	"github.com/koekje/koekje/server"
)

// The configuration's JSON Schema is public and cacheable, as the
// repository has it, and a repeated request with its ETag costs no body.
func TestConfigSchema(t *testing.T) {
	t.Parallel()
	s, _ := newServer(t, 0)
	r := do(t, s, "GET", "/config/sites.schema.json", "")
	if r.status != 200 || !bytes.Equal(r.body, config.Schema) {
		t.Fatalf("status %d, %d bytes; want the schema's %d", r.status, len(r.body), len(config.Schema))
	}
	h := r.header
	if h.Get("Content-Type") != "application/schema+json" || h.Get("Cache-Control") != "public, max-age=3600" ||
		h.Get("ETag") == "" || h.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("headers %v", h)
	}
	again := do(t, s, "GET", "/config/sites.schema.json", "", "If-None-Match", h.Get("ETag"))
	if again.status != 304 || len(again.body) != 0 {
		t.Errorf("If-None-Match: status %d, %d bytes", again.status, len(again.body))
	}
	if other := do(t, s, "GET", "/config/sites.schema.json", "", "If-None-Match", `"other"`); other.status != 200 {
		t.Errorf("another ETag: status %d", other.status)
	}
}

func schemaETag(t *testing.T, s *server.Server) string {
	t.Helper()
	return do(t, s, "GET", "/config/sites.schema.json", "").header.Get("ETag")
}
