package consent

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
)

// RecordEncodingV1 names the canonical encoding of a record that its hash,
// and so the chain, is taken over. A change of encoding
// gets a new name, so old chains keep verifying with the old one.
const RecordEncodingV1 = "koekje-record-v1"

// RecordHash returns SHA-256 over the canonical encoding of every stored
// field of r, PrevHash included. Each field is written with its length in
// front, so no two different records encode alike. Seq is left out: a
// record's place in the chain is fixed by PrevHash, and Seq is only the
// index that walks it, so a renumbering shows as a broken link, not as an
// altered record.
func RecordHash(r *Record) []byte {
	e := encoder{b: make([]byte, 0, 512)}
	e.str(RecordEncodingV1)
	e.bytes(r.RecordID[:])
	e.bytes(r.ConsentID[:])
	e.str(r.Site)
	e.int(r.RecordedAt.UnixMicro())
	e.str(r.Action)
	keys := make([]string, 0, len(r.Choices))
	for k := range r.Choices {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	e.int(int64(len(keys)))
	for _, k := range keys {
		e.str(k)
		e.bool(r.Choices[k])
	}
	e.int(int64(len(r.Services)))
	for _, sv := range r.Services {
		e.str(sv)
	}
	e.int(int64(r.Revision))
	e.str(r.ConfigHash)
	e.str(r.Language)
	e.str(r.URL)
	e.str(r.UserAgent)
	e.str(r.IP)
	e.bool(r.GPC)
	e.bytes(r.PrevHash)
	sum := sha256.Sum256(e.b)
	return sum[:]
}

// encoder appends the canonical encoding; the hash is taken over it whole.
type encoder struct{ b []byte }

func (e *encoder) int(v int64) { e.b = binary.AppendVarint(e.b, v) }

func (e *encoder) bytes(b []byte) {
	e.int(int64(len(b)))
	e.b = append(e.b, b...)
}

func (e *encoder) str(s string) {
	e.int(int64(len(s)))
	e.b = append(e.b, s...)
}

func (e *encoder) bool(b bool) {
	if b {
		e.b = append(e.b, 1)
	} else {
		e.b = append(e.b, 0)
	}
}

// Link makes r the next record of a chain whose head has sequence seq,
// hash prevHash and time prevAt: it gives r its record ID, a consent ID
// minted by ids when r has none (a first choice), a time that never runs
// backwards along the chain even if the clock does (time ranges are found
// by sequence number), its sequence number, its link and its hash. newID
// makes time-ordered UUIDs. It returns r's consent-ID index key.
func Link(r *Record, ids IDs, newID func() (uuid.UUID, error), seq int64, prevHash []byte, prevAt, now time.Time) (uuid.UUID, error) {
	id, err := newID()
	if err != nil {
		return uuid.Nil, fmt.Errorf("record id: %w", err)
	}
	var key uuid.UUID
	if r.ConsentID == uuid.Nil {
		// A first choice: its consent ID is minted from a UUIDv7 that
		// doubles as its index key.
		if key, err = newID(); err != nil {
			return uuid.Nil, fmt.Errorf("consent id: %w", err)
		}
		r.ConsentID = ids.Mint(key)
	} else {
		key = ids.Key(r.ConsentID)
	}
	at := now
	if prevAt.After(at) {
		at = prevAt
	}
	r.RecordID, r.RecordedAt, r.Seq, r.PrevHash = id, at, seq+1, prevHash
	r.Hash = RecordHash(r)
	return key, nil
}
