package server_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/koekje/koekje/server/consent"
)

// A whole export ends with trailers counting its records.
func TestExportTrailer(t *testing.T) {
	t.Parallel()
	s, _ := newServer(t, 0)
	for range 3 {
		post(t, s, `{"site":"demo","action":"reject_all"}`)
	}
	ts := httptest.NewServer(s)
	defer ts.Close()
	for _, format := range []string{"ndjson", "csv", "iso27560"} {
		req, _ := http.NewRequest("GET", ts.URL+"/api/v1/sites/demo/consents?format="+format, nil)
		req.Header.Set("Authorization", "Bearer "+adminToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.Trailer.Get("Koekje-Export-Records") != "3" || resp.Trailer.Get("Koekje-Export-Status") != "complete" {
			t.Errorf("%s: trailers %v", format, resp.Trailer)
		}
	}
}

// Exports that a client never reads hold at most four of the eight readers:
// health checks, statistics and histories keep answering, a fifth export is
// told to retry, and the slots come back once the stalled clients go.
func TestStalledExportsDoNotStarveReaders(t *testing.T) {
	t.Parallel()
	s, db := newServer(t, 0)
	// 4,000 rows: more than the store reads ahead of an export (up to six
	// batches of 256) plus what the export's and the sockets' buffers hold,
	// so each stalled export still holds its reader connection when the
	// probes run. With 1,000 it had let go of it, and a pool of four
	// readers, which stalled exports would starve, passed unnoticed.
	const n = 4000
	var wg sync.WaitGroup
	work := make(chan int, n)
	for i := range n {
		work <- i
	}
	close(work)
	// As many appenders as the writer's largest batch, so the rows take a
	// handful of commits.
	for range 512 {
		wg.Go(func() {
			for i := range work {
				r := &consent.Record{Site: "demo", Action: consent.RejectAll, Choices: map[string]bool{"necessary": true},
					Revision: 1, ConfigHash: s.Bundle("demo").Hash, Language: "nl",
					URL: fmt.Sprintf("http://localhost:1/%d/%s", i, strings.Repeat("p", 200)), UserAgent: strings.Repeat("u", 120)}
				if err := db.Append(context.Background(), r); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	hs := httptest.NewUnstartedServer(s)
	hs.Listener = smallSendBuffer{hs.Listener, t}
	hs.Config = s.HTTPServer("")
	hs.Start()
	defer hs.Close()
	addr := hs.Listener.Addr().String()
	exportReq := "GET /api/v1/sites/demo/consents HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + adminToken + "\r\n\r\n"
	var stalled []net.Conn
	defer func() {
		for _, c := range stalled {
			c.Close()
		}
	}()
	for range 4 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.(*net.TCPConn).SetReadBuffer(4096); err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, exportReq)
		stalled = append(stalled, c)
		// Its status line says it holds a slot: otherwise a probe below
		// could hold one at the moment this export asks, and under load
		// this export would be the one told to retry.
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		status, err := bufio.NewReader(c).ReadString('\n')
		if err != nil || !strings.Contains(status, " 200 ") {
			t.Fatalf("stalled export %d: %q %v", len(stalled), status, err)
		}
	}
	client := &http.Client{Timeout: 5 * time.Second}
	get := func(path string) int {
		req, _ := http.NewRequest("GET", "http://"+addr+path, nil)
		req.Header.Set("Authorization", "Bearer "+adminToken)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s while exports stall: %v", path, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	// Wait until the four stalled exports hold every slot.
	deadline := time.Now().Add(20 * time.Second)
	for get("/api/v1/sites/demo/consents?to=2000-01-01") != 429 {
		if time.Now().After(deadline) {
			t.Fatal("the stalled exports never filled the export slots")
		}
	}
	for _, path := range []string{"/healthz", "/api/v1/sites/demo/stats", "/api/v1/sites/demo/verify"} {
		if code := get(path); code != 200 {
			t.Errorf("%s while exports stall: %d", path, code)
		}
	}
	for _, c := range stalled {
		c.Close()
	}
	stalled = nil
	// A closed client fails the export's next write; at worst its write
	// deadline (30 s) ends it.
	deadline = time.Now().Add(45 * time.Second)
	for code := get("/api/v1/sites/demo/consents?to=2000-01-01"); code != 200; code = get("/api/v1/sites/demo/consents?to=2000-01-01") {
		if time.Now().After(deadline) {
			t.Fatalf("the export slots did not come back: %d", code)
		}
	}
}

// smallSendBuffer gives every accepted connection a small kernel send
// buffer, so an export whose client reads nothing stalls after a few
// kilobytes, whatever the host's TCP buffer sizes.
type smallSendBuffer struct {
	net.Listener
	tb testing.TB
}

func (l smallSendBuffer) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if err := c.(*net.TCPConn).SetWriteBuffer(4096); err != nil {
		l.tb.Errorf("shrink the send buffer: %v", err)
	}
	return c, nil
}
