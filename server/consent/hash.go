package consent

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
)

// RecordEncodingV1 and RecordEncodingV2 name the canonical encodings of a
// record that its hash, and so the chain, is taken over. A change of
// encoding gets a new name, so old chains keep verifying with the old one:
// a chain may hold records of both, each hashed under its own.
// koekje-record-v2 is v1 with the browser's signals on the POST after gpc
// (gpc_header, adpc, signal); new records are made under it.
const (
	RecordEncodingV1 = "koekje-record-v1"
	RecordEncodingV2 = "koekje-record-v2"
)

// Record.Encoding's values.
const (
	EncodingV1 = 1
	EncodingV2 = 2
)

// EncodingName is the name of r's encoding.
func EncodingName(r *Record) string {
	if isV2(r) {
		return RecordEncodingV2
	}
	return RecordEncodingV1
}

// EncodingOf is the version of r's encoding, EncodingV1 or EncodingV2, as
// a store keeps it beside the record.
func EncodingOf(r *Record) int {
	if isV2(r) {
		return EncodingV2
	}
	return EncodingV1
}

// isV2 reports whether r is encoded as koekje-record-v2: it says so, or it
// carries signals, which koekje-record-v1 has no place for.
func isV2(r *Record) bool {
	return r.Encoding == EncodingV2 || r.GPCHeader || r.ADPC != "" || r.Signal != ""
}

// RecordHash returns SHA-256 over the canonical encoding of every stored
// field of r, PrevHash included. Each field is written with its length in
// front, so no two different records encode alike. Seq is left out: a
// record's place in the chain is fixed by PrevHash, and Seq is only the
// index that walks it, so a renumbering shows as a broken link, not as an
// altered record.
func RecordHash(r *Record) []byte {
	sum := sha256.Sum256(RecordEncoding(r))
	return sum[:]
}

// RecordEncoding is the canonical encoding of r that RecordHash hashes,
// under r's encoding (EncodingName): every field with its length in front,
// lengths and integers as signed varints, choices sorted by category. A
// receipt carries it, so anyone recomputes the record's hash from the
// receipt alone; DecodeRecord reads it back. A record of encoding 1 has no
// signals to encode: one that carries some is encoded as 2, so no field
// is ever left out of its hash.
func RecordEncoding(r *Record) []byte {
	v2 := isV2(r)
	e := encoder{b: make([]byte, 0, 512)}
	if v2 {
		e.str(RecordEncodingV2)
	} else {
		e.str(RecordEncodingV1)
	}
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
	if v2 {
		e.bool(r.GPCHeader)
		e.str(r.ADPC)
		e.str(r.Signal)
	}
	e.bytes(r.PrevHash)
	return e.b
}

// DecodeRecord reads a record's canonical encoding (RecordEncoding): the
// fields the hash covers, not Seq, Hash or anything the store adds. It
// refuses anything that is not exactly one record of a known encoding.
func DecodeRecord(b []byte) (*Record, error) {
	d := decoder{b: b}
	r := &Record{}
	switch enc := d.str(); {
	case d.err != nil:
		return nil, d.err
	case enc == RecordEncodingV1:
		r.Encoding = EncodingV1
	case enc == RecordEncodingV2:
		r.Encoding = EncodingV2
	default:
		return nil, fmt.Errorf("record encoding %q is neither %s nor %s", enc, RecordEncodingV1, RecordEncodingV2)
	}
	copy(r.RecordID[:], d.fixed(16))
	copy(r.ConsentID[:], d.fixed(16))
	r.Site = d.str()
	r.RecordedAt = time.UnixMicro(d.int()).UTC()
	r.Action = d.str()
	n := d.count()
	r.Choices = make(map[string]bool, n)
	prev := ""
	for i := 0; i < n && d.err == nil; i++ {
		k := d.str()
		if i > 0 && k <= prev {
			d.fail("choices out of order")
		}
		prev = k
		r.Choices[k] = d.bool()
	}
	n = d.count()
	for i := 0; i < n && d.err == nil; i++ {
		r.Services = append(r.Services, d.str())
	}
	r.Revision = int(d.int())
	r.ConfigHash = d.str()
	r.Language = d.str()
	r.URL = d.str()
	r.UserAgent = d.str()
	r.IP = d.str()
	r.GPC = d.bool()
	if r.Encoding == EncodingV2 {
		r.GPCHeader = d.bool()
		r.ADPC = d.str()
		r.Signal = d.str()
		if d.err == nil && !ValidSignal(r.Signal) {
			d.fail("unknown signal")
		}
	}
	r.PrevHash = d.bytes()
	if d.err == nil && len(d.b) > 0 {
		d.fail("trailing bytes")
	}
	if d.err != nil {
		return nil, d.err
	}
	return r, nil
}

// decoder reads the canonical encoding; the first error sticks.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("record encoding: %s", what)
	}
}

func (d *decoder) int() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads a length, no more than the bytes left could hold.
func (d *decoder) count() int {
	v := d.int()
	if v < 0 || v > int64(len(d.b)) {
		d.fail("bad length")
		return 0
	}
	return int(v)
}

func (d *decoder) bytes() []byte {
	n := d.count()
	if d.err != nil {
		return nil
	}
	out := d.b[:n:n]
	d.b = d.b[n:]
	return out
}

func (d *decoder) fixed(n int) []byte {
	b := d.bytes()
	if d.err == nil && len(b) != n {
		d.fail(fmt.Sprintf("want %d bytes, got %d", n, len(b)))
	}
	return b
}

func (d *decoder) str() string { return string(d.bytes()) }

func (d *decoder) bool() bool {
	if d.err != nil {
		return false
	}
	if len(d.b) == 0 || d.b[0] > 1 {
		d.fail("bad bool")
		return false
	}
	v := d.b[0] == 1
	d.b = d.b[1:]
	return v
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
