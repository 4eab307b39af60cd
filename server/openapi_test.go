package server_test

import (
	"bytes"
	"context"
	"io"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	legacyrouter "github.com/getkin/kin-openapi/routers/legacy"
)

// Real requests to every route, good and bad, are checked against the
// OpenAPI 3.1 document with kin-openapi: request, status, headers, body.
func TestOpenAPI(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, db, _ := newLoggedServer(t)
	postMany(t, s, 256) // a full tile
	served := do(t, s, "GET", "/api/v1/openapi.json", "")
	file, _ := os.ReadFile("openapi.json")
	if served.status != 200 || !bytes.Equal(served.body, file) {
		t.Fatalf("openapi.json is not served as is: %d", served.status)
	}
	doc, err := openapi3.NewLoader().LoadFromData(file)
	if err != nil {
		t.Fatal(err)
	}
	if !doc.IsOpenAPI31OrLater() {
		t.Fatal("not an OpenAPI 3.1 document")
	}
	if err := doc.Validate(ctx); err != nil {
		t.Fatalf("document: %v", err)
	}
	router, err := legacyrouter.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	for _, ct := range []string{"application/x-ndjson", "text/csv", "text/html", "text/javascript"} {
		openapi3filter.RegisterBodyDecoder(ct, openapi3filter.PlainBodyDecoder)
	}

	a := post(t, s, `{"site":"demo","action":"custom","choices":{"analytics":true},"services":{"youtube":true}}`).json(t)
	id, token := a["consent_id"].(string), a["token"].(string)
	hash := s.Bundle("demo").Hash
	scan := recordScan(t, db, "demo", hash, time.Now().UTC().Truncate(time.Second), "_ga").ID.String()
	auth := []string{"Authorization", "Bearer " + adminToken}
	type call struct {
		method, path, body string
		headers            []string
	}
	calls := []call{
		{"GET", "/healthz", "", nil},
		{"GET", "/.well-known/gpc.json", "", nil},
		{"GET", "/metrics", "", auth},
		{"GET", "/metrics", "", nil},
		{"GET", "/s/demo.js", "", nil},
		{"GET", "/s/nope.js", "", nil},
		{"GET", "/adpc/demo.json", "", []string{"Accept-Language", "de"}},
		{"GET", "/adpc/demo.json?lang=xx", "", nil},
		{"GET", "/adpc/nope.json", "", nil},
		{"HEAD", "/s/demo.js", "", []string{"Accept-Encoding", "br"}},
		{"HEAD", "/s/nope.js", "", nil},
		{"POST", "/api/v1/consents", `{"site":"demo","action":"accept_all","language":"de","url":"https://belvast.example/x","gpc":false}`, []string{"Content-Type", "application/json"}},
		{"POST", "/api/v1/consents", `{"site":"demo","action":"reject_all"}`, []string{"Content-Type", "text/plain;charset=UTF-8"}},
		{"POST", "/api/v1/consents", `{"site":"demo","action":"accept_all"}`, []string{"Content-Type", "application/json", "Sec-GPC", "1", "ADPC", `withdraw=*, object=direct-marketing`}},
		{"POST", "/api/v1/consents", `{"site":"demo","action":"accept_all"}`, []string{"Content-Type", "application/json", "ADPC", `consent="unterminated`}},
		{"POST", "/api/v1/consents", `{"site":"demo","action":"custom","consent_id":"` + id + `","token":"` + token + `"}`, []string{"Content-Type", "application/json"}},
		{"POST", "/api/v1/consents", `{"site":"demo","action":"maybe"}`, []string{"Content-Type", "text/plain"}},
		{"POST", "/api/v1/consents", `{"site":"nope","action":"custom"}`, []string{"Content-Type", "text/plain"}},
		{"POST", "/api/v1/consents", `{"site":"demo"`, []string{"Content-Type", "text/plain"}},
		{"POST", "/api/v1/consents", `{"site":"demo","action":"custom"}`, []string{"Content-Type", "text/plain", "Origin", "https://evil.example"}},
		{"POST", "/api/v1/consents", `{"site":"demo","action":"custom","consent_id":"` + id + `"}`, []string{"Content-Type", "text/plain"}},
		{"GET", "/api/v1/consents/" + id + "?token=" + token, "", nil},
		{"GET", "/api/v1/consents/" + id, "", auth},
		{"GET", "/api/v1/consents/" + id, "", nil},
		{"GET", "/api/v1/consents/nope", "", auth},
		{"GET", "/api/v1/consents/00000000-0000-4000-8000-000000000000", "", auth},
		{"GET", "/api/v1/consents/" + id + "/receipt?token=" + token, "", nil},
		{"GET", "/api/v1/consents/" + id + "/receipt", "", append([]string{"Accept", "text/html"}, auth...)},
		{"GET", "/api/v1/consents/" + id + "/receipt", "", nil},
		{"GET", "/api/v1/keys", "", nil},
		{"GET", "/api/v1/openapi.json", "", nil},
		{"GET", "/api/v1/export.schema.json", "", nil},
		{"GET", "/config/sites.schema.json", "", nil},
		{"GET", "/config/sites.schema.json", "", []string{"If-None-Match", schemaETag(t, s)}},
		{"GET", "/api/v1/sites/demo/verify", "", auth},
		{"GET", "/api/v1/sites/demo/verify", "", nil},
		{"GET", "/api/v1/sites/nope/verify", "", auth},
		{"GET", "/api/v1/sites/demo/consents/" + id + "/evidence", "", auth},
		{"GET", "/api/v1/sites/demo/consents?format=ndjson", "", auth},
		{"GET", "/api/v1/sites/demo/consents?format=csv&from=2020-01-01&to=2999-12-31", "", auth},
		{"GET", "/api/v1/sites/demo/consents?format=iso27560&consent_id=" + id, "", auth},
		{"GET", "/api/v1/sites/demo/consents?format=pdf", "", auth},
		{"GET", "/api/v1/sites/demo/stats?from=2020-01-01", "", auth},
		{"GET", "/api/v1/sites/demo/stats?from=2999-01-01", "", auth},
		{"GET", "/api/v1/sites/demo/stats?from=nonsense", "", auth},
		{"GET", "/api/v1/sites/demo/versions/" + hash, "", auth},
		{"GET", "/api/v1/sites/demo/versions/sha256:0", "", auth},
		{"GET", "/api/v1/sites/demo/scans", "", auth},
		{"GET", "/api/v1/sites/demo/scans?limit=1&cursor=" + scan, "", auth},
		{"GET", "/api/v1/sites/demo/scans?limit=0", "", auth},
		{"GET", "/api/v1/sites/demo/scans", "", nil},
		{"GET", "/api/v1/sites/demo/scans/days", "", auth},
		{"GET", "/api/v1/sites/demo/scans/days?from=2026-01-01&to=2026-01-31", "", auth},
		{"GET", "/api/v1/sites/demo/scans/days?from=yesterday", "", auth},
		{"GET", "/api/v1/sites/demo/scans/days", "", nil},
		{"GET", "/api/v1/sites/nope/scans/days", "", auth},
		{"GET", "/api/v1/sites/nope/scans", "", auth},
		{"GET", "/api/v1/sites/demo/scans/" + scan, "", auth},
		{"GET", "/api/v1/sites/demo/scans/" + scan + "?format=text", "", auth},
		{"GET", "/api/v1/sites/demo/scans/" + scan + "?format=pdf", "", auth},
		{"GET", "/api/v1/sites/demo/scans/00000000-0000-7000-8000-000000000000", "", auth},
		{"GET", "/api/v1/sites/demo/scans/" + scan, "", nil},
		{"POST", "/api/v1/sites/demo/purge?before=2020-01-01", "", auth},
		{"POST", "/api/v1/sites/demo/purge", "", auth},
		{"POST", "/api/v1/keys/rotate", "", nil},
		{"POST", "/api/v1/keys/rotate", "", auth},
		{"GET", "/api/v1/consents/" + id + "/proof", "", auth},
		{"GET", "/api/v1/consents/" + id + "/proof", "", nil},
		{"GET", "/log/checkpoint", "", nil},
		{"GET", "/log/key", "", nil},
		{"GET", "/log/policy", "", nil},
		{"GET", "/log/tile/0/000", "", nil},
		{"GET", "/log/tile/entries/000", "", nil},
		{"GET", "/log/tile/1/000", "", nil},
		{"GET", "/verify", "", nil},
		{"POST", "/api/v1/sites/demo/consents", `{"action":"reject_all"}`, []string{"Content-Type", "application/json"}},
		{"POST", "/api/v1/sites/demo/consents", `{"site":"other","action":"reject_all"}`, []string{"Content-Type", "application/json"}},
	}
	seen := map[string]bool{}
	for _, c := range calls {
		req := httptest.NewRequest(c.method, c.path, strings.NewReader(c.body))
		req.RemoteAddr = "192.0.2.1:1234"
		for i := 0; i+1 < len(c.headers); i += 2 {
			req.Header.Set(c.headers[i], c.headers[i+1])
		}
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)

		vreq := httptest.NewRequest(c.method, doc.Servers[0].URL+c.path, strings.NewReader(c.body))
		vreq.Header = req.Header.Clone()
		route, params, err := router.FindRoute(vreq)
		if err != nil {
			t.Errorf("%s %s: not in the document: %v", c.method, c.path, err)
			continue
		}
		seen[route.Method+" "+route.Path] = true
		in := &openapi3filter.RequestValidationInput{Request: vreq, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, IncludeResponseStatus: true, MultiError: true}}
		if rec.Code < 400 {
			if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
				t.Errorf("%s %s: request: %v", c.method, c.path, err)
			}
		}
		if err := openapi3filter.ValidateResponse(ctx, &openapi3filter.ResponseValidationInput{
			RequestValidationInput: in, Status: rec.Code, Header: rec.Header(), Body: io.NopCloser(bytes.NewReader(rec.Body.Bytes())),
			Options: in.Options,
		}); err != nil {
			t.Errorf("%s %s → %d: response: %v", c.method, c.path, rec.Code, err)
		}
	}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			if !seen[method+" "+path] {
				t.Errorf("%s %s is documented but no test request reached it", method, path)
			}
		}
	}
}
