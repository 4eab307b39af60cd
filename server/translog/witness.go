package translog

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Witnesses cosign checkpoints (C2SP tlog-witness, tlog-cosignature): a
// witness remembers the newest checkpoint it saw of each log and cosigns a
// new one only if a consistency proof shows the log merely grew. A log
// whose checkpoints carry cosignatures cannot show one history to one
// auditor and another to the next.

// cosignatureAlg is the key type byte of cosignature/v1 Ed25519 keys.
const cosignatureAlg = 0x04

// Cosigner makes a witness's cosignatures.
type Cosigner struct {
	name string
	key  ed25519.PrivateKey
	hash uint32
}

// NewCosigner makes the cosigner name from an Ed25519 seed.
func NewCosigner(name string, seed []byte) (*Cosigner, error) {
	if len(seed) != ed25519.SeedSize {
		return nil, errors.New("witness key: want a 32-byte Ed25519 seed")
	}
	if name == "" || strings.ContainsAny(name, "\n+ ") {
		return nil, fmt.Errorf("witness name %q: want a name without spaces, + or newlines", name)
	}
	key := ed25519.NewKeyFromSeed(seed)
	return &Cosigner{name: name, key: key, hash: keyHash(name, cosignatureAlg, key.Public().(ed25519.PublicKey))}, nil
}

// Name is the witness's name.
func (c *Cosigner) Name() string { return c.name }

// VerifierKey is the witness's public key as name+hash+base64(0x04 ‖ key).
func (c *Cosigner) VerifierKey() string {
	pub := c.key.Public().(ed25519.PublicKey)
	return fmt.Sprintf("%s+%08x+%s", c.name, c.hash, base64.StdEncoding.EncodeToString(append([]byte{cosignatureAlg}, pub...)))
}

// Cosign returns the note signature line of the witness's cosignature of a
// checkpoint's text, made at time t.
func (c *Cosigner) Cosign(text string, t time.Time) []byte {
	ts := uint64(t.Unix())
	sig := ed25519.Sign(c.key, cosignedMessage(text, ts))
	b := binary.BigEndian.AppendUint32(nil, c.hash)
	b = binary.BigEndian.AppendUint64(b, ts)
	b = append(b, sig...)
	return []byte("— " + c.name + " " + base64.StdEncoding.EncodeToString(b) + "\n")
}

func cosignedMessage(text string, ts uint64) []byte {
	return []byte("cosignature/v1\ntime " + strconv.FormatUint(ts, 10) + "\n" + text)
}

func keyHash(name string, alg byte, pub []byte) uint32 {
	h := sha256.New()
	h.Write([]byte(name + "\n"))
	h.Write([]byte{alg})
	h.Write(pub)
	return binary.BigEndian.Uint32(h.Sum(nil))
}

// cosignatureVerifier checks a witness's cosignatures as a note.Verifier.
type cosignatureVerifier struct {
	name string
	hash uint32
	pub  ed25519.PublicKey
}

// NewCosignatureVerifier reads a witness's verifier key (name+hash+base64(0x04 ‖ key)).
func NewCosignatureVerifier(vkey string) (note.Verifier, error) {
	parts := strings.SplitN(vkey, "+", 3) // the key's base64 may hold + itself
	if len(parts) != 3 {
		return nil, fmt.Errorf("witness key %q: want name+hash+key", vkey)
	}
	raw, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil || len(raw) != 1+ed25519.PublicKeySize || raw[0] != cosignatureAlg {
		return nil, fmt.Errorf("witness key %q: not a cosignature/v1 Ed25519 key", vkey)
	}
	h, err := strconv.ParseUint(parts[1], 16, 32)
	pub := ed25519.PublicKey(raw[1:])
	if err != nil || uint32(h) != keyHash(parts[0], cosignatureAlg, pub) {
		return nil, fmt.Errorf("witness key %q: the hash does not match the key", vkey)
	}
	return &cosignatureVerifier{name: parts[0], hash: uint32(h), pub: pub}, nil
}

func (v *cosignatureVerifier) Name() string    { return v.name }
func (v *cosignatureVerifier) KeyHash() uint32 { return v.hash }
func (v *cosignatureVerifier) Verify(msg, sig []byte) bool {
	if len(sig) != 8+ed25519.SignatureSize {
		return false
	}
	return ed25519.Verify(v.pub, cosignedMessage(string(msg), binary.BigEndian.Uint64(sig)), sig[8:])
}

// OpenWitnessed verifies a checkpoint signed by the log and returns it with
// the names of the given witnesses that cosigned it.
func OpenWitnessed(signed []byte, logKey string, witnessKeys []string) (Checkpoint, []string, error) {
	lv, err := note.NewVerifier(logKey)
	if err != nil {
		return Checkpoint{}, nil, fmt.Errorf("log key: %w", err)
	}
	vs := []note.Verifier{lv}
	for _, k := range witnessKeys {
		w, err := NewCosignatureVerifier(k)
		if err != nil {
			return Checkpoint{}, nil, err
		}
		vs = append(vs, w)
	}
	n, err := note.Open(signed, note.VerifierList(vs...))
	if err != nil {
		return Checkpoint{}, nil, fmt.Errorf("checkpoint: %w", err)
	}
	cp, err := ParseCheckpoint(n.Text)
	if err != nil {
		return cp, nil, err
	}
	logSigned := false
	var witnesses []string
	for _, s := range n.Sigs {
		if s.Name == lv.Name() && s.Hash == lv.KeyHash() {
			logSigned = true
		} else {
			witnesses = append(witnesses, s.Name)
		}
	}
	if !logSigned || cp.Origin != lv.Name() {
		return cp, nil, errors.New("checkpoint: not signed by the log")
	}
	return cp, witnesses, nil
}

// Cosignatures returns the signature lines of a witness's answer that
// verify as its cosignatures (under witnessKey) of the note text; every
// other line, malformed, forged, or from a key it was not asked about, is
// dropped, as tlog-witness asks of a client. It fails when none verifies.
func Cosignatures(text string, answer []byte, witnessKey string) ([]note.Signature, error) {
	wv, err := NewCosignatureVerifier(witnessKey)
	if err != nil {
		return nil, err
	}
	var sigs []note.Signature
	for _, line := range strings.SplitAfter(string(answer), "\n") {
		if !strings.HasSuffix(line, "\n") {
			continue
		}
		// One line at a time: a bad line does not hide a good one.
		n, err := note.Open([]byte(text+"\n"+line), note.VerifierList(wv))
		if err == nil && len(n.Sigs) == 1 {
			sigs = append(sigs, n.Sigs[0])
			break // one cosignature per witness is all a policy counts
		}
	}
	if len(sigs) == 0 {
		return nil, errors.New("no cosignature in its answer verifies under its key")
	}
	return sigs, nil
}

// AddCheckpoint is a tlog-witness add-checkpoint request: the size of the
// checkpoint the witness last saw, a consistency proof from it, and the new
// signed checkpoint.
type AddCheckpoint struct {
	OldSize    int64
	Proof      tlog.TreeProof
	Checkpoint []byte
}

// Encode writes the request body.
func (r *AddCheckpoint) Encode() []byte {
	var b bytes.Buffer
	b.WriteString("old " + strconv.FormatInt(r.OldSize, 10) + "\n")
	for _, h := range r.Proof {
		b.WriteString(base64.StdEncoding.EncodeToString(h[:]) + "\n")
	}
	b.WriteString("\n")
	b.Write(r.Checkpoint)
	return b.Bytes()
}

// ParseAddCheckpoint reads a request body.
func ParseAddCheckpoint(body []byte) (*AddCheckpoint, error) {
	head, checkpoint, ok := bytes.Cut(body, []byte("\n\n"))
	if !ok {
		return nil, errors.New("no checkpoint after the proof")
	}
	r := &AddCheckpoint{Checkpoint: checkpoint}
	sc := bufio.NewScanner(bytes.NewReader(head))
	first := true
	for sc.Scan() {
		t := sc.Text()
		if first {
			n, err := strconv.ParseInt(strings.TrimPrefix(t, "old "), 10, 64)
			if !strings.HasPrefix(t, "old ") || err != nil || n < 0 {
				return nil, fmt.Errorf("first line %q: want old <size>", t)
			}
			r.OldSize, first = n, false
			continue
		}
		h, err := base64.StdEncoding.DecodeString(t)
		if err != nil || len(h) != tlog.HashSize {
			return nil, fmt.Errorf("%q is not a hash", t)
		}
		r.Proof = append(r.Proof, tlog.Hash(h))
		if len(r.Proof) > 63 {
			return nil, errors.New("the proof is too long")
		}
	}
	if first {
		return nil, errors.New("no old line")
	}
	return r, sc.Err()
}

// Witnessed fetches the newest checkpoint the witness cosigned for origin and checks the log's signature and the witness's cosignature.
func (wc *WitnessClient) Witnessed(ctx context.Context, origin, logKey string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", strings.TrimSuffix(wc.URL, "/")+"/checkpoint?origin="+origin, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("witness %s: %s: %s", wc.URL, resp.Status, strings.TrimSpace(string(body)))
	}
	if _, names, err := OpenWitnessed(body, logKey, []string{wc.Key}); err != nil || len(names) != 1 {
		return nil, fmt.Errorf("witness %s: its checkpoint does not carry its own cosignature and the log's signature: %v", wc.URL, err)
	}
	return body, nil
}
