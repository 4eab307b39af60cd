package witness_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/koekje/koekje/server/translog"
	"github.com/koekje/koekje/server/witness"
)

// memLog is a log kept in memory: its stored hashes and a signer.
type memLog struct {
	signer *translog.Signer
	hashes []tlog.Hash
	size   int64
}

func newMemLog(t *testing.T, seed byte) *memLog {
	s, err := translog.NewSigner("koekje.test/log", bytes.Repeat([]byte{seed}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return &memLog{signer: s}
}

func (l *memLog) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		out[i] = l.hashes[x]
	}
	return out, nil
}

func (l *memLog) grow(t *testing.T, n int, salt string) []byte {
	for range n {
		hs, err := tlog.StoredHashes(l.size, []byte(salt+string(rune(l.size))), l)
		if err != nil {
			t.Fatal(err)
		}
		l.hashes = append(l.hashes, hs...)
		l.size++
	}
	th, _ := tlog.TreeHash(l.size, l)
	signed, err := l.signer.Sign(l.size, th)
	if err != nil {
		t.Fatal(err)
	}
	return signed
}

// serve runs a witness of lg's log for the test.
func serve(t *testing.T, lg *memLog) (*witness.Witness, *httptest.Server) {
	t.Helper()
	w, err := witness.Open(filepath.Join(t.TempDir(), "w.db"), "witness.test", []string{lg.signer.VerifierKey()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	ts := httptest.NewServer(w.Handler())
	t.Cleanup(ts.Close)
	return w, ts
}

// held reads the newest checkpoint the witness cosigned of the test log.
func held(t *testing.T, url string) []byte {
	t.Helper()
	resp, err := http.Get(url + "/checkpoint?origin=koekje.test/log")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return b
}

func add(t *testing.T, url string, old int64, proof tlog.TreeProof, cp []byte) (int, string) {
	t.Helper()
	body := (&translog.AddCheckpoint{OldSize: old, Proof: proof, Checkpoint: cp}).Encode()
	resp, err := http.Post(url+"/add-checkpoint", "text/plain", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(b)
}

// The witness cosigns a log that only grows, and answers as C2SP
// tlog-witness says: 409 with its size for a stale old size, 422 for a bad
// consistency proof or a checkpoint of the size it holds with another root,
// 404 for a log it does not know, 403 for a checkpoint the log did not sign.
func TestWitness(t *testing.T) {
	lg := newMemLog(t, 1)
	w, ts := serve(t, lg)

	cp5 := lg.grow(t, 5, "a")
	status, body := add(t, ts.URL, 0, nil, cp5)
	if status != 200 {
		t.Fatalf("first checkpoint: %d %s", status, body)
	}
	if _, names, err := translog.OpenWitnessed(append(cp5, body...), lg.signer.VerifierKey(), []string{w.VerifierKey()}); err != nil || len(names) != 1 {
		t.Fatalf("the cosignature does not verify: %v %v", names, err)
	}
	cp9 := lg.grow(t, 4, "a")
	proof, err := tlog.ProveTree(9, 5, lg)
	if err != nil {
		t.Fatal(err)
	}
	if status, body := add(t, ts.URL, 5, proof, cp9); status != 200 {
		t.Fatalf("grown checkpoint: %d %s", status, body)
	}
	if status, body := add(t, ts.URL, 5, proof, cp9); status != 409 || strings.TrimSpace(body) != "9" {
		t.Errorf("stale old size: %d %q, want 409 and 9", status, body)
	}
	cp12 := lg.grow(t, 3, "a")
	bad, _ := tlog.ProveTree(12, 9, lg)
	bad[0][0] ^= 1
	if status, _ := add(t, ts.URL, 9, bad, cp12); status != 422 {
		t.Errorf("bad proof: %d, want 422", status)
	}
	// A fork: the same log key signs another tree of the same size.
	fork := newMemLog(t, 1)
	forked9 := fork.grow(t, 9, "b")
	if status, body := add(t, ts.URL, 9, nil, forked9); status != 422 {
		t.Errorf("fork at the same size: %d %q, want 422", status, body)
	}
	forked12 := fork.grow(t, 3, "b")
	fp, _ := tlog.ProveTree(12, 9, fork)
	if status, _ := add(t, ts.URL, 9, fp, forked12); status != 422 {
		t.Errorf("fork at a larger size: %d, want 422", status)
	}
	other := newMemLog(t, 2)
	if status, _ := add(t, ts.URL, 0, nil, other.grow(t, 1, "c")); status != 403 {
		t.Errorf("checkpoint signed by another key: %d, want 403", status)
	}
	unknown, _ := translog.NewSigner("other.test/log", bytes.Repeat([]byte{3}, 32))
	sig, _ := unknown.Sign(1, tlog.Hash{})
	if status, _ := add(t, ts.URL, 0, nil, sig); status != 404 {
		t.Errorf("unknown log: %d, want 404", status)
	}
	if resp, _ := http.Post(ts.URL+"/add-checkpoint", "text/plain", strings.NewReader("nonsense")); resp.StatusCode != 400 {
		t.Errorf("malformed: %d", resp.StatusCode)
	}
	// The witness still holds size 9, and serves it cosigned.
	got := held(t, ts.URL)
	cp, names, err := translog.OpenWitnessed(got, lg.signer.VerifierKey(), []string{w.VerifierKey()})
	if err != nil || cp.Size != 9 || len(names) != 1 {
		t.Fatalf("held checkpoint: %+v %v %v", cp, names, err)
	}
}

// The witness's key is sealed under a key file of its own: the state file
// alone, or with another key file, does not open; the files are 0600.
func TestWitnessKeyIsSealed(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "w.db")
	lg := newMemLog(t, 1)
	w, err := witness.Open(path, "witness.test", []string{lg.signer.VerifierKey()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	key := w.VerifierKey()
	w.Close()
	for _, f := range []string{path, path + ".key"} {
		if fi, err := os.Stat(f); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v, want 0600", f, fi.Mode().Perm(), err)
		}
	}
	again, err := witness.Open(path, "witness.test", []string{lg.signer.VerifierKey()}, nil)
	if err != nil || again.VerifierKey() != key {
		t.Fatalf("reopened: %v, key changed: %v", err, again.VerifierKey() != key)
	}
	again.Close()
	os.Rename(path+".key", path+".key.away")
	if w, err := witness.Open(path, "witness.test", []string{lg.signer.VerifierKey()}, nil); err == nil {
		w.Close()
		t.Fatal("opened without its key file")
	}
	if _, err := os.Stat(path + ".key"); err == nil {
		t.Error("a new key file was made for a sealed key")
	}
}

// A signature line added to a checkpoint, forged or from a witness it
// cannot check, is neither kept nor served by the witness: what it serves
// verifies for anyone who pins the log's and the witness's keys, however
// often the line is sent again.
func TestWitnessKeepsOnlyVerifiedSignatures(t *testing.T) {
	lg := newMemLog(t, 1)
	w, ts := serve(t, lg)

	// A line under the witness's own name and key hash with a bad
	// signature, and one under an unknown name.
	forged := func(cp []byte) []byte {
		own := strings.Split(w.VerifierKey(), "+")
		hash, _ := hex.DecodeString(own[1])
		sig := base64.StdEncoding.EncodeToString(append(hash, make([]byte, 72)...))
		out := append([]byte{}, cp...)
		out = append(out, "— witness.test "+sig+"\n"...)
		return append(out, "— someone.else "+base64.StdEncoding.EncodeToString(make([]byte, 76))+"\n"...)
	}
	cp5 := lg.grow(t, 5, "a")
	if status, body := add(t, ts.URL, 0, nil, forged(cp5)); status != 200 || strings.Count(body, "\n") != 1 {
		t.Fatalf("checkpoint with forged lines: %d %q, want 200 and one cosignature", status, body)
	}
	cp7 := lg.grow(t, 2, "a")
	proof, _ := tlog.ProveTree(7, 5, lg)
	if status, body := add(t, ts.URL, 5, proof, forged(cp7)); status != 200 {
		t.Fatalf("grown checkpoint with forged lines: %d %s", status, body)
	}
	got := held(t, ts.URL)
	cp, names, err := translog.OpenWitnessed(got, lg.signer.VerifierKey(), []string{w.VerifierKey()})
	if err != nil || cp.Size != 7 || len(names) != 1 {
		t.Fatalf("held checkpoint: %+v %v %v\n%s", cp, names, err, got)
	}
	if n := strings.Count(string(got), "— "); n != 2 {
		t.Errorf("held checkpoint has %d signature lines, want the log's and the witness's:\n%s", n, got)
	}
}

// A checkpoint of size 0 is cosigned only with the empty tree's root hash
// (RFC 6962: the hash of the empty string); a proof from size 0 must be
// empty; an old size beyond the checkpoint is a 400.
func TestWitnessEmptyTree(t *testing.T) {
	lg := newMemLog(t, 1)
	_, ts := serve(t, lg)

	zeros, _ := lg.signer.Sign(0, tlog.Hash{})
	if status, body := add(t, ts.URL, 0, nil, zeros); status != 422 {
		t.Errorf("size 0 with an all-zero root: %d %s, want 422", status, body)
	}
	empty := sha256.Sum256(nil)
	good, _ := lg.signer.Sign(0, tlog.Hash(empty))
	if status, body := add(t, ts.URL, 0, nil, good); status != 200 {
		t.Errorf("size 0 with the empty tree's root: %d %s, want 200", status, body)
	}
	cp3 := lg.grow(t, 3, "a")
	if status, body := add(t, ts.URL, 0, tlog.TreeProof{{1}}, cp3); status != 422 {
		t.Errorf("a proof from size 0: %d %s, want 422", status, body)
	}
	if status, body := add(t, ts.URL, 4, nil, cp3); status != 400 {
		t.Errorf("old size beyond the checkpoint: %d %s, want 400", status, body)
	}
}
