package server_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/koekje/koekje/server/consent"
	"github.com/koekje/koekje/server/sqlite"
)

// Nothing is signed for a record that no longer matches its proof (issue
// 25: a withdrawal changed to accept_all in the database got a receipt
// claiming accept_all). Changed alone, its fields no longer give its stored
// hash; changed with a recomputed stored hash, its leaf in the signed log
// no longer commits to it. Either way: a clear 409, an ERROR line, a
// metric, and no JWT. The record untouched still gets its receipt.
func TestNoReceiptForATamperedRecord(t *testing.T) {
	t.Parallel()
	for _, withHash := range []bool{false, true} {
		name := "fields"
		if withHash {
			name = "fields and hash"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s, db, _ := newLoggedServer(t)
			first := post(t, s, `{"site":"demo","action":"accept_all"}`).json(t)
			id, token := first["consent_id"].(string), first["token"].(string)
			w := post(t, s, `{"site":"demo","action":"withdraw","consent_id":"`+id+`","token":"`+token+`"}`).json(t)
			token = w["token"].(string)
			path := "/api/v1/consents/" + id + "/receipt?token=" + token
			if r := do(t, s, "GET", path, ""); r.status != 200 || !strings.Contains(string(r.body), `"action":"withdraw"`) {
				t.Fatalf("the untouched record's receipt: %d %s", r.status, r.body)
			}

			rec, err := db.Latest(context.Background(), uuid.MustParse(id), "demo")
			if err != nil {
				t.Fatal(err)
			}
			forgeAcceptAll(t, db, rec, withHash)
			if got, _ := db.Latest(context.Background(), uuid.MustParse(id), "demo"); got.Action != consent.AcceptAll {
				t.Fatalf("the edit did not take: %+v", got)
			}
			r := do(t, s, "GET", path, "")
			if r.status != 409 || strings.Contains(string(r.body), `"jwt"`) || !strings.Contains(string(r.body), "does not match its proof") {
				t.Errorf("receipt of the tampered record: %d %s, want 409 and no receipt", r.status, r.body)
			}
			if r := do(t, s, "GET", path, "", "Accept", "text/html"); r.status != 409 {
				t.Errorf("receipt page of the tampered record: %d", r.status)
			}
			b := newBrowser(t, s)
			b.signIn()
			if _, look := b.get("/admin/lookup?consent_id=" + id); strings.Count(look, "Changed behind the server") != 1 || strings.Count(look, "Intact") != 1 {
				t.Errorf("the console's lookup does not mark the tampered record (its older record is intact): %s", look)
			}
			m := do(t, s, "GET", "/metrics", "", "Authorization", "Bearer "+adminToken)
			if !strings.Contains(string(m.body), "koekje_receipts_refused_tampered_total 2") {
				t.Errorf("no count of the refused receipts:\n%s", m.body)
			}
			// The evidence pack signs a receipt for each record: refused too.
			if r := do(t, s, "GET", "/api/v1/sites/demo/consents/"+id+"/evidence", "", "Authorization", "Bearer "+adminToken); r.status != 409 ||
				r.header.Get("Content-Type") == "application/zip" {
				t.Errorf("evidence pack of the tampered record: %d %s, want 409", r.status, r.header.Get("Content-Type"))
			}
		})
	}
}

// forgeAcceptAll changes rec to accept_all in the database, as an insider
// holding the file would: the append-only trigger dropped and put back, and
// with withHash the stored hash recomputed to match.
func forgeAcceptAll(t *testing.T, db *sqlite.DB, rec *consent.Record, withHash bool) {
	t.Helper()
	forged := *rec
	forged.Action, forged.Choices = consent.AcceptAll, map[string]bool{}
	for k := range rec.Choices {
		forged.Choices[k] = true
	}
	choices, err := json.Marshal(forged.Choices)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := sql.Open("sqlite3", "file:"+db.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	set := `UPDATE records SET action = 'accept_all', choices = ?`
	args := []any{string(choices)}
	if withHash {
		set += `, hash = ?`
		args = append(args, consent.RecordHash(&forged))
	}
	args = append(args, rec.Site, rec.Seq)
	for _, q := range []string{`DROP TRIGGER records_append_only`, set + ` WHERE site = ? AND seq = ?`,
		`CREATE TRIGGER records_append_only BEFORE UPDATE ON records BEGIN SELECT RAISE(ABORT, 'consent records are append-only'); END`} {
		var a []any
		if strings.HasPrefix(q, "UPDATE") {
			a = args
		}
		if _, err := raw.Exec(q, a...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// Without a log, a record rewritten together with its stored hash is caught
// by the next record of its site, whose link still names the old hash: the
// visitor's latest record is followed by another visitor's choice. No
// receipt, and the console marks the record; the other visitor's record,
// whose link is what gave it away, stays intact.
func TestNoReceiptForARecordTheNextOneDoesNotLinkTo(t *testing.T) {
	t.Parallel()
	s, db := newServer(t, 0)
	first := post(t, s, `{"site":"demo","action":"reject_all"}`).json(t)
	id, token := first["consent_id"].(string), first["token"].(string)
	other := post(t, s, `{"site":"demo","action":"reject_all"}`).json(t)
	path := "/api/v1/consents/" + id + "/receipt?token=" + token
	if r := do(t, s, "GET", path, ""); r.status != 200 {
		t.Fatalf("the untouched record's receipt: %d %s", r.status, r.body)
	}
	rec, err := db.Latest(context.Background(), uuid.MustParse(id), "demo")
	if err != nil {
		t.Fatal(err)
	}
	forgeAcceptAll(t, db, rec, true)
	r := do(t, s, "GET", path, "")
	if r.status != 409 || strings.Contains(string(r.body), `"jwt"`) || !strings.Contains(string(r.body), "the next record of its site does not link to its hash") {
		t.Errorf("receipt of the rewritten record: %d %s, want 409 naming the broken link", r.status, r.body)
	}
	otherPath := "/api/v1/consents/" + other["consent_id"].(string) + "/receipt?token=" + other["token"].(string)
	if r := do(t, s, "GET", otherPath, ""); r.status != 200 {
		t.Errorf("the next record's own receipt: %d %s", r.status, r.body)
	}
	b := newBrowser(t, s)
	b.signIn()
	if _, look := b.get("/admin/lookup?consent_id=" + id); !strings.Contains(look, "the next record of its site does not link to its hash") {
		t.Errorf("the console's lookup does not mark the rewritten record: %s", look)
	}
	if _, look := b.get("/admin/lookup?consent_id=" + other["consent_id"].(string)); !strings.Contains(look, "Intact") {
		t.Errorf("the console's lookup does not show the next record intact: %s", look)
	}
}
