package export

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/google/uuid"

	"github.com/koekje/koekje/server/consent"
)

// Reader reads back an NDJSON or CSV export, record by record, exactly as
// the record was hashed: it undoes the CSV's escaping and refuses a cell or
// field it cannot read, rather than guess.
type Reader struct {
	r       *bufio.Reader
	csv     bool
	sep     byte
	columns map[string]int // CSV: column name → index
	cats    []string       // CSV: the categories of the choice_ columns, by index
	line    int            // of the row or line just read (1-based)
	next    int            // the line the next row starts on
	summary *Summary
	buf     []string
}

// NewReader reads an export, telling NDJSON from CSV (with a byte order
// mark or without, comma or semicolon) by its first bytes.
func NewReader(in io.Reader) (*Reader, error) {
	r := &Reader{r: bufio.NewReaderSize(in, 64<<10), next: 1}
	if b, _ := r.r.Peek(3); bytes.Equal(b, []byte("\ufeff")) {
		r.r.Discard(3)
	}
	first, err := r.r.Peek(1)
	if err != nil {
		return nil, errors.New("the export is empty")
	}
	if first[0] == '{' {
		return r, nil
	}
	r.csv = true
	head, _ := r.r.Peek(len("record_id") + 1)
	if !bytes.HasPrefix(head, []byte("record_id")) || len(head) <= len("record_id") {
		return nil, errors.New("neither NDJSON nor a CSV export: the first line is not a record or the CSV header")
	}
	r.sep = head[len("record_id")]
	if r.sep != ',' && r.sep != ';' {
		return nil, fmt.Errorf("CSV separator %q: want a comma or a semicolon", r.sep)
	}
	header, err := r.row()
	if err != nil {
		return nil, err
	}
	r.columns = map[string]int{}
	for i, h := range header {
		if _, dup := r.columns[h]; dup {
			return nil, fmt.Errorf("CSV header: column %q twice", h)
		}
		r.columns[h] = i
		if cat, ok := strings.CutPrefix(h, "choice_"); ok {
			r.cats = append(r.cats, cat)
		}
	}
	for _, want := range []string{"record_id", "consent_id", "site", "sequence", "recorded_at", "action", "other_choices", "services",
		"revision", "config_hash", "language", "url", "user_agent", "ip", "gpc", "prev_hash", "hash", "log_index", "log_salt"} {
		if _, ok := r.columns[want]; !ok {
			return nil, fmt.Errorf("CSV header: no %s column", want)
		}
	}
	return r, nil
}

// Format is "csv" or "ndjson".
func (r *Reader) Format() string {
	if r.csv {
		return "csv"
	}
	return "ndjson"
}

// Line is the line the record or summary last read starts on.
func (r *Reader) Line() int { return r.line }

// Summary is the export's summary, once Next has returned io.EOF after it.
func (r *Reader) Summary() *Summary { return r.summary }

// Next returns the next record, or io.EOF after the summary. Anything after
// the summary, or an end without one, is an error: a cut export is not a
// whole one.
func (r *Reader) Next() (*consent.Record, error) {
	if r.summary != nil {
		if _, err := r.r.Peek(1); err == io.EOF {
			return nil, io.EOF
		}
		r.line = r.next
		return nil, errors.New("something follows the summary")
	}
	if r.csv {
		return r.nextCSV()
	}
	return r.nextNDJSON()
}

func (r *Reader) nextNDJSON() (*consent.Record, error) {
	r.line = r.next
	b, err := r.r.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		full := append([]byte(nil), b...)
		var rest []byte
		rest, err = r.r.ReadBytes('\n')
		b = append(full, rest...)
	}
	if err == io.EOF {
		if len(b) == 0 {
			return nil, errors.New("the export ends without its summary: it was cut off, or is not a whole export")
		}
		return nil, errors.New("the last line has no line feed: the export was cut off")
	}
	if err != nil {
		return nil, err
	}
	r.next++
	if bytes.HasPrefix(b, []byte(`{"koekje_export":`)) {
		var s struct {
			S *Summary `json:"koekje_export"`
		}
		if err := strictJSON(b, &s); err != nil || s.S == nil {
			return nil, fmt.Errorf("the summary: %v", err)
		}
		r.summary = s.S
		return r.Next()
	}
	var l Line
	if err := strictJSON(b, &l); err != nil {
		return nil, err
	}
	return l.record()
}

// strictJSON decodes one JSON value as Koekje wrote it: names matched
// exactly (not regardless of case, as encoding/json would), no name the
// type does not know, none twice, valid UTF-8.
func strictJSON(b []byte, v any) error {
	if err := json.Unmarshal(bytes.TrimSuffix(b, []byte("\n")), v, json.RejectUnknownMembers(true)); err != nil {
		return fmt.Errorf("not a record as exported: %v", err)
	}
	return nil
}

// record is the record the line shows.
func (l *Line) record() (*consent.Record, error) {
	rec := &consent.Record{RecordID: l.RecordID, ConsentID: l.ConsentID, Site: l.Site, Seq: l.Seq, Action: l.Action,
		Choices: l.Choices, Services: l.Services, Revision: l.Revision, ConfigHash: l.ConfigHash, Language: l.Language,
		URL: l.URL, UserAgent: l.UserAgent, IP: l.IP, GPC: l.GPC, LogIndex: l.LogIndex}
	if rec.Choices == nil {
		return nil, errors.New("choices: missing")
	}
	switch l.Encoding {
	case "":
		if l.GPCHeader != nil || l.ADPC != "" || l.Signal != "" {
			return nil, errors.New("gpc_header, adpc and signal belong to records of " + consent.RecordEncodingV2 + ": encoding missing")
		}
	case consent.RecordEncodingV2:
		if l.GPCHeader == nil {
			return nil, errors.New("gpc_header: missing")
		}
		if !consent.ValidSignal(l.Signal) {
			return nil, fmt.Errorf("signal %q: want one of %s", l.Signal, strings.Join(consent.Signals, ", "))
		}
		rec.Encoding, rec.GPCHeader, rec.ADPC, rec.Signal = consent.EncodingV2, *l.GPCHeader, l.ADPC, l.Signal
	default:
		return nil, fmt.Errorf("encoding %q: want %s, or none for %s", l.Encoding, consent.RecordEncodingV2, consent.RecordEncodingV1)
	}
	var err error
	if rec.RecordedAt, err = parseTime(l.RecordedAt); err != nil {
		return nil, err
	}
	if rec.PrevHash, err = hexField("prev_hash", l.PrevHash); err != nil {
		return nil, err
	}
	if rec.Hash, err = hexField("hash", l.Hash); err != nil {
		return nil, err
	}
	if rec.LogSalt, err = hexField("log_salt", l.LogSalt); err != nil {
		return nil, err
	}
	return rec, nil
}

func parseTime(v string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil || !strings.HasSuffix(v, "Z") {
		return t, fmt.Errorf("recorded_at %q: want RFC 3339 in UTC (Z)", v)
	}
	return t, nil
}

func hexField(name, v string) ([]byte, error) {
	b, err := hex.DecodeString(v)
	if err != nil || hex.EncodeToString(b) != v {
		return nil, fmt.Errorf("%s %q: want lower-case hex", name, v)
	}
	if len(b) == 0 {
		return nil, nil
	}
	return b, nil
}

func (r *Reader) nextCSV() (*consent.Record, error) {
	cells, err := r.row()
	if err == io.EOF {
		return nil, errors.New("the export ends without its summary: it was cut off, or is not a whole export")
	}
	if err != nil {
		return nil, err
	}
	if len(cells) == 2 && cells[0] == SummaryCell {
		var s Summary
		if err := strictJSON([]byte(cells[1]), &s); err != nil {
			return nil, fmt.Errorf("the summary: %v", err)
		}
		r.summary = &s
		return r.Next()
	}
	if len(cells) != len(r.columns) {
		return nil, fmt.Errorf("%d cells, the header has %d", len(cells), len(r.columns))
	}
	for i, c := range cells {
		v, ok := Revert(c)
		if !ok {
			return nil, fmt.Errorf("cell %d %q: its apostrophe is not the formula guard's (the escaping was changed)", i+1, c)
		}
		cells[i] = v
	}
	cell := func(name string) string { return cells[r.columns[name]] }
	rec := &consent.Record{Site: cell("site"), Action: cell("action"), ConfigHash: cell("config_hash"), Language: cell("language"),
		URL: cell("url"), UserAgent: cell("user_agent"), IP: cell("ip"), Choices: map[string]bool{}}
	if rec.RecordID, err = uuid.Parse(cell("record_id")); err != nil {
		return nil, fmt.Errorf("record_id: %v", err)
	}
	if rec.ConsentID, err = uuid.Parse(cell("consent_id")); err != nil {
		return nil, fmt.Errorf("consent_id: %v", err)
	}
	if rec.Seq, err = strconv.ParseInt(cell("sequence"), 10, 64); err != nil {
		return nil, fmt.Errorf("sequence: %v", err)
	}
	if rec.RecordedAt, err = parseTime(cell("recorded_at")); err != nil {
		return nil, err
	}
	for _, cat := range r.cats {
		if err := setChoice(rec.Choices, cat, cells[r.columns["choice_"+cat]], true); err != nil {
			return nil, err
		}
	}
	if other := cell("other_choices"); other != "" {
		for _, kv := range strings.Split(other, " ") {
			k, v, _ := strings.Cut(kv, "=")
			if _, dup := rec.Choices[k]; dup || k == "" {
				return nil, fmt.Errorf("other_choices %q: %q twice or empty", other, k)
			}
			if err := setChoice(rec.Choices, k, v, false); err != nil {
				return nil, err
			}
		}
	}
	if s := cell("services"); s != "" {
		rec.Services = strings.Split(s, " ")
	}
	if rec.Revision, err = strconv.Atoi(cell("revision")); err != nil {
		return nil, fmt.Errorf("revision: %v", err)
	}
	switch cell("gpc") {
	case "true":
		rec.GPC = true
	case "false":
	default:
		return nil, fmt.Errorf("gpc %q: want true or false", cell("gpc"))
	}
	if rec.PrevHash, err = hexField("prev_hash", cell("prev_hash")); err != nil {
		return nil, err
	}
	if rec.Hash, err = hexField("hash", cell("hash")); err != nil {
		return nil, err
	}
	if rec.LogSalt, err = hexField("log_salt", cell("log_salt")); err != nil {
		return nil, err
	}
	if v := cell("log_index"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("log_index %q", v)
		}
		rec.LogIndex = &n
	}
	if err := r.signals(rec, cell); err != nil {
		return nil, err
	}
	return rec, nil
}

// signals reads a row's encoding and signals. A CSV exported before
// records had signals has no such columns: its records are all of
// koekje-record-v1.
func (r *Reader) signals(rec *consent.Record, cell func(string) string) error {
	if _, ok := r.columns["encoding"]; !ok {
		return nil
	}
	for _, c := range []string{"gpc_header", "adpc", "signal"} {
		if _, ok := r.columns[c]; !ok {
			return fmt.Errorf("CSV header: an encoding column and no %s column", c)
		}
	}
	switch cell("encoding") {
	case consent.RecordEncodingV1:
		if cell("gpc_header") != "" || cell("adpc") != "" || cell("signal") != "" {
			return errors.New("gpc_header, adpc and signal belong to records of " + consent.RecordEncodingV2)
		}
		return nil
	case consent.RecordEncodingV2:
	default:
		return fmt.Errorf("encoding %q: want %s or %s", cell("encoding"), consent.RecordEncodingV1, consent.RecordEncodingV2)
	}
	rec.Encoding, rec.ADPC, rec.Signal = consent.EncodingV2, cell("adpc"), cell("signal")
	switch cell("gpc_header") {
	case "true":
		rec.GPCHeader = true
	case "false":
	default:
		return fmt.Errorf("gpc_header %q: want true or false", cell("gpc_header"))
	}
	if !consent.ValidSignal(rec.Signal) {
		return fmt.Errorf("signal %q: want one of %s", rec.Signal, strings.Join(consent.Signals, ", "))
	}
	return nil
}

// setChoice reads a choice cell: true, false, or (in a choice_ column)
// empty for a category the visitor was never asked about.
func setChoice(choices map[string]bool, cat, v string, mayBeEmpty bool) error {
	switch {
	case v == "true":
		choices[cat] = true
	case v == "false":
		choices[cat] = false
	case v == "" && mayBeEmpty:
	default:
		return fmt.Errorf("choice %s %q: want true or false", cat, v)
	}
	return nil
}

// row reads one RFC 4180 row: cells split by the separator, a quoted cell
// may hold the separator, a doubled quote, CR and LF, all kept as they
// are; the row ends with CRLF (or LF).
func (r *Reader) row() ([]string, error) {
	r.line = r.next
	cells := r.buf[:0]
	var cell []byte
	for {
		b, err := r.r.ReadByte()
		if err == io.EOF && len(cells) == 0 && cell == nil {
			return nil, io.EOF
		}
		if err == io.EOF {
			return nil, errors.New("the last row has no line end: the export was cut off")
		}
		if err != nil {
			return nil, err
		}
		switch {
		case b == '"' && len(cell) == 0:
			if cell, err = r.quoted(cell); err != nil {
				return nil, err
			}
			if cell == nil {
				cell = []byte{}
			}
			next, err := r.r.Peek(1)
			if err != nil || (next[0] != r.sep && next[0] != '\r' && next[0] != '\n') {
				return nil, fmt.Errorf("line %d: a quoted cell is followed by %q", r.next, next)
			}
			continue
		case b == r.sep:
			cells, cell = append(cells, string(cell)), nil
		case b == '\r':
			if next, _ := r.r.Peek(1); len(next) == 1 && next[0] == '\n' {
				continue
			}
			return nil, fmt.Errorf("line %d: a carriage return outside quotes", r.next)
		case b == '\n':
			r.next++
			r.buf = append(cells, string(cell))
			return r.buf, nil
		case b == '"':
			return nil, fmt.Errorf("line %d: a quote inside an unquoted cell", r.next)
		default:
			cell = append(cell, b)
		}
	}
}

// quoted reads a quoted cell's content after its opening quote.
func (r *Reader) quoted(cell []byte) ([]byte, error) {
	for {
		b, err := r.r.ReadByte()
		if err != nil {
			return nil, errors.New("a quoted cell never ends: the export was cut off")
		}
		if b == '\n' {
			r.next++
		}
		if b != '"' {
			cell = append(cell, b)
			continue
		}
		if next, _ := r.r.Peek(1); len(next) == 1 && next[0] == '"' {
			r.r.ReadByte()
			cell = append(cell, '"')
			continue
		}
		return cell, nil
	}
}
