package server_test

import (
	"context"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/koekje/koekje/config"
	"github.com/koekje/koekje/server"
	"github.com/koekje/koekje/server/consent"
	"github.com/koekje/koekje/server/cputime"
	"github.com/koekje/koekje/server/export"
	"github.com/koekje/koekje/server/sqlite"
	"github.com/koekje/koekje/server/translog"
)

// BenchmarkBundle serves the precompressed banner through the whole
// middleware chain.
func BenchmarkBundle(b *testing.B) {
	s, _ := newServer(b, 0)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest("GET", "/s/demo.js", nil)
			req.Header.Set("Accept-Encoding", "gzip, deflate, br")
			w := httptest.NewRecorder()
			s.ServeHTTP(w, req)
			if w.Code != 200 {
				b.Fatal(w.Code)
			}
		}
	})
}

// BenchmarkPostConsent records choices end to end: decode, validate, group
// commit to a file database, token, answer; without the transparency log,
// and with it guarded by its reference as serve keeps it (a leaf per record,
// a signed checkpoint per batch).
func BenchmarkPostConsent(b *testing.B) {
	body := `{"site":"demo","consent_id":null,"token":null,"choices":{"necessary":true,"functional":true,"analytics":false,"embeds":false},"action":"custom","revision":1,"language":"nl","url":"http://example.com/contact","gpc":false}`
	for _, mode := range []string{"none", "guarded"} {
		b.Run("log="+mode, func(b *testing.B) {
			var s *server.Server
			if mode == "none" {
				s, _ = newServer(b, 0)
			} else {
				s, _, _ = newLoggedServerWith(b, func(d *serverDeps) {
					db := d.Store.(*sqlite.DB)
					guard, err := translog.CheckLogState(context.Background(), db, db.KeyFile(), nil, d.LogKey, nil, false)
					if err != nil || guard.Held() {
						b.Fatalf("guard: %v %q", err, guard.Reason())
					}
					db.GuardLog(guard)
					d.LogGuard = guard
				})
			}
			b.SetParallelism(32)
			b.ReportAllocs()
			start := cputime.Process()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req := httptest.NewRequest("POST", "/api/v1/consents", strings.NewReader(body))
					req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
					req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36")
					w := httptest.NewRecorder()
					s.ServeHTTP(w, req)
					if w.Code != 201 {
						b.Fatal(w.Code, w.Body.String())
					}
				}
			})
			b.ReportMetric(float64((cputime.Process()-start).Nanoseconds())/float64(b.N), "cpu-ns/op")
		})
	}
}

// BenchmarkExportNDJSON streams 10,000 records per iteration.
func BenchmarkExportNDJSON(b *testing.B) {
	_, db := newServer(b, 0)
	ctx := context.Background()
	for i := 0; i < 10000; i++ {
		db.Append(ctx, &consent.Record{ConsentID: uuid.New(), Site: "demo", Action: consent.AcceptAll, Revision: 1,
			Choices:    map[string]bool{"necessary": true, "functional": true, "analytics": true, "embeds": true},
			ConfigHash: "sha256:" + strings.Repeat("0", 64), Language: "nl", URL: "https://belvast.example/",
			UserAgent: "Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0.0.0", IP: "192.0.2.0/24"})
	}
	site := config.Demo().Site("demo")
	b.ReportAllocs()
	for b.Loop() {
		exp, _ := export.New("ndjson", site, io.Discard)
		if err := db.Scan(ctx, consent.Filter{Site: "demo"}, exp.Write); err != nil {
			b.Fatal(err)
		}
		exp.Close()
	}
	b.ReportMetric(float64(10000*b.N)/b.Elapsed().Seconds(), "records/s")
}
