package server_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/koekje/koekje/config"
	"github.com/koekje/koekje/server"
	kproof "github.com/koekje/koekje/server/proof"
	"github.com/koekje/koekje/server/sqlite"
	klog "github.com/koekje/koekje/server/tlog"
)

// newLoggedServer is a server that keeps the transparency log.
func newLoggedServer(t *testing.T) (*server.Server, *sqlite.DB, string) {
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
	s, err := server.New(context.Background(), server.Deps{Config: config.Demo(), Store: db, Keys: keys,
		TokenKey: bytes.Repeat([]byte{7}, 64), AdminToken: adminToken, LogKey: signer.VerifierKey(), PublicURL: publicURL})
	if err != nil {
		t.Fatal(err)
	}
	return s, db, signer.VerifierKey()
}

// remote reads the log's tiles over HTTP, as any client would.
func remote(base string) *klog.Remote {
	return &klog.Remote{Base: base + "/log/", Client: http.DefaultClient, Ctx: context.Background()}
}

func checkpointOf(t *testing.T, base, key string) klog.Checkpoint {
	t.Helper()
	resp, err := http.Get(base + "/log/checkpoint")
	if err != nil {
		t.Fatal(err)
	}
	signed, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	cp, _, err := klog.OpenCheckpoint(signed, key)
	if err != nil {
		t.Fatalf("checkpoint %q: %v", signed, err)
	}
	return cp
}

func postMany(t *testing.T, s http.Handler, n int) []map[string]any {
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
	pr := do(t, s, "GET", "/api/v1/consents/"+a["consent_id"].(string)+"/proof", "", "Authorization", "Bearer "+a["token"].(string))
	if pr.status != 200 {
		t.Fatalf("proof: %d %s", pr.status, pr.body)
	}
	p, err := klog.ParseProof(pr.body)
	if err != nil {
		t.Fatal(err)
	}
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
	entries, err := klog.ParseEntryBundle(bundle[0])
	if err != nil || len(entries) != width {
		t.Fatalf("entry bundle: %d entries, %v", len(entries), err)
	}
	leaf := klog.Leaf{Commitment: klog.Commit(p.Salt, recordHash), SiteTag: p.SiteTag}.Encode()
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
	cp, _, err := klog.OpenCheckpoint(signed, signer.VerifierKey())
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
	p, err := klog.ParseProof(pr.body)
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
