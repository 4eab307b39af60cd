package server_test

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/koekje/koekje/server/consent"
)

// The evidence pack holds the site's scans recorded on the days of the
// visitor's first to last record (UTC), and no others: each with what it
// found, its report as stored and its log entry's proof, which is checked
// here without Koekje's code (the statement encoded from the export
// reference, the inclusion with transparency-dev/merkle). A scan's report
// changed in the database afterwards is caught by the pack's own check.
func TestEvidencePackScans(t *testing.T) {
	t.Parallel()
	s, db, logKey := newLoggedServer(t)
	ctx := context.Background()
	day := time.Date(2026, 11, 3, 0, 0, 0, 0, time.UTC)
	at := func(t time.Time) { db.SetClock(func() time.Time { return t }) }
	scan := func(when time.Time, verdict string, violations int) uuid.UUID {
		t.Helper()
		at(when)
		schedule := ""
		if verdict == consent.ScanClean {
			schedule = "daily"
		}
		sc := &consent.Scan{Site: "demo", StartedAt: when.Add(-time.Minute), ConfigHash: "sha256:" + strings.Repeat("ab", 32),
			Verdict: verdict, Violations: violations, URLs: []string{"https://demo.test/"}, Schedule: schedule,
			Report: []byte(`{"site":"demo","verdict":"` + verdict + `","at":"` + when.Format(time.RFC3339) + `"}`)}
		if err := db.AddScan(ctx, sc); err != nil {
			t.Fatal(err)
		}
		return sc.ID
	}
	scan(day.Add(-time.Second), consent.ScanClean, 0) // the day before: left out
	at(day.Add(9 * time.Hour))
	a := post(t, s, `{"site":"demo","action":"accept_all","language":"nl"}`).json(t)
	id := a["consent_id"].(string)
	inMorning := scan(day.Add(10*time.Hour), consent.ScanFail, 2)
	at(day.Add(11 * time.Hour))
	if r := post(t, s, `{"site":"demo","action":"withdraw","consent_id":"`+id+`","token":"`+a["token"].(string)+`"}`); r.status != 201 {
		t.Fatalf("withdraw: %d %s", r.status, r.body)
	}
	atMidnight := scan(day.Add(24*time.Hour-time.Microsecond), consent.ScanClean, 0)
	scan(day.Add(24*time.Hour), consent.ScanClean, 0) // the next day: left out

	files := evidenceFiles(t, s, id)
	var names []string
	for n := range files {
		if strings.HasPrefix(n, "scans/") {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	want := []string{
		"scans/20261103T100000Z-" + inMorning.String() + ".report.json",
		"scans/20261103T100000Z-" + inMorning.String() + ".scan.json",
		"scans/20261103T100000Z-" + inMorning.String() + ".tlog-proof",
		"scans/20261103T235959Z-" + atMidnight.String() + ".report.json",
		"scans/20261103T235959Z-" + atMidnight.String() + ".scan.json",
		"scans/20261103T235959Z-" + atMidnight.String() + ".tlog-proof",
	}
	if strings.Join(names, "\n") != strings.Join(want, "\n") {
		t.Fatalf("the pack's scans:\n%s\nwant:\n%s", strings.Join(names, "\n"), strings.Join(want, "\n"))
	}
	for i, verdict := range []string{"fail", "clean"} {
		base := strings.TrimSuffix(want[3*i], ".report.json")
		var f struct {
			ScanID       string  `json:"scan_id"`
			StartedAt    string  `json:"started_at"`
			RecordedAt   string  `json:"recorded_at"`
			Verdict      string  `json:"verdict"`
			Schedule     *string `json:"schedule"`
			ReportSHA256 string  `json:"report_sha256"`
			Statement    string  `json:"statement"`
			LogEntry     *uint64 `json:"log_entry"`
		}
		if err := json.Unmarshal(files[base+".scan.json"], &f); err != nil || f.Verdict != verdict || f.LogEntry == nil {
			t.Fatalf("%s.scan.json: %v %s", base, err, files[base+".scan.json"])
		}
		// The statement, encoded as the export reference specifies it.
		sid := uuid.MustParse(f.ScanID)
		started, _ := time.Parse(time.RFC3339Nano, f.StartedAt)
		recorded, _ := time.Parse(time.RFC3339Nano, f.RecordedAt)
		rh := sha256.Sum256(files[base+".report.json"])
		msg := append([]byte("koekje-scan-v1\x00demo\x00"), sid[:]...)
		msg = binary.BigEndian.AppendUint64(msg, uint64(started.UnixMicro()))
		msg = binary.BigEndian.AppendUint64(msg, uint64(recorded.UnixMicro()))
		msg = append(append(msg, verdict...), 0)
		if (f.Schedule != nil) != (verdict == "clean") {
			t.Errorf("%s: schedule %v", base, f.Schedule)
		} else if f.Schedule != nil {
			msg = append(append(msg, *f.Schedule...), 0)
		}
		msg = append(msg, rh[:]...)
		stmt := sha256.Sum256(msg)
		if hex.EncodeToString(stmt[:]) != f.Statement || hex.EncodeToString(rh[:]) != f.ReportSHA256 {
			t.Errorf("%s: the statement is not the report's and fields'", base)
		}
		index, salt, tag, path, note := parseTlogProof(t, files[base+".tlog-proof"])
		size, root := checkNote(t, note, logKey)
		commitment := sha256.Sum256(append(append([]byte("koekje-scan-v1\x00"), salt...), stmt[:]...))
		entry := append(append([]byte{0x03}, commitment[:]...), tag...)
		if index != *f.LogEntry || !bytes.Equal(note, files["checkpoint.txt"]) {
			t.Errorf("%s: entry %d, the scan names %d; or not the pack's checkpoint", base, index, *f.LogEntry)
		}
		if err := proof.VerifyInclusion(rfc6962.DefaultHasher, index, size, rfc6962.DefaultHasher.HashLeaf(entry), path, root); err != nil {
			t.Errorf("%s: %v", base, err)
		}
	}
	v := packVerification(t, files)
	if !v.OK || v.Scans.From != "2026-11-03T00:00:00Z" || v.Scans.To != "2026-11-04T00:00:00Z" || len(v.Scans.Scans) != 2 ||
		!v.Scans.Scans[0].InLog || !v.Scans.Scans[1].InLog {
		t.Errorf("verification.json: %s", files["verification.json"])
	}
	readme := strings.Join(strings.Fields(string(files["README.txt"])), " ")
	for _, w := range []string{"from 2026-11-03 to 2026-11-03 (UTC)", "(number of scans: 2)", "van 2026-11-03 tot en met 2026-11-03 (UTC)",
		"(aantal scans: 2)", "scans/TIME-ID.tlog-proof", `SHA-256("koekje-scan-v1" 0x00 salt statement)`} {
		if !strings.Contains(readme, w) {
			t.Errorf("README.txt lacks %q", w)
		}
	}

	// The morning's report, changed in the database behind the store's back.
	raw, err := sql.Open("sqlite3", "file:"+db.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Exec(`DROP TRIGGER scans_append_only`); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(`UPDATE scans SET report = '{"site":"demo","verdict":"clean"}' WHERE scan_id = ?`, inMorning[:]); err != nil {
		t.Fatal(err)
	}
	v = packVerification(t, evidenceFiles(t, s, id))
	if v.OK || v.Scans.Scans[0].OK || v.Scans.Scans[0].InLog || !strings.Contains(v.Scans.Scans[0].Error, "not in the log") || !v.Scans.Scans[1].OK {
		t.Errorf("a changed report: %+v %+v", v.Scans.Scans[0], v.Scans.Scans[1])
	}
}

// A visitor on a day with no scan: the pack says so, in the site's language
// and English, and holds none.
func TestEvidencePackNoScans(t *testing.T) {
	t.Parallel()
	s, _, _ := newLoggedServer(t)
	id := post(t, s, `{"site":"demo","action":"reject_all"}`).json(t)["consent_id"].(string)
	files := evidenceFiles(t, s, id)
	for n := range files {
		if strings.HasPrefix(n, "scans/") {
			t.Errorf("a scan in the pack: %s", n)
		}
	}
	readme := strings.Join(strings.Fields(string(files["README.txt"])), " ")
	for _, w := range []string{"scans/: the company recorded no scan of the site on the days from", "scans/: het bedrijf heeft op de dagen van"} {
		if !strings.Contains(readme, w) {
			t.Errorf("README.txt lacks %q:\n%s", w, files["README.txt"])
		}
	}
	if v := packVerification(t, files); !v.OK || v.Scans.Scans == nil || len(v.Scans.Scans) != 0 {
		t.Errorf("verification.json: %s", files["verification.json"])
	}
}

func evidenceFiles(t *testing.T, s http.Handler, id string) map[string][]byte {
	t.Helper()
	r := do(t, s, "GET", "/api/v1/sites/demo/consents/"+id+"/evidence", "", "Authorization", "Bearer "+adminToken)
	if r.status != 200 || r.header.Get("Content-Type") != "application/zip" {
		t.Fatalf("evidence: %d %s %s", r.status, r.header.Get("Content-Type"), r.body)
	}
	zr, err := zip.NewReader(bytes.NewReader(r.body), int64(len(r.body)))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		files[f.Name], _ = io.ReadAll(rc)
		rc.Close()
	}
	return files
}

type scanVerification struct {
	OK    bool `json:"ok"`
	Scans struct {
		From  string `json:"from"`
		To    string `json:"to"`
		Scans []struct {
			OK    bool   `json:"ok"`
			InLog bool   `json:"in_log"`
			Error string `json:"error"`
		} `json:"scans"`
	} `json:"scans"`
}

func packVerification(t *testing.T, files map[string][]byte) scanVerification {
	t.Helper()
	var v scanVerification
	if err := json.Unmarshal(files["verification.json"], &v); err != nil {
		t.Fatal(err)
	}
	return v
}
