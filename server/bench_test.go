package server_test

import (
	"context"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/koekje/koekje/config"
	"github.com/koekje/koekje/server/consent"
	"github.com/koekje/koekje/server/export"
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
// commit to a file database, token, answer.
func BenchmarkPostConsent(b *testing.B) {
	s, _ := newServer(b, 0)
	body := `{"site":"demo","choices":{"necessary":true,"functional":true,"analytics":false,"embeds":false},"action":"custom","revision":1,"language":"nl","url":"https://belvast.example/contact","gpc":false}`
	b.SetParallelism(32)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest("POST", "/api/v1/consents", strings.NewReader(body))
			req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
			w := httptest.NewRecorder()
			s.ServeHTTP(w, req)
			if w.Code != 201 {
				b.Fatal(w.Code, w.Body.String())
			}
		}
	})
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
