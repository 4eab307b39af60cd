package consent

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
)

// A client's request ID makes a retried POST idempotent, and a replay of it
// answers with the visitor's token while its record is the newest: so a
// stored request ID is a credential. The stores keep only a keyed hash of
// it, under a key sealed among their secrets, so the database alone lets
// nobody replay one.
type RequestIDs struct {
	key []byte
}

// NewRequestIDs makes the keyed hash from its key.
func NewRequestIDs(key []byte) (RequestIDs, error) {
	if len(key) < 32 {
		return RequestIDs{}, errors.New("request ID key: want 32 bytes")
	}
	return RequestIDs{key: key}, nil
}

// storedPrefix marks a stored request ID as a keyed hash; no request ID a
// client may send has a colon, so a hash is never taken for one.
const storedPrefix = "h1:"

// Stored is what a store keeps of site's request ID id: its HMAC-SHA256,
// in hex, after storedPrefix.
func (q RequestIDs) Stored(site, id string) string {
	m := hmac.New(sha256.New, q.key)
	m.Write([]byte(site))
	m.Write([]byte{0})
	m.Write([]byte(id))
	return storedPrefix + hex.EncodeToString(m.Sum(nil))
}

// IsStored reports whether a stored value is already a keyed hash, not a
// request ID kept in the clear by an older schema.
func IsStored(v string) bool { return strings.HasPrefix(v, storedPrefix) }
