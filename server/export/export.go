// Package export writes consent records for auditors: NDJSON, CSV (RFC 4180)
// and ISO/IEC TS 27560 JSON, row by row, so that memory stays flat whatever
// the size. The API's export route and the export command both use it.
package export

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"io"
	"slices"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/koekje/koekje/config"
	"github.com/koekje/koekje/server/consent"
)

// Writer writes records in one export format. Close ends the document and
// flushes it; nothing is complete before it. End ends it with its summary
// instead (NDJSON and CSV; ISO 27560 has no place for one): what the export
// holds and the log checkpoint it was made against, so that it can be
// verified without the database.
type Writer interface {
	Write(*consent.Record) error
	Close() error
	End(*Summary) error
	ContentType() string
	Extension() string
}

// Options shape the CSV for spreadsheets: Separator ';' (with BOM) is what
// Dutch, German and French spreadsheets expect of a .csv file.
type Options struct {
	Separator byte // ',' (the default) or ';'
	BOM       bool // start with a UTF-8 byte order mark
}

// Formats names every export format, the default first.
var Formats = []string{"ndjson", "csv", "iso27560"}

// New returns the writer of format (ndjson, csv or iso27560; empty means
// ndjson) for records of site; site may be nil for NDJSON.
func New(format string, site *config.Site, out io.Writer) (Writer, error) {
	return NewWith(format, site, out, Options{})
}

// NewWith is New with the CSV's options.
func NewWith(format string, site *config.Site, out io.Writer, o Options) (Writer, error) {
	bw := bufio.NewWriterSize(out, 64<<10)
	switch format {
	case "", "ndjson":
		return &ndjsonExporter{w: bw}, nil
	case "csv":
		switch o.Separator {
		case 0:
			o.Separator = ','
		case ',', ';':
		default:
			return nil, consent.FieldErrorf(consent.EINVALID, "separator", "must be comma or semicolon")
		}
		e := &csvExporter{w: bw, site: site, sep: o.Separator}
		return e, e.header(o.BOM)
	case "iso27560":
		return &isoExporter{w: bw, enc: json.NewEncoder(bw), site: site}, nil
	}
	return nil, consent.FieldErrorf(consent.EINVALID, "format", "must be ndjson, csv or iso27560")
}

// Record is one record as JSON: what a visitor's history shows of it.
type Record struct {
	RecordID   uuid.UUID       `json:"record_id"`
	Site       string          `json:"site"`
	Seq        int64           `json:"seq"`
	RecordedAt string          `json:"recorded_at"`
	Action     string          `json:"action"`
	Choices    map[string]bool `json:"choices"`
	Services   []string        `json:"services,omitempty"`
	Revision   int             `json:"revision"`
	ConfigHash string          `json:"config_hash"`
	Language   string          `json:"language"`
	URL        string          `json:"url,omitempty"`
	UserAgent  string          `json:"user_agent,omitempty"`
	IP         string          `json:"ip,omitempty"`
	GPC        bool            `json:"gpc"`
	// The browser's signals, in records of koekje-record-v2 only: Sec-GPC
	// on the POST, the ADPC header as read, and the signal that decided.
	GPCHeader *bool  `json:"gpc_header,omitempty"`
	ADPC      string `json:"adpc,omitempty"`
	Signal    string `json:"signal,omitempty"`
	PrevHash  string `json:"prev_hash"`
	Hash      string `json:"hash"`
	// Encoding names the record's encoding when it is not
	// koekje-record-v1, the one records without it are hashed under.
	Encoding string `json:"encoding,omitempty"`
	// The record's leaf in the transparency log and its commitment's salt
	// (exports only): SHA-256("koekje-commitment-v1\0" ‖ salt ‖ hash) is the
	// commitment in leaf log_index, which a site's auditor checks against
	// the public log.
	LogIndex *int64 `json:"log_index,omitempty"`
	LogSalt  string `json:"log_salt,omitempty"`
}

// View returns r as its JSON view.
func View(r *consent.Record) Record {
	v := Record{
		RecordID: r.RecordID, Site: r.Site, Seq: r.Seq,
		RecordedAt: r.RecordedAt.Format(time.RFC3339Nano), Action: r.Action,
		Choices: r.Choices, Services: r.Services, Revision: r.Revision, ConfigHash: r.ConfigHash,
		Language: r.Language, URL: r.URL, UserAgent: r.UserAgent, IP: r.IP, GPC: r.GPC,
		PrevHash: hex.EncodeToString(r.PrevHash), Hash: hex.EncodeToString(r.Hash),
		LogIndex: r.LogIndex, LogSalt: hex.EncodeToString(r.LogSalt),
	}
	if consent.EncodingOf(r) == consent.EncodingV2 {
		v.GPCHeader, v.ADPC, v.Signal, v.Encoding = &r.GPCHeader, r.ADPC, r.Signal, consent.RecordEncodingV2
	}
	return v
}

// Line is one record in NDJSON: its view with its consent ID.
type Line struct {
	ConsentID uuid.UUID `json:"consent_id"`
	Record
}

type ndjsonExporter struct {
	w   *bufio.Writer
	buf []byte
	tally
}

// Write appends the record as encoding/json would write its Line,
// without reflection: exports are the one place that writes millions.
func (e *ndjsonExporter) Write(r *consent.Record) error {
	e.count(r)
	b := append(e.buf[:0], `{"consent_id":"`...)
	b = AppendUUID(b, r.ConsentID)
	b = append(b, `","record_id":"`...)
	b = AppendUUID(b, r.RecordID)
	b = append(b, `","site":`...)
	b = AppendJSONString(b, r.Site)
	b = append(b, `,"seq":`...)
	b = strconv.AppendInt(b, r.Seq, 10)
	b = append(b, `,"recorded_at":"`...)
	b = r.RecordedAt.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","action":`...)
	b = AppendJSONString(b, r.Action)
	b = append(b, `,"choices":{`...)
	var keyBuf [8]string
	keys := keyBuf[:0]
	for k := range r.Choices {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = AppendJSONString(b, k)
		b = append(b, ':')
		b = strconv.AppendBool(b, r.Choices[k])
	}
	b = append(b, '}')
	if len(r.Services) > 0 {
		b = append(b, `,"services":[`...)
		for i, sv := range r.Services {
			if i > 0 {
				b = append(b, ',')
			}
			b = AppendJSONString(b, sv)
		}
		b = append(b, ']')
	}
	b = append(b, `,"revision":`...)
	b = strconv.AppendInt(b, int64(r.Revision), 10)
	b = append(b, `,"config_hash":`...)
	b = AppendJSONString(b, r.ConfigHash)
	b = append(b, `,"language":`...)
	b = AppendJSONString(b, r.Language)
	for _, f := range [...]struct{ name, v string }{{"url", r.URL}, {"user_agent", r.UserAgent}, {"ip", r.IP}} {
		if f.v != "" {
			b = append(b, `,"`...)
			b = append(b, f.name...)
			b = append(b, `":`...)
			b = AppendJSONString(b, f.v)
		}
	}
	b = append(b, `,"gpc":`...)
	b = strconv.AppendBool(b, r.GPC)
	v2 := consent.EncodingOf(r) == consent.EncodingV2
	if v2 {
		b = append(b, `,"gpc_header":`...)
		b = strconv.AppendBool(b, r.GPCHeader)
		if r.ADPC != "" {
			b = append(b, `,"adpc":`...)
			b = AppendJSONString(b, r.ADPC)
		}
		b = append(b, `,"signal":`...)
		b = AppendJSONString(b, r.Signal)
	}
	b = append(b, `,"prev_hash":"`...)
	b = hex.AppendEncode(b, r.PrevHash)
	b = append(b, `","hash":"`...)
	b = hex.AppendEncode(b, r.Hash)
	b = append(b, '"')
	if v2 {
		b = append(b, `,"encoding":"`+consent.RecordEncodingV2+`"`...)
	}
	if r.LogIndex != nil {
		b = append(b, `,"log_index":`...)
		b = strconv.AppendInt(b, *r.LogIndex, 10)
	}
	if len(r.LogSalt) > 0 {
		b = append(b, `,"log_salt":"`...)
		b = hex.AppendEncode(b, r.LogSalt)
		b = append(b, '"')
	}
	b = append(b, "}\n"...)
	e.buf = b
	_, err := e.w.Write(b)
	return err
}

// AppendUUID writes u in its canonical form without allocating.
func AppendUUID(b []byte, u uuid.UUID) []byte {
	var s [36]byte
	hex.Encode(s[0:8], u[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], u[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], u[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], u[8:10])
	s[23] = '-'
	hex.Encode(s[24:], u[10:])
	return append(b, s[:]...)
}

// AppendJSONString quotes s as encoding/json does (HTML-safe escapes,
// invalid UTF-8 replaced), with a fast path for plain ASCII.
func AppendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
func (e *ndjsonExporter) Close() error { return e.w.Flush() }

// End writes the summary as the last line, {"koekje_export":{…}}, and
// flushes.
func (e *ndjsonExporter) End(s *Summary) error {
	e.fill(s)
	b, err := json.Marshal(struct {
		S *Summary `json:"koekje_export"`
	}{s})
	if err != nil {
		return err
	}
	if _, err := e.w.Write(append(b, '\n')); err != nil {
		return err
	}
	return e.w.Flush()
}
func (e *ndjsonExporter) ContentType() string { return "application/x-ndjson" }
func (e *ndjsonExporter) Extension() string   { return "ndjson" }

// isoExporter writes a JSON array of consent records shaped after ISO/IEC
// TS 27560 (consent record information structure).
type isoExporter struct {
	w     *bufio.Writer
	enc   *json.Encoder
	site  *config.Site
	count int
}

// ISORecord is one consent record in the ISO/IEC TS 27560 structure.
type ISORecord struct {
	SchemaVersion    string          `json:"schema_version"`
	RecordID         string          `json:"record_id"`
	PiiPrincipalID   string          `json:"pii_principal_id"`
	ConsentStatus    string          `json:"consent_status"`
	Timestamp        string          `json:"timestamp"`
	CollectionMethod string          `json:"collection_method"`
	Event            string          `json:"event"`
	Notice           ISONotice       `json:"notice"`
	Controllers      []ISOController `json:"pii_controllers"`
	Purposes         []ISOPurpose    `json:"purposes"`
	Context          ISOContext      `json:"context"`
	Integrity        ISOIntegrity    `json:"integrity"`
}

// ISONotice identifies exactly what the visitor was shown.
type ISONotice struct {
	NoticeID string `json:"notice_id"` // the banner version's hash
	Version  int    `json:"version"`   // the policy revision
	Language string `json:"language"`
	URL      string `json:"url"`
}

// ISOController is the controller of the processing.
type ISOController struct {
	Name    string `json:"name"`
	Address string `json:"address,omitempty"`
	Contact string `json:"contact"`
	Policy  string `json:"privacy_notice_url"`
}

// ISOPurpose is one purpose of the record and the visitor's decision on it:
// a category, or a service the visitor granted on its own (Service set).
type ISOPurpose struct {
	PurposeID   string `json:"purpose_id"`
	Service     string `json:"service,omitempty"`
	Purpose     string `json:"purpose"`
	LawfulBasis string `json:"lawful_basis"`
	// ConsentStatus is empty when the lawful basis is not consent: a
	// strictly necessary category asks for no consent, so it has no
	// consent state to report.
	ConsentStatus string       `json:"consent_status,omitempty"`
	Duration      *ISODuration `json:"duration,omitempty"`
}

// ISODuration bounds a given consent, as DPV's dpv:hasDuration does.
type ISODuration struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

// Consent states of a record and of its purposes: W3C DPV's consent status
// concepts, which DPV's guide to ISO/IEC TS 27560 (w3id.org/dpv/guides/
// consent-27560, "Consent State") uses for TS 27560's event state. Only
// given is valid for processing.
const (
	StatusGiven     = "given"     // dpv:ConsentGiven
	StatusRefused   = "refused"   // dpv:ConsentRefused
	StatusWithdrawn = "withdrawn" // dpv:ConsentWithdrawn
)

// Lawful bases of a purpose. A strictly necessary category needs no consent
// (ePrivacy Directive art. 5(3)); DPV has no concept for that exemption, so
// it is named in words.
const (
	BasisConsent           = "consent" // dpv:Consent
	BasisStrictlyNecessary = "strictly necessary (ePrivacy Directive art. 5(3))"
)

// ISOContext is where the choice was made.
type ISOContext struct {
	Site      string   `json:"site"`
	PageURL   string   `json:"page_url,omitempty"`
	UserAgent string   `json:"user_agent,omitempty"`
	Network   string   `json:"network,omitempty"`
	GPC       bool     `json:"gpc"`
	GPCHeader bool     `json:"gpc_header,omitempty"`
	ADPC      string   `json:"adpc,omitempty"`
	Signal    string   `json:"signal,omitempty"`
	Services  []string `json:"granted_services,omitempty"`
}

// ISOIntegrity places the record in the hash chain.
type ISOIntegrity struct {
	Algorithm string `json:"algorithm"`
	Encoding  string `json:"encoding"`
	Sequence  int64  `json:"sequence"`
	Hash      string `json:"hash"`
	PrevHash  string `json:"prev_hash"`
}

// NewISORecord shapes r after ISO/IEC TS 27560, with the consent states of
// W3C DPV. Each optional category of r is a purpose whose state follows r's
// choice: given when granted, withdrawn in a withdrawal, refused otherwise.
// The categories of site that r has no choice for (added after r was made)
// are left out, as r's visitor was never asked about them. A service granted
// on its own is a purpose of its own, given (unless its category is strictly
// necessary); in a load_once record it is given for one use, DPV's duration
// for a one-off consent. The record's status is given when it grants at
// least one optional purpose, else withdrawn for a withdrawal, else refused.
func NewISORecord(r *consent.Record, site *config.Site) *ISORecord {
	c := site.Controller
	out := &ISORecord{
		SchemaVersion: "ISO/IEC TS 27560:2023", RecordID: r.RecordID.String(), PiiPrincipalID: r.ConsentID.String(),
		Timestamp:        r.RecordedAt.Format(time.RFC3339Nano),
		CollectionMethod: consent.CollectionMethod(r), Event: r.Action,
		Notice:      ISONotice{NoticeID: r.ConfigHash, Version: r.Revision, Language: r.Language, URL: c.PrivacyPolicy},
		Controllers: []ISOController{{Name: c.Organisation, Address: c.Address, Contact: c.Email, Policy: c.PrivacyPolicy}},
		Context: ISOContext{Site: r.Site, PageURL: r.URL, UserAgent: r.UserAgent, Network: r.IP, GPC: r.GPC,
			GPCHeader: r.GPCHeader, ADPC: r.ADPC, Signal: r.Signal, Services: r.Services},
		Integrity: ISOIntegrity{Algorithm: "SHA-256", Encoding: consent.EncodingName(r), Sequence: r.Seq,
			Hash: hex.EncodeToString(r.Hash), PrevHash: hex.EncodeToString(r.PrevHash)},
	}
	notGiven := StatusRefused
	if r.Action == consent.Withdraw {
		notGiven = StatusWithdrawn
	}
	given := false
	for _, cat := range site.Categories {
		granted, asked := r.Choices[cat.ID]
		if !asked {
			continue
		}
		p := ISOPurpose{PurposeID: cat.ID, Purpose: cat.Title[site.DefaultLanguage], LawfulBasis: BasisConsent, ConsentStatus: notGiven}
		switch {
		case cat.Required:
			p.LawfulBasis, p.ConsentStatus = BasisStrictlyNecessary, ""
		case granted:
			p.ConsentStatus, given = StatusGiven, true
		}
		out.Purposes = append(out.Purposes, p)
	}
	for _, id := range r.Services {
		p := ISOPurpose{Service: id, LawfulBasis: BasisConsent, ConsentStatus: StatusGiven}
		var cat *config.Category
		for _, sv := range site.Services {
			if sv != nil && sv.ID == id {
				p.PurposeID, cat = sv.Category, site.Category(sv.Category)
			}
		}
		switch {
		case cat != nil && cat.Required:
			p.LawfulBasis, p.ConsentStatus = BasisStrictlyNecessary, ""
		case r.Action == consent.LoadOnce:
			p.Duration = &ISODuration{Type: "dpv:FixedOccurrencesDuration", Value: "1"}
			given = true
		default:
			given = true
		}
		if cat != nil {
			p.Purpose = cat.Title[site.DefaultLanguage]
		}
		out.Purposes = append(out.Purposes, p)
	}
	out.ConsentStatus = notGiven
	if given {
		out.ConsentStatus = StatusGiven
	}
	return out
}

func (e *isoExporter) Write(r *consent.Record) error {
	sep := ",\n"
	if e.count == 0 {
		sep = "[\n"
	}
	e.count++
	if _, err := e.w.WriteString(sep); err != nil {
		return err
	}
	return e.enc.Encode(NewISORecord(r, e.site))
}

// End ends the array: ISO/IEC TS 27560 has no place for a summary.
func (e *isoExporter) End(*Summary) error { return e.Close() }

func (e *isoExporter) Close() error {
	end := "]\n"
	if e.count == 0 {
		end = "[]\n"
	}
	if _, err := e.w.WriteString(end); err != nil {
		return err
	}
	return e.w.Flush()
}
func (e *isoExporter) ContentType() string { return "application/json" }
func (e *isoExporter) Extension() string   { return "json" }
