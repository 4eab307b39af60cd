package store

import (
	"context"
	"crypto/rand"
	"fmt"
	"strings"

	"github.com/koekje/koekje/server/keyfile"
	"github.com/koekje/koekje/server/translog"
)

// Succession is what a store writes, in one transaction, to make its log
// the successor s describes (LogSuccessor.SucceedLog), made before it.
type Succession struct {
	Entry  []byte           // the statement's entry, appended at s.Carried
	Signer *translog.Signer // the successor's, under a new key
	// SealedKey is the new key's seed, sealed as LogKeySecret: it takes
	// the old seed's place, so the old name never signs again.
	SealedKey []byte
	// SealedEarlier is the earlier names' verifier keys with the old one
	// last, sealed as LogEarlierKeysSecret.
	SealedEarlier []byte
}

// NewSuccession prepares db's succession by s: s must succeed db's log as
// it is named and keyed now.
func NewSuccession(ctx context.Context, db Store, s *translog.Successor) (*Succession, error) {
	old, err := db.LogSigner(ctx)
	if err != nil {
		return nil, err
	}
	if old == nil || old.Origin() != s.Predecessor.Origin || old.VerifierKey() != s.PredecessorKey {
		return nil, fmt.Errorf("the statement succeeds the log %s, and this database's log is not it", s.PredecessorKey)
	}
	entry, err := s.Encode()
	if err != nil {
		return nil, err
	}
	earlier, err := db.EarlierLogKeys(ctx)
	if err != nil {
		return nil, err
	}
	seed := make([]byte, 32)
	if _, err := rand.Read(seed); err != nil {
		return nil, err
	}
	signer, err := translog.NewSigner(s.Origin, seed)
	if err != nil {
		return nil, err
	}
	sealedKey, err := db.KeyFile().Seal(LogKeySecret, seed)
	if err != nil {
		return nil, err
	}
	sealedEarlier, err := db.KeyFile().Seal(LogEarlierKeysSecret, []byte(strings.Join(append(earlier, old.VerifierKey()), "\n")))
	if err != nil {
		return nil, err
	}
	return &Succession{Entry: entry, Signer: signer, SealedKey: sealedKey, SealedEarlier: sealedEarlier}, nil
}

// OpenEarlierKeys reads the sealed LogEarlierKeysSecret (nil: none, for a
// log that succeeded no other) into the verifier keys it holds.
func OpenEarlierKeys(kek *keyfile.Key, sealed []byte) ([]string, error) {
	if sealed == nil {
		return nil, nil
	}
	keys, err := kek.Open(LogEarlierKeysSecret, sealed)
	if err != nil {
		return nil, fmt.Errorf("the log's earlier keys: %w", err)
	}
	return strings.Fields(string(keys)), nil
}
