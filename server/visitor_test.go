package server_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/koekje/koekje/server/consent"
)

// A retried POST with the same request ID gets the first answer and records
// nothing new, even after the visitor's token moved on, and even when the
// retries race each other.
func TestRequestIDMakesRetriesIdempotent(t *testing.T) {
	t.Parallel()
	s, db := newServer(t, 0)
	body := `{"site":"demo","action":"reject_all","request_id":"retry-0123456789abcdef"}`
	first := post(t, s, body).json(t)
	again := post(t, s, body)
	if again.status != 201 || again.json(t)["record_id"] != first["record_id"] || again.json(t)["consent_id"] != first["consent_id"] {
		t.Fatalf("retry: %d %s, want the first answer %v", again.status, again.body, first)
	}
	if n, _ := db.CountSince(context.Background(), uuid.MustParse(first["consent_id"].(string)), time.Time{}); n != 1 {
		t.Fatalf("%d records after a retry, want 1", n)
	}

	// A later choice carries the token; its retry after the write (the
	// answer was lost) carries the same, now old, token.
	id, token := first["consent_id"].(string), first["token"].(string)
	later := `{"site":"demo","action":"accept_all","consent_id":"` + id + `","token":"` + token + `","request_id":"retry-later-000000000001"}`
	a := post(t, s, later).json(t)
	b := post(t, s, later)
	if b.status != 201 || b.json(t)["record_id"] != a["record_id"] || b.json(t)["token"] == "" {
		t.Fatalf("retry with the old token: %d %s", b.status, b.body)
	}
	// Once a newer choice replaced it, a request ID answers nothing: no
	// token for the visitor's newest record: an old request ID must be
	// no lasting key to the visitor's history.
	replay := do(t, s, "POST", "/api/v1/consents", body, "Content-Type", "application/json")
	if replay.status != 409 || strings.Contains(string(replay.body), `"token"`) || replay.json(t)["error"].(map[string]any)["field"] != "request_id" {
		t.Errorf("a replay of the first request ID after a newer choice: %d %s, want 409 without a token", replay.status, replay.body)
	}
	// The same request ID for another consent ID is a conflict.
	other := post(t, s, `{"site":"demo","action":"reject_all"}`).json(t)
	clash := `{"site":"demo","action":"accept_all","consent_id":"` + other["consent_id"].(string) + `","token":"` + other["token"].(string) + `","request_id":"retry-later-000000000001"}`
	scenario{method: "POST", path: "/api/v1/consents", body: clash, headers: []string{"Content-Type", "application/json"},
		status: 409, code: "conflict", field: "request_id"}.run(t, s)

	// Racing retries: one record.
	race := `{"site":"demo","action":"reject_all","request_id":"race-000000000000000001"}`
	var wg sync.WaitGroup
	ids := make([]string, 16)
	for i := range ids {
		wg.Go(func() {
			r := do(t, s, "POST", "/api/v1/consents", race, "Content-Type", "application/json")
			if r.status == 201 {
				ids[i] = r.json(t)["record_id"].(string)
			}
		})
	}
	wg.Wait()
	for _, got := range ids {
		if got != ids[0] || got == "" {
			t.Fatalf("racing retries answered different records: %v", ids)
		}
	}

	for _, bad := range []string{"short", strings.Repeat("x", 65), "has space 0123456789", "ünïcode-0123456789"} {
		scenario{method: "POST", path: "/api/v1/consents", headers: []string{"Content-Type", "application/json"},
			body: `{"site":"demo","action":"reject_all","request_id":` + strconv.Quote(bad) + `}`, status: 422, code: "invalid", field: "request_id"}.run(t, s)
	}
}

// Every write rotates the visitor's token: the one before stops working for
// writes and reads.
func TestTokenRotatesOnWrite(t *testing.T) {
	t.Parallel()
	s, _ := newServer(t, 0)
	a := post(t, s, `{"site":"demo","action":"accept_all"}`).json(t)
	id, t1 := a["consent_id"].(string), a["token"].(string)
	b := post(t, s, `{"site":"demo","action":"withdraw","consent_id":"`+id+`","token":"`+t1+`"}`).json(t)
	t2 := b["token"].(string)
	if t2 == t1 {
		t.Fatal("the token did not change on a write")
	}
	postScenario("old token after a withdrawal", `{"site":"demo","action":"accept_all","consent_id":"`+id+`","token":"`+t1+`"}`, nil, 401, "unauthorized", "token").run(t, s)
	scenario{method: "GET", path: "/api/v1/consents/" + id + "/receipt?token=" + t1, status: 401, code: "unauthorized"}.run(t, s)
	scenario{method: "GET", path: "/api/v1/consents/" + id + "/receipt", headers: []string{"Authorization", "Bearer " + t2}, status: 200}.run(t, s)
}

// load_once records one service for one page view.
func TestLoadOnce(t *testing.T) {
	t.Parallel()
	s, _ := newServer(t, 0)
	r := post(t, s, `{"site":"demo","action":"load_once","services":{"youtube":true}}`).json(t)
	recs := history(t, s, r["consent_id"].(string), "Authorization", "Bearer "+adminToken)
	if len(recs) != 1 || recs[0]["action"] != "load_once" || fmt.Sprint(recs[0]["services"]) != "[youtube]" ||
		recs[0]["choices"].(map[string]any)["embeds"] != false {
		t.Fatalf("load_once record: %v", recs)
	}
	for _, body := range []string{
		`{"site":"demo","action":"load_once"}`,
		`{"site":"demo","action":"load_once","services":{"youtube":true,"google-maps":true}}`,
	} {
		postScenario(body, body, nil, 422, "invalid", "services").run(t, s)
	}
}

// A page must be on one of the site's origins, and is kept as origin and
// path, cut at 512 bytes.
func TestPageURLIsBounded(t *testing.T) {
	t.Parallel()
	s, _ := newServer(t, 0)
	postScenario("other origin", `{"site":"demo","action":"reject_all","url":"https://evil.example/x"}`, nil, 422, "invalid", "url").run(t, s)
	long := "http://localhost:3000/" + strings.Repeat("p", 1500)
	r := post(t, s, `{"site":"demo","action":"reject_all","url":"`+long+`"}`).json(t)
	recs := history(t, s, r["consent_id"].(string), "Authorization", "Bearer "+adminToken)
	if got := recs[0]["url"].(string); len(got) != consent.StoredURLBytes || !strings.HasPrefix(long, got) {
		t.Fatalf("stored page %d bytes, want the first %d", len(got), consent.StoredURLBytes)
	}
}

// One consent ID adds at most 100 records a day; past that, 429 with
// Retry-After.
func TestDailyCapPerConsentID(t *testing.T) {
	t.Parallel()
	s, _ := newServer(t, 0)
	a := post(t, s, `{"site":"demo","action":"accept_all"}`).json(t)
	id, token := a["consent_id"].(string), a["token"].(string)
	for i := 1; i < 100; i++ {
		r := post(t, s, `{"site":"demo","action":"reject_all","consent_id":"`+id+`","token":"`+token+`"}`)
		if r.status != 201 {
			t.Fatalf("write %d: %d %s", i+1, r.status, r.body)
		}
		token = r.json(t)["token"].(string)
	}
	r := postScenario("101st", `{"site":"demo","action":"reject_all","consent_id":"`+id+`","token":"`+token+`"}`, nil, 429, "rate_limited", "").run(t, s)
	if ra, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || ra < 1 || ra > 86400 {
		t.Errorf("Retry-After %q", r.header.Get("Retry-After"))
	}
}

// Histories come in pages of 100 (or ?limit=), with a cursor to the next.
func TestHistoryPages(t *testing.T) {
	t.Parallel()
	s, db := newServer(t, 0)
	id := uuid.Nil
	for i := range 230 {
		r := &consent.Record{ConsentID: id, Site: "demo", Action: consent.RejectAll, Choices: map[string]bool{"necessary": true},
			Revision: 1, ConfigHash: s.Bundle("demo").Hash, Language: "nl", URL: fmt.Sprintf("http://localhost:1/%d", i)}
		if err := db.Append(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		id = r.ConsentID
	}
	var urls []string
	path, pages := "/api/v1/consents/"+id.String(), 0
	for {
		r := scenario{method: "GET", path: path, headers: []string{"Authorization", "Bearer " + adminToken}, status: 200}.run(t, s)
		m := r.json(t)
		recs := m["records"].([]any)
		pages++
		for _, rec := range recs {
			urls = append(urls, rec.(map[string]any)["url"].(string))
		}
		next, _ := m["next_cursor"].(string)
		if next == "" {
			break
		}
		if len(recs) != 100 {
			t.Fatalf("page %d has %d records, want 100", pages, len(recs))
		}
		path = "/api/v1/consents/" + id.String() + "?cursor=" + next
	}
	if pages != 3 || len(urls) != 230 || urls[0] != "http://localhost:1/0" || urls[229] != "http://localhost:1/229" {
		t.Fatalf("%d pages, %d records, first %s", pages, len(urls), urls[0])
	}
	r := scenario{method: "GET", path: "/api/v1/consents/" + id.String() + "?limit=7", headers: []string{"Authorization", "Bearer " + adminToken}, status: 200}.run(t, s)
	if n := len(r.json(t)["records"].([]any)); n != 7 {
		t.Errorf("limit=7 gave %d", n)
	}
	for _, q := range []string{"limit=0", "limit=1001", "limit=x", "cursor=-1", "cursor=abc"} {
		field, _, _ := strings.Cut(q, "=")
		scenario{method: "GET", path: "/api/v1/consents/" + id.String() + "?" + q, headers: []string{"Authorization", "Bearer " + adminToken},
			status: 422, code: "invalid", field: field}.run(t, s)
	}
}

// A choice may name its site in the path, for routing by site.
func TestPostWithSiteInPath(t *testing.T) {
	t.Parallel()
	s, _ := newServer(t, 0)
	json := []string{"Content-Type", "application/json"}
	r := scenario{method: "POST", path: "/api/v1/sites/demo/consents", headers: json, body: `{"action":"reject_all"}`, status: 201}.run(t, s)
	if recs := history(t, s, r.json(t)["consent_id"].(string), "Authorization", "Bearer "+adminToken); len(recs) != 1 || recs[0]["site"] != "demo" {
		t.Fatalf("%v", recs)
	}
	scenario{method: "POST", path: "/api/v1/sites/demo/consents", headers: json, body: `{"site":"demo","action":"reject_all"}`, status: 201}.run(t, s)
	scenario{method: "POST", path: "/api/v1/sites/demo/consents", headers: json, body: `{"site":"other","action":"reject_all"}`, status: 422, code: "invalid", field: "site"}.run(t, s)
	scenario{method: "POST", path: "/api/v1/sites/nope/consents", headers: json, body: `{"action":"reject_all"}`, status: 404, code: "not_found", field: "site"}.run(t, s)
}
