package consent

import (
	"errors"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Actions a visitor can take.
const (
	AcceptAll = "accept_all"
	RejectAll = "reject_all"
	Custom    = "custom"
	Withdraw  = "withdraw"
	// LoadOnce loads one embed on one page: a consent for that service and
	// page view only, recorded so the proof covers it.
	LoadOnce = "load_once"
)

// Actions are every action, in the order they are listed to people.
var Actions = []string{AcceptAll, RejectAll, Custom, Withdraw, LoadOnce}

var actionList = strings.Join(Actions, ", ")

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
	GPC        bool            `json:"gpc"`          // the page's own reading (navigator.globalPrivacyControl)
	// GPCHeader, ADPC and Signal are the browser's signals on the POST
	// that made the record (records of encoding 2 on; see signals.go):
	// Sec-GPC: 1, the ADPC header as read (ADPC.String), and the signal
	// that decided the choice (SignalNone when the visitor did).
	GPCHeader bool   `json:"gpc_header,omitempty"`
	ADPC      string `json:"adpc,omitempty"`
	Signal    string `json:"signal,omitempty"`
	PrevHash  []byte `json:"prev_hash"`
	Hash      []byte `json:"hash"`
	// Encoding is the version of the canonical encoding the record is
	// hashed under: EncodingV1 (0 reads as it: records made before the
	// signals were recorded) or EncodingV2. It is the first thing the
	// encoding writes, so it is covered by the hash itself.
	Encoding int `json:"-"`

	// RequestID is the client's name for the POST that made the record; it
	// is kept beside the record, not in it, and is not hashed.
	RequestID string `json:"-"`
	// Replayed is set by a store that found RequestID already recorded: the
	// record is the one stored then, and nothing new was written.
	Replayed bool `json:"-"`
	// LogIndex and LogSalt are the record's leaf in the transparency log and
	// the salt of the leaf's commitment, set by a store's Scan (exports)
	// once the record has a leaf. They are kept beside the record, not in
	// it, and are not hashed.
	LogIndex *int64 `json:"-"`
	LogSalt  []byte `json:"-"`
}

// Filter selects records for an export or a lookup.
type Filter struct {
	Site      string
	From, To  time.Time // zero means unbounded; To is exclusive
	ConsentID uuid.UUID // uuid.Nil means every visitor
}

// Query selects a page of one site's records, newest first, for an
// auditor's list: keyset paging by sequence number, so every page costs
// the same however deep.
type Query struct {
	Site      string
	From, To  time.Time // zero means unbounded; To is exclusive
	ConsentID uuid.UUID // uuid.Nil means every visitor
	Action    string    // "" means every action
	GPC       *bool     // nil means either
	// Before is the cursor: only records with a lower sequence number
	// (0 for the newest).
	Before int64
	Limit  int
	// Span, when set, bounds the sequence numbers one page examines below
	// its cursor: a filter that matches rarely then answers a page with
	// fewer records (or none) and a cursor to go on from, instead of
	// reading the whole site for it.
	Span int64
}

// Checkpoint marks where a purge cut a site's chain: the chain goes on from
// the last purged record's sequence number and hash.
type Checkpoint struct {
	Site      string
	Seq       int64
	Hash      []byte
	CreatedAt time.Time
	KeyID     string
	Signature []byte // Ed25519 over proof.CheckpointMessage
	// LogIndex is the last purged record's leaf in the transparency log, if
	// it had one: the site's leaves up to it may have no records.
	LogIndex *int64
	// EntryIndex is the purge's own entry in the transparency log, a leaf
	// of kind purge committing to this checkpoint's statement under
	// EntrySalt; nil before it is in the log, or without a log.
	EntryIndex *int64
	EntrySalt  []byte
	// Before is the rule the purge applied: the records recorded before it
	// went (a site's retention period at the time, or koekje purge
	// --before). Zero for a purge that kept no rule.
	Before time.Time
}

// DayStats counts one day's choices of a site.
type DayStats struct {
	Day     string         `json:"day"` // YYYY-MM-DD, UTC
	Total   int            `json:"total"`
	Actions map[string]int `json:"actions"`
	GPC     int            `json:"gpc"`
	Granted map[string]int `json:"granted"` // records granting each category
}

// SigningKey signs receipts and checkpoints. The newest one signs; older ones
// stay published so what they signed still verifies.
type SigningKey struct {
	ID        string
	Private   []byte // ed25519.PrivateKey
	CreatedAt time.Time
}

// VersionUse is a banner version and the records made under it.
type VersionUse struct {
	Hash        string
	First, Last time.Time
	Records     int
}

// CollectionMethod says how a record's choice was made.
func CollectionMethod(r *Record) string {
	switch {
	case r.Signal == SignalGPCHeader:
		return "Global Privacy Control signal of the browser (Sec-GPC header), recorded by Koekje"
	case r.Signal == SignalGPCPage, r.Signal == "" && r.GPC && r.Action == RejectAll:
		return "Global Privacy Control signal of the browser, recorded by the Koekje banner"
	case r.Signal == SignalADPC:
		return "Advanced Data Protection Control signal of the browser (ADPC header) over the choice in the Koekje cookie banner"
	}
	return "choice in the Koekje cookie banner on the website"
}

// ParseTime reads an RFC 3339 time or a date (2026-01-31, midnight UTC).
// With endOfDay, a bare date means the midnight after it, so that a period
// "to 2026-01-31" takes in that whole day.
func ParseTime(v string, endOfDay bool) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.DateOnly, v)
	if err != nil {
		return time.Time{}, errors.New("must be a date (2026-01-31) or an RFC 3339 time")
	}
	if endOfDay {
		t = t.AddDate(0, 0, 1)
	}
	return t, nil
}
