package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/koekje/koekje/config"
	"github.com/koekje/koekje/server"
	"github.com/koekje/koekje/server/consent"
	"github.com/koekje/koekje/server/proof"
	"github.com/koekje/koekje/server/scan"
	"github.com/koekje/koekje/server/scan/chromium/chromiumtest"
	"github.com/koekje/koekje/server/sqlite"
)

func TestScanFlags(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"scan"}, "give at least one URL"},
		{[]string{"scan", "http://x.test/", "--format", "xml"}, `--format "xml"`},
		{[]string{"scan", "http://x.test/", "--site", "nope"}, `no site "nope" in the config (it has demo)`},
		{[]string{"scan", "ftp://x.test/"}, "is not an http(s) URL"},
		{[]string{"scan", "http://x.test/", "--record", "--db", filepath.Join(t.TempDir(), "none.db")}, "none.db does not exist"},
		{[]string{"scan", "http://x.test/", "--page-timeout", "0s"}, "must be more than 0"},
	} {
		_, err := runCLI(t, map[string]string{"CHROME_PATH": os.Args[0]}, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.args, err, tc.want)
		}
	}
	if _, err := runCLI(t, nil, "scan", "-h"); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("scan -h: %v", err)
	}
}

func needChrome(t *testing.T) { chromiumtest.Need(t) }

// A site that is down fails the scan: every report says it is
// inconclusive, none says clean, and the recorded scan is not clean in the
// console either.
func TestScanSiteDown(t *testing.T) {
	t.Parallel()
	needChrome(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + l.Addr().String() + "/"
	l.Close()
	dbPath := filepath.Join(t.TempDir(), "k.db")
	db, err := sqlite.Open(dbPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	out := t.TempDir()
	stdout, err := runCLI(t, nil, "scan", down, "--pages", "1", "--format", "junit", "--out", out, "--record", "--db", dbPath)
	if !errors.Is(err, ErrInconclusive) {
		t.Fatalf("scan: %v, want it inconclusive (exit code 2)\n%s", err, stdout)
	}
	// A case per profile (the first page, or the choice on it) and one for
	// the scan that scanned nothing.
	if !strings.Contains(stdout, `errors="6"`) || !strings.Contains(stdout, "ERR_CONNECTION_REFUSED") || !strings.Contains(stdout, "koekje scan: inconclusive") {
		t.Errorf("junit on stdout, and a word on stderr:\n%s", stdout)
	}
	text, err := os.ReadFile(filepath.Join(out, "report.txt"))
	if err != nil || !strings.Contains(string(text), "INCONCLUSIVE") || strings.Contains(strings.ToLower(string(text)), "clean") {
		t.Errorf("report.txt: %v\n%s", err, text)
	}
	js, err := os.ReadFile(filepath.Join(out, "report.json"))
	if err != nil || !strings.Contains(string(js), `"verdict": "inconclusive"`) {
		t.Errorf("report.json: %v\n%s", err, js)
	}
	scans, err := db.Scans(context.Background(), "demo", uuid.Nil, 10)
	if err != nil || len(scans) != 1 || scans[0].Clean() {
		t.Errorf("recorded scans %+v, %v; want one, not clean", scans, err)
	}
}

// A report too large for the store is recorded without its profiles'
// details, and says so; one too large even then is not recorded, loudly.
func TestRecordLargeScan(t *testing.T) {
	t.Parallel()
	db, err := sqlite.Open(filepath.Join(t.TempDir(), "k.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	name := strings.Repeat("n", 250)
	report := func(cookies, violations int) *scan.Report {
		r := &scan.Report{Site: "demo", Started: time.Now().UTC().Truncate(time.Second), Pages: []string{"http://x.test/"},
			Violations: []scan.Finding{}, Undeclared: []scan.Finding{}, Stale: []scan.Finding{}}
		for i, n := range []string{scan.Before, scan.Rejected, scan.Accepted} {
			p := &scan.Profile{Name: n, Pages: r.Pages}
			for j := range cookies {
				p.Cookies = append(p.Cookies, scan.Cookie{Name: fmt.Sprint(name, j), Domain: "x.test", Page: "http://x.test/"})
			}
			r.Profiles[i] = p
		}
		for j := range violations {
			r.Violations = append(r.Violations, scan.Finding{Kind: scan.KindCookie, Profile: scan.Before, Name: fmt.Sprint(name, j), Message: name})
		}
		return r
	}
	var stderr bytes.Buffer
	sc, err := recordScan(context.Background(), db, report(20000, 10), false, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	var back scan.Report
	if err := json.Unmarshal(sc.Report, &back); err != nil {
		t.Fatal(err)
	}
	if len(sc.Report) > consent.MaxScanReport || back.Omitted == "" || len(back.Profiles[0].Cookies) != 0 ||
		len(back.Violations) != 10 || sc.Violations != 10 || !strings.Contains(stderr.String(), "recorded without the profiles' cookies") {
		t.Errorf("recorded %d bytes, omitted %q, %d cookies, %d violations; stderr %q", len(sc.Report), back.Omitted,
			len(back.Profiles[0].Cookies), len(back.Violations), stderr.String())
	}
	if _, err := recordScan(context.Background(), db, report(0, 40000), false, io.Discard); err == nil || !strings.Contains(err.Error(), "nothing was recorded") {
		t.Errorf("a report too large even without details: %v", err)
	}
	if scans, err := db.Scans(context.Background(), "demo", uuid.Nil, 10); err != nil || len(scans) != 1 {
		t.Errorf("recorded scans: %d, %v; want one", len(scans), err)
	}
}

// A page whose inline script sets _ga before any choice fails the scan,
// --out holds the report in every format, and --record stores it in the
// database the server runs on.
func TestScanFailsOnViolation(t *testing.T) {
	t.Parallel()
	needChrome(t)
	dbPath := filepath.Join(t.TempDir(), "k.db")
	db, err := sqlite.Open(dbPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	keys, err := proof.OpenKeys(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	ks := httptest.NewUnstartedServer(nil)
	srv, err := server.New(context.Background(), server.Deps{Config: config.Demo(), Store: db, Keys: keys,
		TokenKey: bytes.Repeat([]byte{1}, 64), AdminToken: "scan-cli-admin-token-0123456789", PublicURL: "http://" + ks.Listener.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	ks.Config.Handler = srv
	ks.Start()
	defer ks.Close()
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><html lang="en"><script src="%s/s/demo.js"></script>
<script>document.cookie = '_ga=GA1.1.1.1; max-age=63072000; path=/'</script><h1>Hi</h1>`, ks.URL)
	}))
	defer site.Close()

	out := t.TempDir()
	stdout, err := runCLI(t, nil, "scan", site.URL+"/", "--pages", "1", "--format", "json", "--out", out, "--record", "--db", dbPath)
	if !errors.Is(err, ErrFailed) || errors.Is(err, ErrInconclusive) {
		t.Fatalf("scan: %v, want a failure (exit code 1)\n%s", err, stdout)
	}
	if !regexp.MustCompile(`koekje scan: \d+ page visits in 5 profiles, (\d+m)?[0-9.]+m?s: fail\n`).MatchString(stdout) {
		t.Errorf("no count of the visits at the end:\n%s", stdout)
	}
	report, recorded, ok := strings.Cut(stdout, "recorded scan ")
	if !ok {
		t.Fatalf("no word of the recorded scan:\n%s", stdout)
	}
	var r scan.Report
	if err := json.Unmarshal([]byte(report), &r); err != nil {
		t.Fatalf("json on stdout: %v\n%s", err, stdout)
	}
	if r.ConfigHash != srv.Bundle("demo").Hash {
		t.Errorf("report held against %q, want the served banner %s", r.ConfigHash, srv.Bundle("demo").Hash)
	}
	scans, err := db.Scans(context.Background(), "demo", uuid.Nil, 10)
	if err != nil || len(scans) != 1 {
		t.Fatalf("recorded scans: %v, %v; want one", scans, err)
	}
	sc := scans[0]
	if !strings.HasPrefix(recorded, sc.ID.String()+" of site demo in "+dbPath) || sc.Violations != 4 || sc.Clean() ||
		sc.ConfigHash != r.ConfigHash || !sc.StartedAt.Equal(r.Started) || strings.Join(sc.URLs, " ") != site.URL+"/" {
		t.Errorf("recorded scan %+v (%q), want the report's", sc, recorded)
	}
	full, err := db.ScanReport(context.Background(), "demo", sc.ID)
	if err != nil || string(full.Report) != report {
		t.Errorf("stored report differs from the one written: %v\n%s", err, full.Report)
	}
	// The scan answered the banner's consent POSTs itself: no choice was recorded.
	n := 0
	if err := db.Scan(context.Background(), consent.Filter{Site: "demo"}, func(*consent.Record) error { n++; return nil }); err != nil || n != 0 {
		t.Errorf("records after the scan: %d, %v", n, err)
	}
	var got []string
	for _, f := range r.Violations {
		got = append(got, f.Name+" "+f.Profile)
	}
	if want := []string{"_ga before", "_ga rejected", "_ga withdrawn", "_ga gpc"}; !slices.Equal(got, want) {
		t.Errorf("violations: %q, want %q", got, want)
	}
	text, err := os.ReadFile(filepath.Join(out, "report.txt"))
	if err != nil || !strings.Contains(string(text), "4 violations") {
		t.Errorf("report.txt: %v\n%s", err, text)
	}
	for _, name := range []string{"report.json", "report.xml"} {
		if fi, err := os.Stat(filepath.Join(out, name)); err != nil || fi.Size() == 0 {
			t.Errorf("%s: %v", name, err)
		}
	}
}
