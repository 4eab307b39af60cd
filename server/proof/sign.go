// Package proof makes Koekje's records evidence beyond the database: the
// signing keys and their one owner, signed receipts (JWT, Kantara fields),
// signed purge checkpoints, and the walk that verifies a site's chain.
//
// Receipts are JWTs signed with EdDSA (Ed25519), kid in the header, with the
// Kantara Consent Receipt v1.1 fields (piiPrincipalId is the pseudonymous
// consent ID; the controller comes from the config) and the record's place
// in the chain (record_id, sequence, record_hash, prev_hash, config_hash). A
// receipt is signed only for a record whose fields still hash to its stored
// hash. Keys are made on first start and kept in the store, sealed under
// the key file (package keyfile); a rotation adds a key and the old ones
// stay in the JWKS, so old receipts keep verifying.
//
// A purge leaves a checkpoint signed with the current key, holding the last
// purged record's sequence and hash; verification of the chain continues
// from it.
package proof

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/koekje/koekje/server/consent"
)

// Keyring holds the signing keys: the newest signs, all verify.
type Keyring struct {
	keys []consent.SigningKey
}

// NewKey makes a new Ed25519 signing key. Its ID is derived from the public
// key (RFC 7638-style thumbprint), so it names the key wherever it travels.
func NewKey(now time.Time) (consent.SigningKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return consent.SigningKey{}, err
	}
	return consent.SigningKey{ID: Thumbprint(pub), Private: priv, CreatedAt: now.UTC().Truncate(time.Microsecond)}, nil
}

// Thumbprint is the RFC 7638 JWK thumbprint of an Ed25519 public key.
func Thumbprint(pub ed25519.PublicKey) string {
	canon := `{"crv":"Ed25519","kty":"OKP","x":"` + base64.RawURLEncoding.EncodeToString(pub) + `"}`
	sum := sha256.Sum256([]byte(canon))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// NewKeyring wraps stored keys, oldest first.
func NewKeyring(keys []consent.SigningKey) (*Keyring, error) {
	if len(keys) == 0 {
		return nil, fmt.Errorf("no signing key")
	}
	for _, k := range keys {
		if len(k.Private) != ed25519.PrivateKeySize {
			return nil, fmt.Errorf("signing key %s is not an Ed25519 key", k.ID)
		}
	}
	return &Keyring{keys: keys}, nil
}

func (k *Keyring) current() consent.SigningKey { return k.keys[len(k.keys)-1] }

// Current returns the ID of the key that signs.
func (k *Keyring) Current() string { return k.current().ID }

// Public returns every public key and its ID, oldest first.
func (k *Keyring) Public() ([]ed25519.PublicKey, []string) {
	pubs, ids := make([]ed25519.PublicKey, len(k.keys)), make([]string, len(k.keys))
	for i, key := range k.keys {
		pubs[i] = ed25519.PrivateKey(key.Private).Public().(ed25519.PublicKey)
		ids[i] = key.ID
	}
	return pubs, ids
}

// JWK is one public key as RFC 7517/8037 write it.
type JWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
}

// JWKS is the key set published at /api/v1/keys.
func (k *Keyring) JWKS() map[string][]JWK {
	pubs, ids := k.Public()
	set := make([]JWK, len(pubs))
	for i := range pubs {
		set[i] = JWK{Kty: "OKP", Crv: "Ed25519", X: base64.RawURLEncoding.EncodeToString(pubs[i]), Kid: ids[i], Use: "sig", Alg: "EdDSA"}
	}
	return map[string][]JWK{"keys": set}
}

// SignJWT returns a compact JWS (RFC 7515) of claims, signed with EdDSA by
// the current key, its ID in the header.
func (k *Keyring) SignJWT(claims any) (string, error) {
	key := k.current()
	header, err := json.Marshal(map[string]string{"alg": "EdDSA", "typ": "JWT", "kid": key.ID})
	if err != nil {
		return "", err
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	enc := base64.RawURLEncoding
	signing := enc.EncodeToString(header) + "." + enc.EncodeToString(payload)
	sig := ed25519.Sign(ed25519.PrivateKey(key.Private), []byte(signing))
	return signing + "." + enc.EncodeToString(sig), nil
}

// SignCheckpoint signs a purge checkpoint with the current key.
func (k *Keyring) SignCheckpoint(cp *consent.Checkpoint) error {
	key := k.current()
	cp.KeyID = key.ID
	cp.Signature = ed25519.Sign(ed25519.PrivateKey(key.Private), CheckpointMessage(cp))
	return nil
}

// CheckpointMessage is what a checkpoint's signature covers.
func CheckpointMessage(cp *consent.Checkpoint) []byte {
	msg := []byte("koekje-checkpoint-v1\x00" + cp.Site + "\x00")
	msg = binary.BigEndian.AppendUint64(msg, uint64(cp.Seq))
	msg = binary.BigEndian.AppendUint64(msg, uint64(cp.CreatedAt.UnixMicro()))
	return append(msg, cp.Hash...)
}

// PurgeStatement is the hash a purge's log entry commits to: of what the
// purge checkpoint's signature covers (site, last purged record, its hash,
// the time), so the log's entry and the chain's checkpoint name one purge,
// followed by the rule it applied (Before, Unix microseconds).
func PurgeStatement(cp *consent.Checkpoint) []byte {
	var before int64
	if !cp.Before.IsZero() {
		before = cp.Before.UnixMicro()
	}
	h := sha256.Sum256(binary.BigEndian.AppendUint64(CheckpointMessage(cp), uint64(before)))
	return h[:]
}

// ScanStatement is the hash a recorded scan's log entry commits to: the
// site, the scan's ID, when it started and was recorded, its verdict, the
// schedule that ran it (for a scheduled scan only) and the hash of its
// report as stored, so that a scan cannot be removed, backdated or altered
// unseen, nor a scan by hand passed off as a scheduled one.
func ScanStatement(s *consent.Scan, report []byte) []byte {
	rh := sha256.Sum256(report)
	msg := []byte("koekje-scan-v1\x00" + s.Site + "\x00")
	msg = append(msg, s.ID[:]...)
	msg = binary.BigEndian.AppendUint64(msg, uint64(s.StartedAt.UnixMicro()))
	msg = binary.BigEndian.AppendUint64(msg, uint64(s.RecordedAt.UnixMicro()))
	msg = append(append(msg, s.Verdict...), 0)
	if s.Schedule != "" {
		msg = append(append(msg, s.Schedule...), 0)
	}
	h := sha256.Sum256(append(msg, rh[:]...))
	return h[:]
}

func checkpointValid(cp *consent.Checkpoint, keys []ed25519.PublicKey, ids []string) bool {
	for i, id := range ids {
		if id == cp.KeyID {
			return ed25519.Verify(keys[i], CheckpointMessage(cp), cp.Signature)
		}
	}
	return false
}

// KeyStore keeps the signing keys.
type KeyStore interface {
	// Keys returns every signing key, oldest first.
	Keys(ctx context.Context) ([]consent.SigningKey, error)
	AddKey(ctx context.Context, k consent.SigningKey) error
}

// Keys owns the current signing keys: whatever signs (receipts, purge
// checkpoints, by the API or on a timer) asks it at the moment of signing,
// so a rotation reaches every signer at once.
type Keys struct {
	store KeyStore
	mu    sync.Mutex // serialises rotations
	ring  atomic.Pointer[Keyring]
}

// OpenKeys reads the signing keys, making the first one on first start.
func OpenKeys(ctx context.Context, store KeyStore) (*Keys, error) {
	k := &Keys{store: store}
	keys, err := store.Keys(ctx)
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		first, err := NewKey(time.Now())
		if err != nil {
			return nil, err
		}
		if err := store.AddKey(ctx, first); err != nil {
			return nil, err
		}
		keys = append(keys, first)
	}
	ring, err := NewKeyring(keys)
	if err != nil {
		return nil, err
	}
	k.ring.Store(ring)
	return k, nil
}

// Ring returns the keys as they are now: the newest signs, all verify.
func (k *Keys) Ring() *Keyring { return k.ring.Load() }

// SignCheckpoint signs a purge checkpoint with the current key.
func (k *Keys) SignCheckpoint(cp *consent.Checkpoint) error { return k.Ring().SignCheckpoint(cp) }

// Refresh reads the keys again, so a key another instance (or koekje keys
// rotate) added signs here too. It reports whether the keys changed.
func (k *Keys) Refresh(ctx context.Context) (bool, error) {
	keys, err := k.store.Keys(ctx)
	if err != nil {
		return false, err
	}
	if len(keys) == len(k.Ring().keys) {
		return false, nil
	}
	ring, err := NewKeyring(keys)
	if err != nil {
		return false, err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(ring.keys) > len(k.Ring().keys) {
		k.ring.Store(ring)
	}
	return true, nil
}

// Watch refreshes the keys every interval until ctx ends.
func (k *Keys) Watch(ctx context.Context, every time.Duration, log func(error)) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := k.Refresh(ctx); err != nil && ctx.Err() == nil {
				log(err)
			}
		}
	}
}

// Rotate adds a new signing key and signs with it from now on; the old ones
// stay published so what they signed still verifies.
func (k *Keys) Rotate(ctx context.Context) (consent.SigningKey, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	key, err := NewKey(time.Now())
	if err != nil {
		return key, err
	}
	if err := k.store.AddKey(ctx, key); err != nil {
		return key, err
	}
	// Read back every key: another process may have added one too.
	keys, err := k.store.Keys(ctx)
	if err != nil {
		return key, err
	}
	ring, err := NewKeyring(keys)
	if err != nil {
		return key, err
	}
	k.ring.Store(ring)
	return key, nil
}
