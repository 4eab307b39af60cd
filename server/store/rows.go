package store

import (
	"time"

	"github.com/google/uuid"

	"github.com/koekje/koekje/server/consent"
	"github.com/koekje/koekje/server/translog"
)

// The rows one store hands another when a deployment moves (koekje
// migrate-store), as stored, so the copy answers as the original did.

// StoredRecord is a record with the index key of its consent ID, as
// stored: the key the stores mint the consent ID from (package consent).
type StoredRecord struct {
	consent.Record
	ConsentKey uuid.UUID
}

// Secret is a stored secret in the clear, between opening it with one key
// file and sealing it with another.
type Secret struct {
	Name      string
	Value     []byte
	CreatedAt time.Time
}

// Version is a banner version a site served.
type Version struct {
	Site, Hash string
	Body       []byte
	CreatedAt  time.Time
}

// RequestID is a client-made request ID (its keyed hash, as stored) and
// the record it made.
type RequestID struct {
	Site, RequestID string
	Seq             int64
}

// Session is a console session.
type Session struct {
	ID, Token            []byte
	CreatedAt, ExpiresAt time.Time
	EndedAt              *time.Time
}

// LogLeaf is a leaf of the transparency log and the place in its chain of
// the record it commits to (Salt is nil once a purge removed the record),
// or a purge's entry and the last record that purge removed.
type LogLeaf struct {
	Index       int64
	Kind        translog.LeafKind
	Site        string
	Seq         int64
	Salt, Entry []byte
}

// LogCheckpoint is a signed checkpoint of the transparency log, or with
// Witnessed, the same with the cosignatures witnesses added.
type LogCheckpoint struct {
	Size      int64
	Signed    []byte
	CreatedAt time.Time
}
