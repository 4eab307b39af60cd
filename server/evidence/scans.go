package evidence

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/koekje/koekje/server/consent"
	"github.com/koekje/koekje/server/proof"
	"github.com/koekje/koekje/server/translog"
)

// A pack holds the site's recorded scans (koekje scan --record) of the
// complaint's period: the whole UTC days from the visitor's first record to
// their last. A scan shows what the site's pages did when they were
// scanned, beside what the visitor chose; the days around the choices are
// what a regulator asks about, and whole days take in a daily scan however
// the visitor's choices fell in the day.

// ScanPeriod is the complaint's period of records (in chain order): from
// the start of the first record's UTC day to the end of the last's.
func ScanPeriod(records []*consent.Record) (from, to time.Time) {
	if len(records) == 0 {
		return from, to
	}
	from = records[0].RecordedAt.UTC().Truncate(24 * time.Hour)
	to = records[len(records)-1].RecordedAt.UTC().Truncate(24 * time.Hour).Add(24 * time.Hour)
	return from, to
}

// scanTime writes a scan's times as its statement holds them: UTC, to the
// microsecond.
const scanTime = "2006-01-02T15:04:05.000000Z"

// ScanFile is scans/NAME.scan.json: what a recorded scan found, and the
// fields its log entry's statement (proof.ScanStatement) is made of.
type ScanFile struct {
	Site       string `json:"site"`
	ScanID     string `json:"scan_id"`
	StartedAt  string `json:"started_at"`
	RecordedAt string `json:"recorded_at"`
	// ConfigHash is the banner version the pages were held against.
	ConfigHash string `json:"config_hash"`
	Verdict    string `json:"verdict"`
	// Schedule is the schedule that ran the scan ("daily", …), "" for a
	// scan run by hand.
	Schedule   string   `json:"schedule,omitempty"`
	Violations int      `json:"violations"`
	Undeclared int      `json:"undeclared"`
	Stale      int      `json:"stale"`
	URLs       []string `json:"urls"`
	// ReportSHA256 is the hash of NAME.report.json, and Statement what the
	// log entry commits to, both hex.
	ReportSHA256 string `json:"report_sha256"`
	Statement    string `json:"statement"`
	LogEntry     *int64 `json:"log_entry"` // null: the scan has no entry in the log
}

// scanFile names a scan's files: its recording time first, so that they
// sort in time order.
func scanFile(s *consent.Scan, ext string) string {
	return "scans/" + s.RecordedAt.UTC().Format("20060102T150405Z") + "-" + s.ID.String() + "." + ext
}

func newScanFile(s *consent.Scan) ([]byte, error) {
	rh := sha256.Sum256(s.Report)
	f := ScanFile{Site: s.Site, ScanID: s.ID.String(), StartedAt: s.StartedAt.UTC().Format(scanTime),
		RecordedAt: s.RecordedAt.UTC().Format(scanTime), ConfigHash: s.ConfigHash, Verdict: s.Verdict, Schedule: s.Schedule,
		Violations: s.Violations, Undeclared: s.Undeclared, Stale: s.Stale, URLs: s.URLs,
		ReportSHA256: hex.EncodeToString(rh[:]), Statement: hex.EncodeToString(proof.ScanStatement(s, s.Report)), LogEntry: s.EntryIndex}
	if f.URLs == nil {
		f.URLs = []string{}
	}
	b, err := json.MarshalIndent(f, "", "  ")
	return append(b, '\n'), err
}

// ScanCheck is what was found of one scan, checked with the pack's files
// alone.
type ScanCheck struct {
	ScanID     string `json:"scan_id"`
	RecordedAt string `json:"recorded_at"`
	Verdict    string `json:"verdict"`
	// Rehashed: the report and the scan's fields make the statement the
	// scan file names.
	Rehashed bool   `json:"rehashed"`
	LogEntry *int64 `json:"log_entry"`
	// InLog: the proof shows the entry committing to that statement in a
	// checkpoint that meets the witness policy.
	InLog bool   `json:"in_log"`
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

// CheckScan checks a scan's files: scan is its .scan.json, report its
// .report.json, and tlogProof its .tlog-proof (nil when it has none),
// checked under policy.
func CheckScan(scan, report, tlogProof []byte, policy *translog.Policy) *ScanCheck {
	sc := &ScanCheck{}
	fail := func(format string, args ...any) *ScanCheck {
		sc.OK, sc.Error = false, fmt.Sprintf(format, args...)
		return sc
	}
	var f ScanFile
	dec := json.NewDecoder(bytes.NewReader(scan))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return fail("the scan file: %v", err)
	}
	sc.ScanID, sc.RecordedAt, sc.Verdict, sc.LogEntry = f.ScanID, f.RecordedAt, f.Verdict, f.LogEntry
	id, err := uuid.Parse(f.ScanID)
	if err != nil {
		return fail("scan_id: %v", err)
	}
	started, err1 := time.Parse(time.RFC3339Nano, f.StartedAt)
	recorded, err2 := time.Parse(time.RFC3339Nano, f.RecordedAt)
	if err1 != nil || err2 != nil {
		return fail("the scan's times are not RFC 3339")
	}
	stmt := proof.ScanStatement(&consent.Scan{ID: id, Site: f.Site, StartedAt: started, RecordedAt: recorded, Verdict: f.Verdict, Schedule: f.Schedule}, report)
	rh := sha256.Sum256(report)
	if hex.EncodeToString(rh[:]) != f.ReportSHA256 {
		return fail("the report does not hash to report_sha256")
	}
	if hex.EncodeToString(stmt) != f.Statement {
		return fail("the scan's fields and report do not make its statement")
	}
	sc.Rehashed = true
	if tlogProof == nil {
		if f.LogEntry != nil {
			return fail("the scan names log entry %d, and the pack has no proof of it", *f.LogEntry)
		}
		sc.OK = true
		return sc
	}
	p, err := translog.ParseProof(tlogProof)
	if err != nil {
		return fail("%v", err)
	}
	if f.LogEntry == nil || *f.LogEntry != p.Index {
		return fail("the proof is for entry %d, not the scan's", p.Index)
	}
	if policy == nil {
		return fail("a proof is checked under the log's witness policy: none was given")
	}
	cp, _, _, err := policy.Open(p.Checkpoint)
	if err != nil {
		return fail("%v", err)
	}
	if p.Index >= cp.Size {
		return fail("entry %d is not in a log of %d", p.Index, cp.Size)
	}
	entry := translog.Leaf{Kind: translog.KindScan, Commitment: translog.KindScan.Commit(p.Salt, stmt), SiteTag: p.SiteTag}.Encode()
	if err := tlog.CheckRecord(p.Path, cp.Size, cp.Hash, p.Index, tlog.RecordHash(entry)); err != nil {
		return fail("the scan is not in the log at %d: %v", p.Index, err)
	}
	sc.InLog, sc.OK = true, true
	return sc
}
