package export

import (
	"encoding/hex"
	"fmt"
	"time"

	"github.com/koekje/koekje/server/consent"
)

// SummaryFormat names the summary's fields; a change of them gets a new name.
const SummaryFormat = "koekje-export-v1"

// Summary ends an NDJSON or CSV export: what it was asked for, what it
// holds and the log checkpoint it was made against. A verifier needs it to
// know that nothing was cut off the end (Records), which leaves of the log
// the export accounts for (FirstLeaf to LastLeaf) and which signed tree
// those leaves are in (Checkpoint). The caller fills in what it asked for
// and the checkpoint; the writer counts the rest.
type Summary struct {
	Format         string `json:"format"`
	RecordEncoding string `json:"record_encoding"`
	Site           string `json:"site"`
	// The filter: From inclusive, To exclusive (RFC 3339, UTC), and one
	// visitor's consent ID. An export of one visitor is not a run of the
	// chain, so its links and the leaves between its records are not its
	// to account for.
	From      string `json:"from,omitempty"`
	To        string `json:"to,omitempty"`
	ConsentID string `json:"consent_id,omitempty"`
	Records   int64  `json:"records"`
	FirstSeq  int64  `json:"first_sequence,omitempty"`
	LastSeq   int64  `json:"last_sequence,omitempty"`
	// The leaves of the first and last record that has one, and how many
	// records have none yet (on PostgreSQL, for a moment after their commit;
	// only the newest may wait).
	FirstLeaf *int64 `json:"first_leaf,omitempty"`
	LastLeaf  *int64 `json:"last_leaf,omitempty"`
	Pending   int64  `json:"pending_records,omitempty"`
	// Checkpoint is the log's newest signed checkpoint (a C2SP signed
	// note) when the export began: every leaf of the site below its size
	// that the filter takes is one of the export's records, unless a purge
	// removed it. Records that came in while the export ran may have leaves
	// beyond it.
	Checkpoint string `json:"checkpoint,omitempty"`
	// Purges are the site's retention purges, newest first, as their
	// checkpoints keep them: each opens its entry in the log.
	Purges []Purge `json:"purges,omitempty"`
}

// Purge is a retention purge of the site as its signed checkpoint keeps
// it: the last record it removed (sequence and hash), when, the key that
// signed it and its signature, the last leaf it left without a record,
// and its own entry in the log with the salt that opens its commitment.
type Purge struct {
	ThroughSeq int64  `json:"through_sequence"`
	Hash       string `json:"hash"` // hex
	At         string `json:"at"`   // RFC 3339 in UTC, to the microsecond
	// Before is the rule the purge applied: the records recorded before
	// it went (RFC 3339 in UTC, to the microsecond).
	Before      string `json:"before,omitempty"`
	KeyID       string `json:"key_id,omitempty"`
	Signature   string `json:"signature,omitempty"` // hex, Ed25519 over the statement
	ThroughLeaf *int64 `json:"through_leaf,omitempty"`
	Entry       *int64 `json:"entry,omitempty"`
	EntrySalt   string `json:"entry_salt,omitempty"` // hex
}

// WithPurges adds a site's purge checkpoints (newest first) to s.
func (s *Summary) WithPurges(cps []*consent.Checkpoint) *Summary {
	for _, cp := range cps {
		s.Purges = append(s.Purges, Purge{ThroughSeq: cp.Seq, Hash: hex.EncodeToString(cp.Hash),
			At: cp.CreatedAt.UTC().Format(time.RFC3339Nano), Before: formatTime(cp.Before), KeyID: cp.KeyID, Signature: hex.EncodeToString(cp.Signature),
			ThroughLeaf: cp.LogIndex, Entry: cp.EntryIndex, EntrySalt: hex.EncodeToString(cp.EntrySalt)})
	}
	return s
}

// checkpoint is the purge's checkpoint of site, as its statement needs it.
func (p *Purge) checkpoint(site string) (*consent.Checkpoint, error) {
	hash, err := hex.DecodeString(p.Hash)
	if err != nil {
		return nil, fmt.Errorf("the purge through record %d: hash: %w", p.ThroughSeq, err)
	}
	at, err := time.Parse(time.RFC3339Nano, p.At)
	if err != nil {
		return nil, fmt.Errorf("the purge through record %d: at: %w", p.ThroughSeq, err)
	}
	sig, err := hex.DecodeString(p.Signature)
	if err != nil {
		return nil, fmt.Errorf("the purge through record %d: signature: %w", p.ThroughSeq, err)
	}
	cp := &consent.Checkpoint{Site: site, Seq: p.ThroughSeq, Hash: hash, CreatedAt: at, KeyID: p.KeyID, Signature: sig}
	if p.Before != "" {
		if cp.Before, err = time.Parse(time.RFC3339Nano, p.Before); err != nil {
			return nil, fmt.Errorf("the purge through record %d: before: %w", p.ThroughSeq, err)
		}
	}
	return cp, nil
}

// formatTime is t in RFC 3339, UTC, or "" for the zero time.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// NewSummary starts the summary of an export of f, made against the
// signed checkpoint read before its records (nil when the server keeps no
// log). It holds no time of its own: the export is a function of the
// records and the checkpoint, and the checkpoint's signature, not a
// clock, dates it.
func NewSummary(f consent.Filter, checkpoint []byte) *Summary {
	s := &Summary{Format: SummaryFormat, RecordEncoding: consent.RecordEncodingV1, Site: f.Site, Checkpoint: string(checkpoint)}
	if !f.From.IsZero() {
		s.From = f.From.UTC().Format(time.RFC3339Nano)
	}
	if !f.To.IsZero() {
		s.To = f.To.UTC().Format(time.RFC3339Nano)
	}
	if f.ConsentID != [16]byte{} {
		s.ConsentID = f.ConsentID.String()
	}
	return s
}

// tally counts what a writer wrote, for its summary.
type tally struct {
	records, pending    int64
	firstSeq, lastSeq   int64
	firstLeaf, lastLeaf int64
	hasLeaf             bool
}

func (t *tally) count(r *consent.Record) {
	if t.records == 0 {
		t.firstSeq = r.Seq
	}
	t.records++
	t.lastSeq = r.Seq
	if r.LogIndex == nil {
		t.pending++
		return
	}
	if !t.hasLeaf {
		t.firstLeaf, t.hasLeaf = *r.LogIndex, true
	}
	t.lastLeaf = *r.LogIndex
}

func (t *tally) fill(s *Summary) {
	s.Records, s.FirstSeq, s.LastSeq, s.Pending = t.records, t.firstSeq, t.lastSeq, t.pending
	if t.hasLeaf {
		first, last := t.firstLeaf, t.lastLeaf
		s.FirstLeaf, s.LastLeaf = &first, &last
	}
}
