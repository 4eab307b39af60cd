package server_test

import (
	"context"
	"database/sql"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/koekje/koekje/server/consent"
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
			forged := *rec
			forged.Action, forged.Choices = consent.AcceptAll, map[string]bool{}
			for k := range rec.Choices {
				forged.Choices[k] = true
			}
			choices := `{"analytics":true,"embeds":true,"functional":true,"necessary":true}`
			raw, err := sql.Open("sqlite3", "file:"+db.Path())
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			set := `UPDATE records SET action = 'accept_all', choices = ?`
			args := []any{choices}
			if withHash {
				set += `, hash = ?`
				args = append(args, consent.RecordHash(&forged))
			}
			args = append(args, rec.Seq)
			for _, q := range []string{`DROP TRIGGER records_append_only`, set + ` WHERE site = 'demo' AND seq = ?`,
				`CREATE TRIGGER records_append_only BEFORE UPDATE ON records BEGIN SELECT RAISE(ABORT, 'consent records are append-only'); END`} {
				var a []any
				if strings.HasPrefix(q, "UPDATE") {
					a = args
				}
				if _, err := raw.Exec(q, a...); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
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
			m := do(t, s, "GET", "/metrics", "", "Authorization", "Bearer "+adminToken)
			if !strings.Contains(string(m.body), "koekje_receipts_refused_tampered_total 2") {
				t.Errorf("no count of the refused receipts:\n%s", m.body)
			}
		})
	}
}
