package postgres_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/koekje/koekje/config"
	"github.com/koekje/koekje/server"
	"github.com/koekje/koekje/server/postgres"
	kproof "github.com/koekje/koekje/server/proof"
	"github.com/koekje/koekje/server/store/storetest"
	"github.com/koekje/koekje/server/translog"
	"github.com/koekje/koekje/server/witness"
)

// countingTransport counts the requests an instance sends.
type countingTransport struct{ n atomic.Int64 }

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return http.DefaultTransport.RoundTrip(r)
}

func get(t *testing.T, url string, headers ...string) (int, http.Header, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, body
}

// Two instances on one PostgreSQL database with a witness: a proof is a
// clear 503 with Retry-After until the record is integrated; then one
// instance (the lease holder) sends checkpoints to the witness, both
// publish the same cosigned checkpoint, and a record written at one is
// proven at the other, checked by an independent implementation
// (transparency-dev/merkle) over tiles fetched by HTTP. Cut together with
// its own checkpoints, the database is caught by the cosigned one.
func TestServeLogWithWitness(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, dsn := open(t, "")
	b, _ := open(t, dsn)
	signer := startLog(t, a, false) // nothing integrates until the test says
	startLog(t, b, false)
	logKey := signer.VerifierKey()
	w, err := witness.Open(filepath.Join(t.TempDir(), "w.db"), "witness.test", []string{logKey}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	ws := httptest.NewServer(w.Handler())
	defer ws.Close()
	policy, err := translog.NewPolicy(logKey, []string{w.VerifierKey()}, 1)
	if err != nil {
		t.Fatal(err)
	}

	var bases []string
	var sent []*countingTransport
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	for i, db := range []*postgres.DB{a, b} {
		keys, err := kproof.OpenKeys(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		s, err := server.New(ctx, server.Deps{Config: config.Demo(), Store: db, Keys: keys, TokenKey: bytes.Repeat([]byte{4}, 64),
			AdminToken: "shared-log-admin-token-0123456789", PublicURL: "http://consent.test", LogKey: logKey, Policy: policy, SharedStore: true})
		if err != nil {
			t.Fatal(err)
		}
		hs := httptest.NewServer(s)
		defer hs.Close()
		bases = append(bases, hs.URL)
		ct := &countingTransport{}
		sent = append(sent, ct)
		holder := fmt.Sprintf("instance-%d", i)
		wg := &translog.Witnessing{Store: db, LogKey: logKey, Policy: 1, Client: &http.Client{Transport: ct},
			Witnesses: []*translog.WitnessClient{{URL: ws.URL, Key: w.VerifierKey()}},
			Lease:     func(ctx context.Context) (bool, error) { return db.Lease(ctx, "witnessing", holder, 30*time.Second) },
			Log:       slog.New(slog.DiscardHandler)}
		go wg.Run(wctx, 20*time.Millisecond)
	}

	type answer struct{ ConsentID, Token string }
	var answers []answer
	for i := range 10 {
		resp, err := http.Post(bases[i%2]+"/api/v1/consents", "application/json", strings.NewReader(`{"site":"demo","action":"reject_all"}`))
		if err != nil {
			t.Fatal(err)
		}
		var got struct {
			ConsentID string `json:"consent_id"`
			Token     string `json:"token"`
		}
		json.NewDecoder(resp.Body).Decode(&got)
		resp.Body.Close()
		if resp.StatusCode != 201 {
			t.Fatalf("post: %d", resp.StatusCode)
		}
		answers = append(answers, answer{got.ConsentID, got.Token})
	}
	first := answers[0]
	proofURL := func(base string, an answer) string {
		return base + "/api/v1/consents/" + an.ConsentID + "/proof"
	}
	status, h, body := get(t, proofURL(bases[1], first), "Authorization", "Bearer "+first.Token)
	if status != 503 || h.Get("Retry-After") != "1" || !strings.Contains(string(body), `"code":"unavailable"`) {
		t.Fatalf("a proof before the record is integrated: %d Retry-After %q %s", status, h.Get("Retry-After"), body)
	}
	_, _, body = get(t, bases[0]+"/api/v1/consents/"+first.ConsentID+"/receipt", "Authorization", "Bearer "+first.Token)
	if strings.Contains(string(body), "log_index") {
		t.Fatalf("a receipt names a log index before the record is integrated: %s", body)
	}

	if n, err := b.Integrate(ctx); err != nil || n != 10 {
		t.Fatalf("integrate: %d, %v", n, err)
	}
	// Witnessing runs every 20 ms; wait for the cosigned checkpoint.
	var published [2][]byte
	for deadline := time.Now().Add(30 * time.Second); ; {
		for i, base := range bases {
			if status, _, body := get(t, base+"/log/checkpoint"); status == 200 {
				published[i] = body
			}
		}
		if published[0] != nil && published[1] != nil && bytes.Equal(published[0], published[1]) {
			if cp, names, err := translog.OpenWitnessed(published[0], logKey, []string{w.VerifierKey()}); err == nil && cp.Size == 10 && len(names) == 1 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no cosigned checkpoint of 10 at both instances: %q, %q", published[0], published[1])
		}
		time.Sleep(20 * time.Millisecond)
	}
	if (sent[0].n.Load() == 0) == (sent[1].n.Load() == 0) {
		t.Errorf("requests to the witness: %d and %d; want one instance to send them all", sent[0].n.Load(), sent[1].n.Load())
	}

	// A record written at one instance, proven at the other.
	an := answers[4] // written at instance 0
	_, _, body = get(t, bases[1]+"/api/v1/consents/"+an.ConsentID+"/receipt", "Authorization", "Bearer "+an.Token)
	var receipt struct{ Claims kproof.Receipt }
	if err := json.Unmarshal(body, &receipt); err != nil || receipt.Claims.LogIndex == nil {
		t.Fatalf("receipt without a log index: %s", body)
	}
	status, _, body = get(t, proofURL(bases[1], an), "Authorization", "Bearer "+an.Token)
	if status != 200 {
		t.Fatalf("proof: %d %s", status, body)
	}
	p, err := translog.ParseProof(body)
	if err != nil {
		t.Fatal(err)
	}
	recordHash, _ := hex.DecodeString(receipt.Claims.RecordHash)
	cp, err := p.Verify(recordHash, logKey)
	if err != nil || p.Index != *receipt.Claims.LogIndex {
		t.Fatalf("the proof does not verify: %v (index %d, receipt %d)", err, p.Index, *receipt.Claims.LogIndex)
	}
	if _, names, err := translog.OpenWitnessed(p.Checkpoint, logKey, []string{w.VerifierKey()}); err != nil || len(names) != 1 {
		t.Errorf("the proof's checkpoint is not the cosigned one: %v", err)
	}
	hashes := tlog.TileHashReader(tlog.Tree{N: cp.Size, Hash: cp.Hash}, &translog.Remote{Base: bases[0] + "/log/", Client: http.DefaultClient, Ctx: context.Background()})
	path, err := tlog.ProveRecord(cp.Size, p.Index, hashes)
	if err != nil {
		t.Fatal(err)
	}
	leaf := translog.Leaf{Commitment: translog.Commit(p.Salt, recordHash), SiteTag: p.SiteTag}.Encode()
	raw := make([][]byte, len(path))
	for i := range path {
		raw[i] = path[i][:]
	}
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, uint64(p.Index), uint64(cp.Size), rfc6962.DefaultHasher.HashLeaf(leaf), raw, cp.Hash[:]); err != nil {
		t.Fatalf("transparency-dev/merkle rejects the inclusion proof over tiles: %v", err)
	}

	// Either instance's verify holds the chain against the log.
	for _, base := range bases {
		status, _, body := get(t, base+"/api/v1/sites/demo/verify", "Authorization", "Bearer shared-log-admin-token-0123456789")
		if status != 200 || !strings.Contains(string(body), `"ok":true`) || !strings.Contains(string(body), `"leaves":10`) {
			t.Errorf("verify at %s: %d %s", base, status, body)
		}
	}

	// The tail cut with its leaves, hashes and checkpoints: the database
	// agrees with itself, the witness's checkpoint does not.
	stop()
	conn := connect(t, dsn)
	for _, q := range []string{`DELETE FROM records WHERE seq > 6`, `DELETE FROM log_leaves WHERE idx >= 6`,
		fmt.Sprintf(`DELETE FROM log_hashes WHERE id >= %d`, tlog.StoredHashIndex(0, 6)), `DELETE FROM log_checkpoints WHERE size > 6`,
		`DELETE FROM log_witnessed`} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	keys, _ := kproof.OpenKeys(ctx, a)
	pubs, ids := keys.Ring().Public()
	auditKey, _ := a.LogAuditKey(ctx, "demo")
	res, err := kproof.Verify(ctx, a, "demo", pubs, ids)
	if err != nil {
		t.Fatal(err)
	}
	if err := kproof.VerifyLog(ctx, a, res, logKey, auditKey, nil); err != nil || !res.OK {
		t.Fatalf("the cut database should agree with itself: %+v %v", res, err)
	}
	res, _ = kproof.Verify(ctx, a, "demo", pubs, ids)
	if err := kproof.VerifyLog(ctx, a, res, logKey, auditKey, published[0]); err != nil || res.OK || res.Reason != kproof.LogMismatch {
		t.Fatalf("against the cosigned checkpoint: %+v %v", res, err)
	}
}

// Of two instances, only the lease holder hears the witnesses; when they
// stop cosigning, the other instance learns it from the store: once the
// witnessed checkpoint has lagged behind the log's newest for longer than
// Stale, its Degraded (what /healthz and the console show) says so, and
// it clears when a cosigned checkpoint catches up.
func TestWitnessFailureSeenByEveryInstance(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, dsn := open(t, "")
	b, _ := open(t, dsn)
	signer := startLog(t, a, false)
	startLog(t, b, false)
	logKey := signer.VerifierKey()
	w, err := witness.Open(filepath.Join(t.TempDir(), "w.db"), "witness.test", []string{logKey}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	var down atomic.Bool
	ws := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if down.Load() {
			http.Error(rw, "the witness is down", http.StatusServiceUnavailable)
			return
		}
		w.Handler().ServeHTTP(rw, r)
	}))
	defer ws.Close()
	witnessing := func(db *postgres.DB, holder string) *translog.Witnessing {
		return &translog.Witnessing{Store: db, LogKey: logKey, Policy: 1, Client: http.DefaultClient,
			Witnesses: []*translog.WitnessClient{{URL: ws.URL, Key: w.VerifierKey()}},
			Lease:     func(ctx context.Context) (bool, error) { return db.Lease(ctx, "witnessing", holder, time.Hour) },
			Stale:     time.Minute, Log: slog.New(slog.DiscardHandler)}
	}
	holder, other := witnessing(a, "a"), witnessing(b, "b")
	appendSome := func(n int) {
		for range n {
			if err := a.Append(ctx, storetest.NewRecord("demo", uuid.Nil)); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := b.Integrate(ctx); err != nil {
			t.Fatal(err)
		}
	}
	appendSome(3)
	if ok, err := a.Lease(ctx, "witnessing", "a", time.Hour); err != nil || !ok {
		t.Fatalf("a takes the lease: %v %v", ok, err)
	}
	if err := holder.Once(ctx); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	if err := other.Watch(ctx, t0); err != nil || other.Degraded() != "" {
		t.Fatalf("with the witnessed checkpoint at the log's newest: %v, %q", err, other.Degraded())
	}

	down.Store(true)
	appendSome(2)
	if err := holder.Once(ctx); err == nil || !strings.Contains(holder.Degraded(), "the witness is down") {
		t.Fatalf("the holder hears the witness fail: %v, %q", err, holder.Degraded())
	}
	for _, at := range []time.Duration{0, 30 * time.Second, 61 * time.Second} {
		if err := other.Watch(ctx, t0.Add(at)); err != nil {
			t.Fatal(err)
		}
		got := other.Degraded()
		if lagging := at > time.Minute; lagging != strings.Contains(got, "cosigned no checkpoint beyond size 3") || lagging != strings.Contains(got, "reached 5") {
			t.Fatalf("%s after the log outgrew its witnessed checkpoint, the other instance says %q", at, got)
		}
	}
	// The instance that does not hold the lease takes no part in it: it
	// sent nothing and its round only watches.
	if err := other.Watch(ctx, t0.Add(2*time.Minute)); err != nil || other.Degraded() == "" {
		t.Fatalf("still lagging: %v %q", err, other.Degraded())
	}

	down.Store(false)
	if err := holder.Once(ctx); err != nil || holder.Degraded() != "" {
		t.Fatalf("the witness is back: %v, %q", err, holder.Degraded())
	}
	if err := other.Watch(ctx, t0.Add(3*time.Minute)); err != nil || other.Degraded() != "" {
		t.Fatalf("a cosigned checkpoint caught up, the other instance still says %v %q", err, other.Degraded())
	}
}
