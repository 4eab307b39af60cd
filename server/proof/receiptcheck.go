package proof

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/koekje/koekje/server/consent"
	"github.com/koekje/koekje/server/translog"
)

// ReceiptCheck is what an offline check of a receipt found.
type ReceiptCheck struct {
	OK         bool   `json:"ok"`
	KeyID      string `json:"kid"`
	ConsentID  string `json:"consent_id"`
	RecordID   string `json:"record_id"`
	RecordedAt string `json:"recorded_at"`
	Action     string `json:"action"`
	RecordHash string `json:"record_hash"`
	// RecordRehashed says the receipt carried its canonical record, whose
	// hash was recomputed and whose fields the claims were held against.
	RecordRehashed bool     `json:"record_rehashed"`
	LogIndex       *int64   `json:"log_index,omitempty"`
	LogOrigin      string   `json:"log_origin,omitempty"`
	LogSize        int64    `json:"log_size,omitempty"` // of the checkpoint the proof leads to
	Witnesses      []string `json:"witnesses,omitempty"`
	// Unwitnessed says the log's policy asks for no cosignature: the log
	// has no witnesses, and only its own signature vouches for the tree.
	Unwitnessed bool   `json:"unwitnessed,omitempty"`
	Error       string `json:"error,omitempty"`
}

// CheckReceipt checks a receipt without the server: the JWT's signature
// against a JWKS, and, given a tlog-proof, that the receipt's record is the
// leaf the proof names in a checkpoint that meets the log's witness policy
// (signed by the log, cosigned by a quorum of its witnesses), which a proof
// needs. It reports what it found, and the first failure in Error.
func CheckReceipt(jwt string, jwks []byte, tlogProof []byte, policy *translog.Policy) *ReceiptCheck {
	rc := &ReceiptCheck{}
	fail := func(format string, args ...any) *ReceiptCheck {
		rc.OK, rc.Error = false, fmt.Sprintf(format, args...)
		return rc
	}
	claims, kid, err := verifyJWT(jwt, jwks)
	rc.KeyID = kid
	if err != nil {
		return fail("%v", err)
	}
	rc.ConsentID, rc.RecordID, rc.RecordedAt, rc.Action = claims.Subject, claims.RecordID, claims.RecordedAt, claims.Action
	rc.RecordHash, rc.LogIndex = claims.RecordHash, claims.LogIndex
	if claims.Record != "" {
		if err := checkRecord(claims); err != nil {
			return fail("%v", err)
		}
		rc.RecordRehashed = true
	}
	if tlogProof == nil {
		rc.OK = true
		return rc
	}
	recordHash, err := hex.DecodeString(claims.RecordHash)
	if err != nil || len(recordHash) != 32 {
		return fail("the receipt's record_hash is not a SHA-256 hash")
	}
	p, err := translog.ParseProof(tlogProof)
	if err != nil {
		return fail("%v", err)
	}
	if claims.LogIndex == nil || *claims.LogIndex != p.Index {
		return fail("the proof is for leaf %d, not the receipt's", p.Index)
	}
	if policy == nil {
		return fail("a proof is checked under the log's witness policy: none was given")
	}
	rc.Unwitnessed = policy.Unwitnessed()
	cp, names, _, err := policy.Open(p.Checkpoint)
	rc.Witnesses = names
	if err != nil {
		return fail("%v", err)
	}
	rc.LogOrigin, rc.LogSize = cp.Origin, cp.Size
	if err := p.Includes(cp, recordHash); err != nil {
		return fail("%v", err)
	}
	rc.OK = true
	return rc
}

// verifyJWT checks a compact EdDSA JWS against the key its kid names.
func verifyJWT(jwt string, jwks []byte) (*Receipt, string, error) {
	parts := strings.Split(strings.TrimSpace(jwt), ".")
	if len(parts) != 3 {
		return nil, "", errors.New("the receipt is not a compact JWT")
	}
	enc := base64.RawURLEncoding
	var header struct{ Alg, Kid string }
	h, err := enc.DecodeString(parts[0])
	if err != nil || json.Unmarshal(h, &header) != nil {
		return nil, "", errors.New("the JWT's header is not base64url JSON")
	}
	if header.Alg != "EdDSA" {
		return nil, header.Kid, fmt.Errorf("the JWT's alg is %q, not EdDSA", header.Alg)
	}
	keys, err := ParseJWKS(jwks)
	if err != nil {
		return nil, header.Kid, err
	}
	pub := keys[header.Kid]
	if pub == nil {
		return nil, header.Kid, fmt.Errorf("the key set has no Ed25519 key %q", header.Kid)
	}
	sig, err := enc.DecodeString(parts[2])
	if err != nil || !ed25519.Verify(pub, []byte(parts[0]+"."+parts[1]), sig) {
		return nil, header.Kid, errors.New("the receipt's signature does not verify")
	}
	payload, err := enc.DecodeString(parts[1])
	var claims Receipt
	if err != nil || json.Unmarshal(payload, &claims) != nil {
		return nil, header.Kid, errors.New("the receipt's claims are not base64url JSON")
	}
	return &claims, header.Kid, nil
}

// checkRecord recomputes the record's hash from the canonical record the
// receipt carries and holds the claims against that record: a receipt
// whose claims say other than the record its hash commits to fails.
func checkRecord(c *Receipt) error {
	raw, err := base64.RawURLEncoding.DecodeString(c.Record)
	if err != nil {
		return errors.New("the receipt's record is not base64url")
	}
	r, err := consent.DecodeRecord(raw)
	if err != nil {
		return fmt.Errorf("the receipt's record: %w", err)
	}
	sum := sha256.Sum256(raw)
	if hex.EncodeToString(sum[:]) != c.RecordHash {
		return errors.New("the receipt's record does not hash to its record_hash")
	}
	at, err := time.Parse(time.RFC3339Nano, c.RecordedAt)
	switch {
	case r.RecordID.String() != c.RecordID:
		return fmt.Errorf("the record is %s, the receipt says %s", r.RecordID, c.RecordID)
	case r.ConsentID.String() != c.Subject || r.Site != c.Site:
		return errors.New("the record's consent ID or site is not the receipt's")
	case err != nil || !at.Equal(r.RecordedAt):
		return fmt.Errorf("the record was made at %s, the receipt says %s", r.RecordedAt.Format(time.RFC3339Nano), c.RecordedAt)
	case r.Action != c.Action:
		return fmt.Errorf("the record's action is %s, the receipt says %s", r.Action, c.Action)
	case r.Revision != c.PolicyRevision || r.ConfigHash != c.ConfigHash || r.GPC != c.GPC:
		return errors.New("the record's policy revision, banner version or GPC is not the receipt's")
	case hex.EncodeToString(r.PrevHash) != c.PrevHash:
		return errors.New("the record's link is not the receipt's prev_hash")
	case !sameSignals(r, c):
		return errors.New("the record's encoding or signals are not the receipt's")
	}
	for _, svc := range c.Services {
		for _, p := range svc.Purposes {
			for _, cat := range p.PurposeCategory {
				if granted := r.Choices[cat]; granted != (p.State == "granted") {
					return fmt.Errorf("the receipt says %s of %s, the record says granted=%v", p.State, cat, granted)
				}
			}
		}
	}
	return nil
}

// ParseJWKS reads a JWKS (GET /api/v1/keys) into its Ed25519 keys by key
// ID. A key whose ID is not its thumbprint (RFC 7638) is left out: a key
// set cannot name one key by another's ID.
func ParseJWKS(jwks []byte) (map[string]ed25519.PublicKey, error) {
	var set struct{ Keys []JWK }
	if err := json.Unmarshal(jwks, &set); err != nil {
		return nil, fmt.Errorf("the key set is not a JWKS: %v", err)
	}
	keys := map[string]ed25519.PublicKey{}
	for _, k := range set.Keys {
		if k.Kty == "OKP" && k.Crv == "Ed25519" {
			x, err := base64.RawURLEncoding.DecodeString(k.X)
			if err == nil && len(x) == ed25519.PublicKeySize && Thumbprint(x) == k.Kid {
				keys[k.Kid] = x
			}
		}
	}
	return keys, nil
}

// PurgeSigned reports whether a purge checkpoint's Ed25519 signature
// verifies under the key its KeyID names in keys.
func PurgeSigned(cp *consent.Checkpoint, keys map[string]ed25519.PublicKey) bool {
	pub := keys[cp.KeyID]
	return pub != nil && ed25519.Verify(pub, CheckpointMessage(cp), cp.Signature)
}

// sameSignals reports whether the receipt claims the record's encoding and
// signals: those of a koekje-record-v2 record, none for one of v1.
func sameSignals(r *consent.Record, c *Receipt) bool {
	if r.Encoding != consent.EncodingV2 {
		return c.RecordEncoding == "" && c.GPCHeader == nil && c.ADPC == "" && c.Signal == ""
	}
	return c.RecordEncoding == consent.RecordEncodingV2 && c.GPCHeader != nil && *c.GPCHeader == r.GPCHeader &&
		c.ADPC == r.ADPC && c.Signal == r.Signal
}
