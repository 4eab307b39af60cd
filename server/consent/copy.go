package consent

import (
	"time"

	"github.com/google/uuid"
)

// What one store hands another when a deployment moves (koekje
// migrate-store): rows as stored, so the copy answers as the original did.

// StoredRecord is a record with the index key of its consent ID, as
// stored (see IDs).
type StoredRecord struct {
	Record
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

// RequestID is a client-made request ID and the record it made.
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
