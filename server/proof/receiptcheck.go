package proof

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/koekje/koekje/server/translog"
)

// ReceiptCheck is what an offline check of a receipt found.
type ReceiptCheck struct {
	OK         bool     `json:"ok"`
	KeyID      string   `json:"kid"`
	ConsentID  string   `json:"consent_id"`
	RecordID   string   `json:"record_id"`
	RecordedAt string   `json:"recorded_at"`
	Action     string   `json:"action"`
	RecordHash string   `json:"record_hash"`
	LogIndex   *int64   `json:"log_index,omitempty"`
	LogOrigin  string   `json:"log_origin,omitempty"`
	LogSize    int64    `json:"log_size,omitempty"` // of the checkpoint the proof leads to
	Witnesses  []string `json:"witnesses,omitempty"`
	Error      string   `json:"error,omitempty"`
}

// CheckReceipt checks a receipt without the server: the JWT's signature
// against a JWKS, and, given a tlog-proof, that the receipt's record is the
// leaf the proof names in a checkpoint the log signed and at least
// witnesses of the given witness keys cosigned. It reports what it found,
// and the first failure in Error.
func CheckReceipt(jwt string, jwks []byte, tlogProof []byte, logKey string, witnessKeys []string, witnesses int) *ReceiptCheck {
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
	cp, err := p.Verify(recordHash, logKey)
	if err != nil {
		return fail("%v", err)
	}
	rc.LogOrigin, rc.LogSize = cp.Origin, cp.Size
	if len(witnessKeys) > 0 {
		_, names, err := translog.OpenWitnessed(p.Checkpoint, logKey, witnessKeys)
		if err != nil {
			return fail("%v", err)
		}
		rc.Witnesses = names
	}
	if len(rc.Witnesses) < witnesses {
		return fail("%d of the %d witness cosignatures asked for", len(rc.Witnesses), witnesses)
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
	var set struct{ Keys []JWK }
	if err := json.Unmarshal(jwks, &set); err != nil {
		return nil, header.Kid, fmt.Errorf("the key set is not a JWKS: %v", err)
	}
	var pub ed25519.PublicKey
	for _, k := range set.Keys {
		if k.Kid == header.Kid && k.Kty == "OKP" && k.Crv == "Ed25519" {
			x, err := enc.DecodeString(k.X)
			if err == nil && len(x) == ed25519.PublicKeySize && Thumbprint(x) == k.Kid {
				pub = x
			}
		}
	}
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
