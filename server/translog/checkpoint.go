package translog

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Checkpoint is the body of a C2SP tlog-checkpoint: the log's origin, its
// size and its root hash.
type Checkpoint struct {
	Origin string
	Size   int64
	Hash   tlog.Hash
}

// Text is the checkpoint's note text.
func (c Checkpoint) Text() string {
	return fmt.Sprintf("%s\n%d\n%s\n", c.Origin, c.Size, base64.StdEncoding.EncodeToString(c.Hash[:]))
}

// ParseCheckpoint reads a checkpoint's note text; extension lines are
// allowed and ignored.
func ParseCheckpoint(text string) (Checkpoint, error) {
	var c Checkpoint
	lines := strings.SplitN(text, "\n", 4)
	if len(lines) < 4 || lines[0] == "" || !strings.HasSuffix(text, "\n") {
		return c, errors.New("checkpoint: want origin, size and hash lines")
	}
	n, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || n < 0 || strconv.FormatInt(n, 10) != lines[1] {
		return c, fmt.Errorf("checkpoint: size %q", lines[1])
	}
	h, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(h) != tlog.HashSize {
		return c, fmt.Errorf("checkpoint: hash %q", lines[2])
	}
	c.Origin, c.Size = lines[0], n
	copy(c.Hash[:], h)
	return c, nil
}

// ErrNamed is the error of naming a log that already has another name: a
// log keeps the name it was made with for life.
var ErrNamed = errors.New("a log keeps its name for life")

// Signer signs the log's checkpoints with an Ed25519 key.
type Signer struct {
	origin string
	signer note.Signer
	vkey   string
}

// NewSigner makes the signer of origin's checkpoints from an Ed25519 seed.
func NewSigner(origin string, seed []byte) (*Signer, error) {
	if len(seed) != ed25519.SeedSize {
		return nil, errors.New("log key: want a 32-byte Ed25519 seed")
	}
	if origin == "" || strings.ContainsAny(origin, "\n+ ") {
		return nil, fmt.Errorf("log origin %q: want a name without spaces, + or newlines", origin)
	}
	pub := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
	vkey, err := note.NewEd25519VerifierKey(origin, pub)
	if err != nil {
		return nil, err
	}
	// The signer key as note encodes it: PRIVATE+KEY+name+hash+base64(0x01 ‖ seed).
	// The origin has no +, so the verifier key splits into name, hash, key.
	hash := strings.Split(vkey, "+")[1]
	skey := "PRIVATE+KEY+" + origin + "+" + hash + "+" + base64.StdEncoding.EncodeToString(append([]byte{1}, seed...))
	s, err := note.NewSigner(skey)
	if err != nil {
		return nil, err
	}
	return &Signer{origin: origin, signer: s, vkey: vkey}, nil
}

// Origin is the log's name.
func (s *Signer) Origin() string { return s.origin }

// VerifierKey is the log's public key in note's verifier-key form
// (name+hash+base64 key), which witnesses and auditors configure.
func (s *Signer) VerifierKey() string { return s.vkey }

// Sign returns the signed note of a checkpoint of size n and root hash h.
func (s *Signer) Sign(n int64, h tlog.Hash) ([]byte, error) {
	return note.Sign(&note.Note{Text: Checkpoint{Origin: s.origin, Size: n, Hash: h}.Text()}, s.signer)
}

// OpenCheckpoint verifies a signed checkpoint against the log's verifier
// key and returns it with its note; other signatures (a witness's) are
// kept unverified in the note.
func OpenCheckpoint(signed []byte, logKey string) (Checkpoint, *note.Note, error) {
	v, err := note.NewVerifier(logKey)
	if err != nil {
		return Checkpoint{}, nil, fmt.Errorf("log key: %w", err)
	}
	n, err := note.Open(signed, note.VerifierList(v))
	if err != nil {
		return Checkpoint{}, nil, fmt.Errorf("checkpoint: %w", err)
	}
	logSigned := false
	for _, sig := range n.Sigs {
		logSigned = logSigned || (sig.Name == v.Name() && sig.Hash == v.KeyHash())
	}
	if !logSigned {
		return Checkpoint{}, nil, errors.New("checkpoint: not signed by the log")
	}
	c, err := ParseCheckpoint(n.Text)
	if err != nil {
		return Checkpoint{}, nil, err
	}
	if c.Origin != v.Name() {
		return Checkpoint{}, nil, fmt.Errorf("checkpoint: origin %q is not the log's %q", c.Origin, v.Name())
	}
	return c, n, nil
}
