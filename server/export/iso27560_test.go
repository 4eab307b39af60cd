package export

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/koekje/koekje/config"
	"github.com/koekje/koekje/server/consent"
)

// A choice as the API takes it, and what every export format says of it: the
// ISO 27560 status of the record and of each purpose ("-" where a purpose
// carries no consent status), and the choices NDJSON and CSV carry.
var choiceTests = []struct {
	name, body string
	status     string
	purposes   []string
	choices    map[string]bool
	services   []string
}{
	{
		name: "accept_all", body: `{"action":"accept_all"}`,
		status:   "given",
		purposes: []string{"necessary necessary -", "functional consent given", "analytics consent given", "embeds consent given"},
		choices:  map[string]bool{"necessary": true, "functional": true, "analytics": true, "embeds": true},
	},
	{
		name: "reject_all", body: `{"action":"reject_all"}`,
		status:   "refused",
		purposes: []string{"necessary necessary -", "functional consent refused", "analytics consent refused", "embeds consent refused"},
		choices:  map[string]bool{"necessary": true, "functional": false, "analytics": false, "embeds": false},
	},
	{
		name: "custom granting some", body: `{"action":"custom","choices":{"analytics":true}}`,
		status:   "given",
		purposes: []string{"necessary necessary -", "functional consent refused", "analytics consent given", "embeds consent refused"},
		choices:  map[string]bool{"necessary": true, "functional": false, "analytics": true, "embeds": false},
	},
	{
		name: "custom granting none", body: `{"action":"custom","choices":{"functional":false,"analytics":false,"embeds":false}}`,
		status:   "refused",
		purposes: []string{"necessary necessary -", "functional consent refused", "analytics consent refused", "embeds consent refused"},
		choices:  map[string]bool{"necessary": true, "functional": false, "analytics": false, "embeds": false},
	},
	{
		name: "custom granting one service", body: `{"action":"custom","services":{"youtube":true}}`,
		status: "given",
		purposes: []string{"necessary necessary -", "functional consent refused", "analytics consent refused", "embeds consent refused",
			"embeds/youtube consent given"},
		choices:  map[string]bool{"necessary": true, "functional": false, "analytics": false, "embeds": false},
		services: []string{"youtube"},
	},
	{
		name: "custom granting only a necessary service", body: `{"action":"custom","services":{"koekje":true}}`,
		status: "refused",
		purposes: []string{"necessary necessary -", "functional consent refused", "analytics consent refused", "embeds consent refused",
			"necessary/koekje necessary -"},
		choices:  map[string]bool{"necessary": true, "functional": false, "analytics": false, "embeds": false},
		services: []string{"koekje"},
	},
	{
		name: "withdraw", body: `{"action":"withdraw"}`,
		status:   "withdrawn",
		purposes: []string{"necessary necessary -", "functional consent withdrawn", "analytics consent withdrawn", "embeds consent withdrawn"},
		choices:  map[string]bool{"necessary": true, "functional": false, "analytics": false, "embeds": false},
	},
	{
		name: "load_once", body: `{"action":"load_once","choices":{"functional":true},"services":{"google-maps":true}}`,
		status: "given",
		purposes: []string{"necessary necessary -", "functional consent given", "analytics consent refused", "embeds consent refused",
			"embeds/google-maps consent given for dpv:FixedOccurrencesDuration 1"},
		choices:  map[string]bool{"necessary": true, "functional": true, "analytics": false, "embeds": false},
		services: []string{"google-maps"},
	},
}

// record validates body as the API does and fills in what the server adds.
func record(t *testing.T, site *config.Site, body string) *consent.Record {
	t.Helper()
	req, err := consent.DecodeRequest([]byte(`{"site":"demo",` + body[1:]))
	if err != nil {
		t.Fatal(err)
	}
	r, err := req.Validate(site, config.Hash([]byte("v1")), "")
	if err != nil {
		t.Fatal(err)
	}
	r.RecordID, r.ConsentID, r.Seq, r.RecordedAt = uuid.New(), uuid.New(), 1, time.Date(2026, 3, 1, 11, 0, 0, 0, time.UTC)
	r.Hash = []byte{1}
	return r
}

// export writes recs in format and returns what the writer wrote.
func export(t *testing.T, format string, site *config.Site, recs ...*consent.Record) []byte {
	t.Helper()
	var out bytes.Buffer
	w, err := New(format, site, &out)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// purposeLine writes one ISO 27560 purpose as "id[/service] basis status
// [for duration]", "-" for a status the purpose does not carry.
func purposeLine(t *testing.T, p map[string]any) string {
	t.Helper()
	s := fmt.Sprint(p["purpose_id"])
	if sv, ok := p["service"]; ok {
		s += "/" + fmt.Sprint(sv)
	}
	switch b := p["lawful_basis"]; b {
	case "consent":
		s += " consent"
	case "strictly necessary (ePrivacy Directive art. 5(3))":
		s += " necessary"
	default:
		s += fmt.Sprintf(" %q", b)
	}
	if st, ok := p["consent_status"]; ok {
		if st == "" {
			t.Errorf("%s: an empty consent_status", s)
		}
		s += " " + fmt.Sprint(st)
	} else {
		s += " -"
	}
	if d, ok := p["duration"].(map[string]any); ok {
		s += fmt.Sprintf(" for %v %v", d["type"], d["value"])
	}
	return s
}

// Each purpose's ISO 27560 status follows the visitor's choice, and the
// record says given only when it grants an optional purpose.
func TestISOStatusFollowsChoice(t *testing.T) {
	site := config.Demo().Site("demo")
	for _, tt := range choiceTests {
		t.Run(tt.name, func(t *testing.T) {
			var recs []map[string]any
			if err := json.Unmarshal(export(t, "iso27560", site, record(t, site, tt.body)), &recs); err != nil || len(recs) != 1 {
				t.Fatalf("not a JSON array of one record: %v", err)
			}
			if got := recs[0]["consent_status"]; got != tt.status {
				t.Errorf("record consent_status %v, want %s", got, tt.status)
			}
			var got []string
			purposes, _ := recs[0]["purposes"].([]any)
			for _, p := range purposes {
				p, _ := p.(map[string]any)
				got = append(got, purposeLine(t, p))
			}
			if !slices.Equal(got, tt.purposes) {
				t.Errorf("purposes\n got  %q\n want %q", got, tt.purposes)
			}
		})
	}
}

// NDJSON and CSV carry no status: they carry the choices themselves, exactly.
func TestNDJSONAndCSVCarryTheChoice(t *testing.T) {
	site := config.Demo().Site("demo")
	for _, tt := range choiceTests {
		t.Run(tt.name, func(t *testing.T) {
			r := record(t, site, tt.body)
			var line Line
			if err := json.Unmarshal(export(t, "ndjson", site, r), &line); err != nil {
				t.Fatal(err)
			}
			if line.Action != r.Action || fmt.Sprint(line.Choices) != fmt.Sprint(tt.choices) || !slices.Equal(line.Services, tt.services) {
				t.Errorf("ndjson: %s %v %v, want %s %v %v", line.Action, line.Choices, line.Services, r.Action, tt.choices, tt.services)
			}
			rows, err := csv.NewReader(bytes.NewReader(export(t, "csv", site, r))).ReadAll()
			if err != nil || len(rows) != 2 {
				t.Fatalf("csv: %v %v", err, rows)
			}
			cell := func(name string) string { return rows[1][slices.Index(rows[0], name)] }
			if cell("action") != r.Action || cell("services") != strings.Join(tt.services, " ") {
				t.Errorf("csv: action %q services %q", cell("action"), cell("services"))
			}
			for id, want := range tt.choices {
				if got := cell("choice_" + id); got != fmt.Sprint(want) {
					t.Errorf("csv choice_%s = %q, want %v", id, got, want)
				}
			}
		})
	}
}

// A category added to the site after a record was made was never put to its
// visitor: the record claims no status for it.
func TestISOLeavesOutCategoriesNeverAsked(t *testing.T) {
	site := config.Demo().Site("demo")
	r := record(t, site, `{"action":"reject_all"}`)
	delete(r.Choices, "embeds")
	iso := NewISORecord(r, site)
	var ids []string
	for _, p := range iso.Purposes {
		ids = append(ids, p.PurposeID)
	}
	if want := []string{"necessary", "functional", "analytics"}; !slices.Equal(ids, want) || iso.ConsentStatus != StatusRefused {
		t.Errorf("purposes %v, status %s; want %v, refused", ids, iso.ConsentStatus, want)
	}
}
