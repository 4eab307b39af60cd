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
	ConfigHash string   `json:"config_hash"`
	Violations int      `json:"violations"`
	Undeclared int      `json:"undeclared"`
	Stale      int      `json:"stale"`
	URLs       []string `json:"urls"` // the pages scanned
	// Report is the full JSON report (koekje scan --format json); listings
	// leave it out.
	Report json.RawMessage `json:"-"`
}

// Clean reports whether the scan found no violations: undeclared and stale
// cookies are warnings.
func (s *Scan) Clean() bool { return s.Violations == 0 }

// Validate checks what a store needs of a scan before it stores it.
func (s *Scan) Validate() error {
	switch {
	case s.Site == "":
		return FieldErrorf(EINVALID, "site", "required")
	case s.StartedAt.IsZero():
		return FieldErrorf(EINVALID, "started_at", "required")
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
