package consent

import (
	"context"
	"time"

	"github.com/google/uuid"
)

// Actions a visitor can take.
const (
	AcceptAll = "accept_all"
	RejectAll = "reject_all"
	Custom    = "custom"
	Withdraw  = "withdraw"
)

// Record is one stored choice. Records are never changed once written: a
// withdrawal is a new record.
type Record struct {
	RecordID   uuid.UUID       `json:"record_id"`
	ConsentID  uuid.UUID       `json:"consent_id"`
	Site       string          `json:"site"`
	Seq        int64           `json:"seq"`
	RecordedAt time.Time       `json:"recorded_at"`
	Action     string          `json:"action"`
	Choices    map[string]bool `json:"choices"`
	Services   []string        `json:"services,omitempty"` // services granted one by one, sorted
	Revision   int             `json:"revision"`
	ConfigHash string          `json:"config_hash"`
	Language   string          `json:"language"`
	URL        string          `json:"url,omitempty"`
	UserAgent  string          `json:"user_agent,omitempty"`
	IP         string          `json:"ip,omitempty"` // truncated: IPv4 /24, IPv6 /48
	GPC        bool            `json:"gpc"`
	PrevHash   []byte          `json:"prev_hash"`
	Hash       []byte          `json:"hash"`
}

// Store keeps records append-only.
type Store interface {
	// Append stores r durably. It assigns RecordID, Seq, RecordedAt, PrevHash
	// and Hash, and returns only once r is committed.
	Append(ctx context.Context, r *Record) error
	// History returns every record of a consent ID, oldest first.
	History(ctx context.Context, consentID uuid.UUID) ([]*Record, error)
	// PutVersion stores a banner version (what a visitor was shown) once.
	PutVersion(ctx context.Context, site, hash string, body []byte) error
	// HasVersion reports whether a banner version is known for site.
	HasVersion(ctx context.Context, site, hash string) (bool, error)
	// Ping checks that the store can be read.
	Ping(ctx context.Context) error
}
