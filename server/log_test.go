package server_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/koekje/koekje/config"
	"github.com/koekje/koekje/server"
	kproof "github.com/koekje/koekje/server/proof"
	"github.com/koekje/koekje/server/sqlite"
	"github.com/koekje/koekje/server/translog"
	"github.com/koekje/koekje/server/witness"
)

// newLoggedServer is a server that keeps the transparency log.
func newLoggedServer(t *testing.T) (*server.Server, *sqlite.DB, string) {
	t.Helper()
	return newLoggedServerWith(t, nil)
}

// newLoggedServerWith is newLoggedServer whose dependencies edit may
// change (edit may be nil).
func newLoggedServerWith(t testing.TB, edit func(*serverDeps)) (*server.Server, *sqlite.DB, string) {
	t.Helper()
	db, err := sqlite.Open(filepath.Join(t.TempDir(), "koekje.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	signer, err := db.StartLog(context.Background(), "koekje.test/log")
	if err != nil {
		t.Fatal(err)
	}
	keys, err := kproof.OpenKeys(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	d := server.Deps{Config: config.Demo(), Store: db, Keys: keys,
		TokenKey: bytes.Repeat([]byte{7}, 64), AdminToken: adminToken, LogKey: signer.VerifierKey(), PublicURL: publicURL}
	if edit != nil {
		edit(&d)
	}
	s, err := server.New(context.Background(), d)
	if err != nil {
		t.Fatal(err)
	}
	return s, db, signer.VerifierKey()
}

// remote reads the log's tiles over HTTP, as any client would.
func remote(base string) *translog.Remote {
	return &translog.Remote{Base: base + "/log/", Client: http.DefaultClient, Ctx: context.Background()}
}

func checkpointOf(t *testing.T, base, key string) translog.Checkpoint {
	t.Helper()
	resp, err := http.Get(base + "/log/checkpoint")
	if err != nil {
		t.Fatal(err)
	}
	signed, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	cp, _, err := translog.OpenCheckpoint(signed, key)
	if err != nil {
		t.Fatalf("checkpoint %q: %v", signed, err)
	}
	return cp
}

func postMany(t testing.TB, s http.Handler, n int) []map[string]any {
	t.Helper()
	out := make([]map[string]any, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { out[i] = post(t, s, `{"site":"demo","action":"reject_all"}`).json(t) })
	}
	wg.Wait()
	return out
}

// The log, read over HTTP as C2SP tiles, proves with an independent
// implementation (transparency-dev/merkle): a receipt's record is in the
// checkpoint, and the log only grew between two checkpoints.
func TestLogInteroperates(t *testing.T) {
	t.Parallel()
	s, _, key := newLoggedServer(t)
	ts := httptest.NewServer(s)
	defer ts.Close()
	postMany(t, s, 100)
	old := checkpointOf(t, ts.URL, key)
	if old.Size != 100 {
		t.Fatalf("checkpoint after 100 records: size %d", old.Size)
	}
	answers := postMany(t, s, 200)
	cp := checkpointOf(t, ts.URL, key)
	if cp.Size != 300 {
		t.Fatalf("checkpoint after 300 records: size %d", cp.Size)
	}
	tree := tlog.Tree{N: cp.Size, Hash: cp.Hash}
	hashes := tlog.TileHashReader(tree, remote(ts.URL))

	// Inclusion: a receipt names the leaf; its proof checks independently.
	a := answers[123]
	r := do(t, s, "GET", "/api/v1/consents/"+a["consent_id"].(string)+"/receipt", "", "Authorization", "Bearer "+a["token"].(string))
	var receipt struct{ Claims kproof.Receipt }
	if err := json.Unmarshal(r.body, &receipt); err != nil || receipt.Claims.LogIndex == nil {
		t.Fatalf("receipt without a log index: %s", r.body)
	}
	p := proofOf(t, s, a)
	recordHash, _ := hex.DecodeString(receipt.Claims.RecordHash)
	if _, err := p.Verify(recordHash, key); err != nil {
		t.Fatalf("the proof does not verify: %v", err)
	}
	if p.Index != *receipt.Claims.LogIndex {
		t.Fatalf("proof index %d, receipt %d", p.Index, *receipt.Claims.LogIndex)
	}
	// The entry served in the bundle is the leaf the proof rebuilds.
	// The leaf may be in the last, partial tile.
	width := int(min(256, cp.Size-p.Index>>8<<8))
	bundle, err := remote(ts.URL).ReadTiles([]tlog.Tile{{H: 8, L: -1, N: p.Index >> 8, W: width}})
	if err != nil {
		t.Fatal(err)
	}
	entries, err := translog.ParseEntryBundle(bundle[0])
	if err != nil || len(entries) != width {
		t.Fatalf("entry bundle: %d entries, %v", len(entries), err)
	}
	leaf := translog.Leaf{Commitment: translog.Commit(p.Salt, recordHash), SiteTag: p.SiteTag}.Encode()
	if !bytes.Equal(entries[p.Index%256], leaf) {
		t.Fatal("the served entry is not the proven leaf")
	}
	path, err := tlog.ProveRecord(cp.Size, p.Index, hashes)
	if err != nil {
		t.Fatal(err)
	}
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, uint64(p.Index), uint64(cp.Size), rfc6962.DefaultHasher.HashLeaf(leaf), raw(path), cp.Hash[:]); err != nil {
		t.Fatalf("transparency-dev/merkle rejects the inclusion proof: %v", err)
	}
	// Consistency: the tree of 100 is a prefix of the tree of 300.
	cons, err := tlog.ProveTree(cp.Size, old.Size, hashes)
	if err != nil {
		t.Fatal(err)
	}
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, uint64(old.Size), uint64(cp.Size), raw(cons), old.Hash[:], cp.Hash[:]); err != nil {
		t.Fatalf("transparency-dev/merkle rejects the consistency proof: %v", err)
	}
	// Tiles beyond the tree are not there; full tiles are immutable.
	for _, tt := range []struct {
		path   string
		status int
	}{{"/log/tile/0/000", 200}, {"/log/tile/0/001.p/44", 200}, {"/log/tile/0/001.p/45", 404}, {"/log/tile/0/002", 404},
		{"/log/tile/1/000.p/1", 200}, {"/log/tile/entries/001.p/44", 200}, {"/log/tile/x", 404}} {
		resp, err := http.Get(ts.URL + tt.path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.status {
			t.Errorf("%s: %d, want %d", tt.path, resp.StatusCode, tt.status)
		}
		if tt.path == "/log/tile/0/000" && resp.Header.Get("Cache-Control") != "public, max-age=31536000, immutable" {
			t.Errorf("a full tile's Cache-Control: %s", resp.Header.Get("Cache-Control"))
		}
	}
}

func raw(hs []tlog.Hash) [][]byte {
	out := make([][]byte, len(hs))
	for i := range hs {
		out[i] = hs[i][:]
	}
	return out
}

// Records written before the log existed get leaves, in order, when it
// starts.
func TestLogBackfill(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "koekje.db")
	s, db := newServerAt(t, path)
	for range 5 {
		post(t, s, `{"site":"demo","action":"reject_all"}`)
	}
	db.Close()
	db, err := sqlite.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	signer, err := db.StartLog(context.Background(), "koekje.test/log")
	if err != nil {
		t.Fatal(err)
	}
	signed, err := db.LatestCheckpoint(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	cp, _, err := translog.OpenCheckpoint(signed, signer.VerifierKey())
	if err != nil || cp.Size != 5 {
		t.Fatalf("after the backfill: %+v %v", cp, err)
	}
	for seq := int64(1); seq <= 5; seq++ {
		if l, err := db.LeafOf(context.Background(), "demo", seq); err != nil || l == nil || l.Index != seq-1 {
			t.Errorf("record %d: leaf %+v %v", seq, l, err)
		}
	}
}

// A receipt's proof, kept by the visitor, still verifies after a purge took
// the record and its salt: the leaf stays in the log, linked to no one.
func TestProofOutlivesPurge(t *testing.T) {
	t.Parallel()
	s, db, key := newLoggedServer(t)
	a := post(t, s, `{"site":"demo","action":"accept_all"}`).json(t)
	postMany(t, s, 3)
	auth := []string{"Authorization", "Bearer " + a["token"].(string)}
	r := do(t, s, "GET", "/api/v1/consents/"+a["consent_id"].(string)+"/receipt", "", auth...)
	var receipt struct{ Claims kproof.Receipt }
	json.Unmarshal(r.body, &receipt)
	pr := do(t, s, "GET", "/api/v1/consents/"+a["consent_id"].(string)+"/proof", "", auth...)
	p, err := translog.ParseProof(pr.body)
	if err != nil {
		t.Fatal(err)
	}
	purge := do(t, s, "POST", "/api/v1/sites/demo/purge?before="+time.Now().UTC().Format(time.RFC3339Nano), "", "Authorization", "Bearer "+adminToken)
	if purge.status != 200 {
		t.Fatalf("purge: %d %s", purge.status, purge.body)
	}
	recordHash, _ := hex.DecodeString(receipt.Claims.RecordHash)
	if _, err := p.Verify(recordHash, key); err != nil {
		t.Fatalf("the kept proof no longer verifies: %v", err)
	}
	if l, _ := db.LeafOf(context.Background(), "demo", receipt.Claims.Sequence); l != nil {
		t.Error("the purged record still has a leaf with a salt")
	}
	v := do(t, s, "GET", "/api/v1/sites/demo/verify", "", "Authorization", "Bearer "+adminToken)
	var res kproof.Result
	if err := json.Unmarshal(v.body, &res); err != nil || v.status != 200 || !res.OK || res.Log == nil || res.Log.Purged != 4 || len(res.Log.Purges) != 1 {
		t.Fatalf("verify after the purge: %d %s", v.status, v.body)
	}
}

// countingStore is the real SQLite store, counting the reads the log's
// routes can make of it.
type countingStore struct {
	*sqlite.DB
	reads atomic.Int64
}

func (c *countingStore) LatestCheckpoint(ctx context.Context) ([]byte, error) {
	c.reads.Add(1)
	return c.DB.LatestCheckpoint(ctx)
}

func (c *countingStore) LatestWitnessed(ctx context.Context) ([]byte, error) {
	c.reads.Add(1)
	return c.DB.LatestWitnessed(ctx)
}

func (c *countingStore) LogHashes(ctx context.Context, indexes []int64) ([]tlog.Hash, error) {
	c.reads.Add(1)
	return c.DB.LogHashes(ctx, indexes)
}

func (c *countingStore) LogEntries(ctx context.Context, from, to int64) ([][]byte, error) {
	c.reads.Add(1)
	return c.DB.LogEntries(ctx, from, to)
}

func (c *countingStore) LeafOf(ctx context.Context, site string, seq int64) (*translog.StoredLeaf, error) {
	c.reads.Add(1)
	return c.DB.LeafOf(ctx, site, seq)
}

// waitForCheckpoint waits until the store's newest checkpoint has at least
// size leaves, and returns its note.
func waitForCheckpoint(t testing.TB, db *sqlite.DB, key string, size int64) []byte {
	t.Helper()
	for range 500 {
		signed, err := db.LatestCheckpoint(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if signed != nil {
			if cp, _, err := translog.OpenCheckpoint(signed, key); err == nil && cp.Size >= size {
				return signed
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no checkpoint of %d leaves", size)
	return nil
}

// tilePath is the URL path of a tile.
func tilePath(level int, n int64, w int) string {
	return "/log/" + translog.TilePath(tlog.Tile{H: translog.TileHeight, L: level, N: n, W: w})
}

func gunzip(t *testing.T, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Tiles (C2SP tlog-tiles) on a log of 300 leaves: only those the published
// tree holds, every one immutable, entry bundles gzipped, HEAD answered, and
// served from memory after the first request.
func TestTiles(t *testing.T) {
	t.Parallel()
	var store *countingStore
	s, db, key := newLoggedServerWith(t, func(d *serverDeps) {
		store = &countingStore{DB: d.Store.(*sqlite.DB)}
		d.Store = store
	})
	postMany(t, s, 300)
	waitForCheckpoint(t, db, key, 300)

	t.Run("beyond the tree", func(t *testing.T) {
		for _, path := range []string{
			// Indexes whose leaves lie past 2^63 wrapped around to tile 0.
			tilePath(-1, 1<<56, 256), tilePath(0, 1<<56, 256), tilePath(-1, 1<<56, 1), tilePath(-1, 1<<55, 256),
			tilePath(-1, 1<<55-1, 256), tilePath(1, 1<<48, 1), tilePath(7, 0, 128), tilePath(8, 0, 1), tilePath(63, 0, 1),
			"/log/tile/entries/x999/x999/x999/x999/x999/x999/999",
			// Within int64, but not in a tree of 300.
			tilePath(0, 1, 45), tilePath(0, 2, 256), tilePath(-1, 1, 256), tilePath(-1, 1, 45), tilePath(1, 0, 2),
			tilePath(2, 0, 1), tilePath(-1, 1<<54, 256),
			// Not tile paths.
			"/log/tile/x", "/log/tile/0/000.p/256", "/log/tile/0/000.p/0", "/log/tile/0/0000", "/log/tile/64/000",
			"/log/tile/entries/000/", "/log/tile/0/x000/001", "/log/tile/entries",
		} {
			r := do(t, s, "GET", path, "")
			if r.status != 404 || r.json(t)["error"].(map[string]any)["code"] != "not_found" {
				t.Errorf("%s: %d %.80q, want the JSON 404", path, r.status, r.body)
			}
			if cc := r.header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("%s: a 404 with Cache-Control %q", path, cc)
			}
		}
	})

	t.Run("served from memory", func(t *testing.T) {
		for _, path := range []string{tilePath(0, 0, 256), tilePath(0, 1, 40), tilePath(1, 0, 1), tilePath(-1, 0, 256), tilePath(-1, 1, 40)} {
			before := store.reads.Load()
			first := do(t, s, "GET", path, "", "Accept-Encoding", "gzip")
			between := store.reads.Load()
			for range 3 {
				again := do(t, s, "GET", path, "", "Accept-Encoding", "gzip")
				if again.status != 200 || !bytes.Equal(again.body, first.body) {
					t.Fatalf("%s: %d, not the first answer", path, again.status)
				}
			}
			if plain := do(t, s, "HEAD", path, ""); plain.status != 200 {
				t.Errorf("HEAD %s: %d", path, plain.status)
			}
			if n := store.reads.Load() - between; n != 0 {
				t.Errorf("%s: the requests after the first read the store %d times", path, n)
			}
			if first.status != 200 || between == before {
				t.Errorf("%s: the first request: %d, %d reads", path, first.status, between-before)
			}
		}
	})

	t.Run("immutable", func(t *testing.T) {
		for _, tt := range []struct {
			path string
			size int
		}{
			{tilePath(0, 0, 256), 256 * 32}, {tilePath(0, 1, 44), 44 * 32}, {tilePath(0, 0, 7), 7 * 32},
			{tilePath(1, 0, 1), 32}, {tilePath(-1, 0, 256), 256 * (2 + translog.LeafSize)}, {tilePath(-1, 1, 44), 44 * (2 + translog.LeafSize)},
		} {
			r := do(t, s, "GET", tt.path, "")
			if r.status != 200 || len(r.body) != tt.size {
				t.Errorf("%s: %d, %d bytes, want 200 and %d", tt.path, r.status, len(r.body), tt.size)
			}
			if cc := r.header.Get("Cache-Control"); cc != "public, max-age=31536000, immutable" {
				t.Errorf("%s: Cache-Control %q", tt.path, cc)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/octet-stream" {
				t.Errorf("%s: Content-Type %q", tt.path, ct)
			}
		}
	})

	t.Run("entry bundles gzipped", func(t *testing.T) {
		for _, path := range []string{tilePath(-1, 0, 256), tilePath(-1, 1, 44)} {
			plain := do(t, s, "GET", path, "")
			gz := do(t, s, "GET", path, "", "Accept-Encoding", "gzip, deflate, br")
			if plain.header.Get("Content-Encoding") != "" || gz.header.Get("Content-Encoding") != "gzip" {
				t.Fatalf("%s: Content-Encoding %q without Accept-Encoding, %q with gzip", path,
					plain.header.Get("Content-Encoding"), gz.header.Get("Content-Encoding"))
			}
			if plain.header.Get("Vary") != "Accept-Encoding" || gz.header.Get("Vary") != "Accept-Encoding" {
				t.Errorf("%s: Vary %q and %q", path, plain.header.Get("Vary"), gz.header.Get("Vary"))
			}
			// Entries are mostly random bytes: gzip saves about 1% of a full bundle.
			if !bytes.Equal(gunzip(t, gz.body), plain.body) {
				t.Errorf("%s: the gzipped bundle is not the plain one", path)
			}
			entries, err := translog.ParseEntryBundle(plain.body)
			if err != nil || len(entries) != 256 && len(entries) != 44 {
				t.Errorf("%s: %d entries, %v", path, len(entries), err)
			}
			if r := do(t, s, "GET", path, "", "Accept-Encoding", "gzip;q=0"); r.header.Get("Content-Encoding") != "" {
				t.Errorf("%s: gzip refused, but Content-Encoding %q", path, r.header.Get("Content-Encoding"))
			}
		}
	})

	t.Run("HEAD", func(t *testing.T) {
		ts := httptest.NewServer(s)
		defer ts.Close()
		for _, tt := range []struct {
			path   string
			gzip   bool
			status int
		}{
			{"/log/checkpoint", false, 200}, {"/log/key", false, 200}, {tilePath(0, 0, 256), false, 200},
			{tilePath(-1, 1, 44), false, 200}, {tilePath(-1, 0, 256), true, 200}, {tilePath(0, 2, 256), false, 404},
		} {
			get, body := fetch(t, "GET", ts.URL+tt.path, tt.gzip)
			head, headBody := fetch(t, "HEAD", ts.URL+tt.path, tt.gzip)
			if head.StatusCode != tt.status || get.StatusCode != tt.status || len(headBody) != 0 {
				t.Errorf("HEAD %s: %d and %d bytes, GET %d", tt.path, head.StatusCode, len(headBody), get.StatusCode)
			}
			if tt.status != 200 {
				continue
			}
			for _, name := range []string{"Content-Length", "Content-Type", "Content-Encoding", "Cache-Control"} {
				if head.Header.Get(name) != get.Header.Get(name) {
					t.Errorf("HEAD %s: %s %q, GET's %q", tt.path, name, head.Header.Get(name), get.Header.Get(name))
				}
			}
			if head.Header.Get("Content-Length") != strconv.Itoa(len(body)) {
				t.Errorf("HEAD %s: Content-Length %q, GET sent %d bytes", tt.path, head.Header.Get("Content-Length"), len(body))
			}
		}
	})

	// 64 requests at once for a tile nobody asked for read it once.
	t.Run("one read for many requests", func(t *testing.T) {
		path := tilePath(-1, 1, 30)
		before := store.reads.Load()
		var wg sync.WaitGroup
		for range 64 {
			wg.Go(func() {
				if r := do(t, s, "GET", path, ""); r.status != 200 {
					t.Errorf("%s: %d", path, r.status)
				}
			})
		}
		wg.Wait()
		if n := store.reads.Load() - before; n != 1 {
			t.Errorf("64 requests for one tile read the store %d times", n)
		}
	})

	// The size is read again when a request goes beyond it: a tile the log
	// published after the last read is served at once.
	t.Run("the tree grows", func(t *testing.T) {
		if r := do(t, s, "GET", tilePath(-1, 1, 54), ""); r.status != 404 {
			t.Fatalf("a tile beyond the tree: %d", r.status)
		}
		postMany(t, s, 10)
		waitForCheckpoint(t, db, key, 310)
		if r := do(t, s, "GET", tilePath(-1, 1, 54), ""); r.status != 200 {
			t.Fatalf("a tile of the grown tree: %d %s", r.status, r.body)
		}
	})
}

func fetch(t *testing.T, method, url string, acceptGzip bool) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Close = true
	if acceptGzip {
		req.Header.Set("Accept-Encoding", "gzip")
	}
	// A transport that asks for gzip only when told to, and never unpacks it.
	resp, err := (&http.Transport{DisableCompression: true}).RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// With witnesses, the published tree is the one they cosigned, and it
// never goes back: before any is cosigned (or after a start, while the
// cosigned one is older than the newest signed) the log publishes the
// newest checkpoint it had signed then, and nothing beyond it, until the
// witnesses cosign one at least as large.
func TestTilesOfTheWitnessedTree(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var deps server.Deps
	w, _ := translog.NewCosigner("witness.test", bytes.Repeat([]byte{6}, 32))
	s, db, key := newLoggedServerWith(t, func(d *serverDeps) {
		d.Policy, _ = translog.NewPolicy(d.LogKey, []string{w.VerifierKey()}, 1)
		deps = *d
	})
	postMany(t, s, 10)
	waitForCheckpoint(t, db, key, 10)
	if r := do(t, s, "GET", "/log/checkpoint", ""); r.status != 200 || !strings.Contains(string(r.body), "\n10\n") {
		t.Fatalf("the checkpoint before any is cosigned: %d %s, want the newest signed", r.status, r.body)
	}
	postMany(t, s, 10)
	signed20 := waitForCheckpoint(t, db, key, 20)
	for _, tt := range []struct {
		path   string
		status int
	}{{tilePath(0, 0, 10), 200}, {tilePath(-1, 0, 10), 200}, {tilePath(0, 0, 11), 404}, {tilePath(-1, 0, 20), 404}} {
		if r := do(t, s, "GET", tt.path, ""); r.status != tt.status {
			t.Errorf("%s: %d, want %d", tt.path, r.status, tt.status)
		}
	}
	if err := db.SaveWitnessed(ctx, 20, signed20); err != nil {
		t.Fatal(err)
	}
	if r := do(t, s, "GET", tilePath(-1, 0, 20), ""); r.status != 200 {
		t.Errorf("a tile of the newly cosigned tree: %d", r.status)
	}
	// A new process on a log grown past what the witnesses cosigned
	// publishes the newer tree, never the older cosigned one.
	postMany(t, s, 5)
	waitForCheckpoint(t, db, key, 25)
	again, err := server.New(ctx, deps)
	if err != nil {
		t.Fatal(err)
	}
	if r := do(t, again, "GET", "/log/checkpoint", ""); r.status != 200 || !strings.Contains(string(r.body), "\n25\n") {
		t.Errorf("after a start: %d %s, want 25, never the cosigned 20", r.status, r.body)
	}
}

// proofOf fetches the proof of the newest record of a visitor's answer.
func proofOf(t *testing.T, s http.Handler, a map[string]any) *translog.Proof {
	t.Helper()
	pr := do(t, s, "GET", "/api/v1/consents/"+a["consent_id"].(string)+"/proof", "", "Authorization", "Bearer "+a["token"].(string))
	if pr.status != 200 {
		t.Fatalf("proof: %d %s", pr.status, pr.body)
	}
	p, err := translog.ParseProof(pr.body)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// With witnesses, the proof route serves a proof only under a checkpoint
// the policy's witnesses cosigned: it waits for the witnessing round, and
// the proof it gives then carries the cosignature and meets the policy.
func TestProofWaitsForCosignature(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var w *witness.Witness
	s, db, key := newLoggedServerWith(t, func(d *serverDeps) {
		var err error
		if w, err = witness.Open(filepath.Join(t.TempDir(), "w.db"), "witness.test", []string{d.LogKey}, nil); err != nil {
			t.Fatal(err)
		}
		d.Policy, _ = translog.NewPolicy(d.LogKey, []string{w.VerifierKey()}, 1)
	})
	defer w.Close()
	ws := httptest.NewServer(w.Handler())
	defer ws.Close()
	a := post(t, s, `{"site":"demo","action":"accept_all"}`).json(t)
	waitForCheckpoint(t, db, key, 1)
	go func() {
		time.Sleep(time.Second) // the proof route is waiting by now
		wg := &translog.Witnessing{Store: db, LogKey: key, Policy: 1, Client: http.DefaultClient,
			Witnesses: []*translog.WitnessClient{{URL: ws.URL, Key: w.VerifierKey()}}}
		if err := wg.Once(ctx); err != nil {
			t.Error(err)
		}
	}()
	p := proofOf(t, s, a)
	policy, _ := translog.NewPolicy(key, []string{w.VerifierKey()}, 1)
	if _, names, _, err := policy.Open(p.Checkpoint); err != nil || len(names) != 1 {
		t.Errorf("the proof's checkpoint does not meet the policy: %v %v\n%s", names, err, p.Checkpoint)
	}
}
