package consent

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"
)

// MaxScanReport bounds a recorded scan report's JSON: a 20-page scan's is
// about 100 KB; this leaves room for big sites and refuses a runaway one.
const MaxScanReport = 16 << 20

// Scan is a recorded report of koekje scan: what a real browser saw a site
// do before any choice, after "reject all" and after "accept all", held
// against the site's configuration. It holds no personal data (the scanner
// is no visitor, and records no choice), so the retention purge keeps it.
// Like a record, it is never changed once stored.
type Scan struct {
	ID         uuid.UUID `json:"id"`          // UUIDv7, minted by the store
	Site       string    `json:"site"`        // the site whose declaration the pages were held against
	StartedAt  time.Time `json:"started_at"`  // when the scan began
	RecordedAt time.Time `json:"recorded_at"` // when it was stored, by the store's clock
	// ConfigHash is the banner version (config_hash of records) the scan
	// held the pages against.
	ConfigHash string `json:"config_hash"`
	// Verdict is ScanClean, ScanFail or ScanInconclusive: not every
	// page could be scanned, so the scan shows nothing clean.
	Verdict    string   `json:"verdict"`
	Violations int      `json:"violations"`
	Undeclared int      `json:"undeclared"`
	Stale      int      `json:"stale"`
	URLs       []string `json:"urls"` // the pages scanned
	// Schedule is the site's schedule (config.ScanSchedule.Every) that
	// ran the scan in koekje serve; empty for a scan koekje scan ran.
	// The report says it too, so the log commits to it.
	Schedule string `json:"schedule,omitempty"`
	// EntryIndex is the scan's entry in the transparency log, a leaf of
	// kind scan committing to proof.ScanStatement under EntrySalt; nil
	// before it is in the log, or without a log.
	EntryIndex *int64 `json:"log_entry,omitempty"`
	EntrySalt  []byte `json:"-"`
	// Report is the full JSON report (koekje scan --format json); listings
	// leave it out.
	Report json.RawMessage `json:"-"`
}

// The verdicts of a scan.
const (
	ScanClean = "clean"
	// ScanFail: violations, or under --strict undeclared or stale cookies.
	ScanFail = "fail"
	// ScanInconclusive: nothing failed, but a page could not be scanned,
	// or not all it did was kept, so the scan does not show the site clean.
	ScanInconclusive = "inconclusive"
)

// Clean reports whether the scan showed the site clean: every page
// scanned and no violation (undeclared and stale cookies are warnings).
func (s *Scan) Clean() bool { return s.Verdict == ScanClean }

// Inconclusive reports whether the scan could not scan every page.
func (s *Scan) Inconclusive() bool { return s.Verdict == ScanInconclusive }

// VerdictSQL is what a stored scan's verdict is read as: scans recorded
// before verdicts were stored have none, and fail with a violation, else
// count as clean, as they were shown then.
const VerdictSQL = `COALESCE(verdict, CASE WHEN violations > 0 THEN 'fail' ELSE 'clean' END)`

// Validate checks what a store needs of a scan before it stores it.
func (s *Scan) Validate() error {
	switch {
	case s.Site == "":
		return FieldErrorf(EINVALID, "site", "required")
	case s.StartedAt.IsZero():
		return FieldErrorf(EINVALID, "started_at", "required")
	case s.Verdict != ScanClean && s.Verdict != ScanFail && s.Verdict != ScanInconclusive:
		return FieldErrorf(EINVALID, "verdict", "want clean, fail or inconclusive")
	case s.Verdict == ScanClean && s.Violations > 0:
		return FieldErrorf(EINVALID, "verdict", "clean with %d violations", s.Violations)
	case s.Violations < 0 || s.Undeclared < 0 || s.Stale < 0:
		return FieldErrorf(EINVALID, "violations", "counts must not be negative")
	case len(s.Report) == 0 || !json.Valid(s.Report):
		return FieldErrorf(EINVALID, "report", "must be a JSON report")
	case len(s.Report) > MaxScanReport:
		return FieldErrorf(EINVALID, "report", "larger than %d bytes", MaxScanReport)
	}
	return nil
}

// MaxScanPage bounds one page of a scan listing.
const MaxScanPage = 500
