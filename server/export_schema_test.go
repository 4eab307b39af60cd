package server_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Every line of real NDJSON exports, of every action, with and without the
// transparency log, filtered or not, is valid under the published JSON
// Schema; lines a little off it are not.
func TestExportSchema(t *testing.T) {
	t.Parallel()
	logged, _, _ := newLoggedServer(t)
	served := do(t, logged, "GET", "/api/v1/export.schema.json", "")
	if served.status != 200 || !strings.HasPrefix(served.header.Get("Content-Type"), "application/schema+json") {
		t.Fatalf("export.schema.json: %d %s", served.status, served.header.Get("Content-Type"))
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(served.body))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource("export.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	schema, err := c.Compile("export.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	valid := func(line []byte) error {
		v, err := jsonschema.UnmarshalJSON(bytes.NewReader(line))
		if err != nil {
			return err
		}
		return schema.Validate(v)
	}

	a := post(t, logged, `{"site":"demo","action":"accept_all"}`).json(t)
	id, token := a["consent_id"].(string), a["token"].(string)
	for _, body := range []string{
		`{"site":"demo","action":"reject_all","gpc":true}`,
		`{"site":"demo","action":"custom","choices":{"analytics":true},"services":{"youtube":true},"url":"http://localhost:8080/contact?b=c"}`,
		`{"site":"demo","action":"withdraw","consent_id":"` + id + `","token":"` + token + `"}`,
		`{"site":"demo","action":"load_once","services":{"youtube":true}}`,
	} {
		if r := post(t, logged, body, "User-Agent", "Mozilla/5.0 (\"quoted\" <b>)"); r.status != 201 {
			t.Fatalf("%s: %d %s", body, r.status, r.body)
		}
	}
	unlogged, db := newServer(t, 0)
	fixedStore(db)
	seed(t, db)

	actions := map[string]bool{}
	for _, tt := range []struct {
		s     http.Handler
		query string
		lines int
	}{
		{logged, "", 6},
		{logged, "consent_id=" + id, 3},
		{logged, "from=2000-01-01&to=2999-12-31", 6},
		{unlogged, "", 5},
	} {
		body := do(t, tt.s, "GET", "/api/v1/sites/demo/consents?format=ndjson&"+tt.query, "", "Authorization", "Bearer "+adminToken).body
		lines := bytes.Split(bytes.TrimSuffix(body, []byte("\n")), []byte("\n"))
		if len(lines) != tt.lines {
			t.Fatalf("%q: %d lines, want %d", tt.query, len(lines), tt.lines)
		}
		for _, line := range lines {
			if err := valid(line); err != nil {
				t.Errorf("%q: %s\n%v", tt.query, line, err)
			}
			for _, act := range []string{"accept_all", "reject_all", "custom", "withdraw", "load_once"} {
				actions[act] = actions[act] || bytes.Contains(line, []byte(`"action":"`+act+`"`))
			}
		}
		if !bytes.Contains(lines[len(lines)-1], []byte(`{"koekje_export":`)) {
			t.Errorf("%q: the last line is not the summary", tt.query)
		}
	}
	if len(actions) != 5 || !actions["load_once"] || !actions["withdraw"] || !actions["custom"] || !actions["reject_all"] || !actions["accept_all"] {
		t.Errorf("not every action was exported: %v", actions)
	}

	record := `{"consent_id":"3f0c8a52-7d1e-4b6a-9c2f-5e8d1a4b7c90","record_id":"019ca9b4-5e00-7a3c-8b21-6f0d2e9c4a17","site":"demo","seq":1,` +
		`"recorded_at":"2026-03-01T11:00:00.123456Z","action":"custom","choices":{"necessary":true},"revision":1,` +
		`"config_hash":"sha256:3bfc269594ef649228e9a74bab00f042efc91d5acc6fbee31a382e80d42388fe","language":"nl","gpc":false,"prev_hash":"",` +
		`"hash":"899fe016eba171c6e63ffe55c56902dcadd6f5501d2d04642ce301bd9e3ec5b7"}`
	if err := valid([]byte(record)); err != nil {
		t.Fatalf("the base record: %v", err)
	}
	for _, change := range [][2]string{
		{`"gpc":false`, `"gpc":false,"note":"x"`},
		{`"hash":"899f`, `"hash":"899F`},
		{`11:00:00.123456Z`, `11:00:00.123456+01:00`},
		{`"action":"custom"`, `"action":"accept"`},
		{`"seq":1,`, ``},
		{`"gpc":false`, `"gpc":false,"log_index":3`},
		{`"choices":{"necessary":true}`, `"choices":{"necessary":"yes"}`},
	} {
		if err := valid([]byte(strings.Replace(record, change[0], change[1], 1))); err == nil {
			t.Errorf("%s → %s: valid", change[0], change[1])
		}
	}
}
