package cli

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// koekje serve runs a site's scheduled scan itself: at start, the slot
// being unscanned, it scans the configured page in Chromium, records the
// report as the schedule's with its log entry, says so in its log, and
// publishes the verdict in its metrics.
func TestServeRunsTheScheduledScan(t *testing.T) {
	t.Parallel()
	needChrome(t)
	addr := freeAddr(t)
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><html lang="en"><script src="http://%s/s/demo.js"></script>
<script>document.cookie = '_ga=GA1.1.1.1; max-age=63072000; path=/'</script><h1>Hi</h1>`, addr)
	}))
	defer site.Close()
	demo, err := os.ReadFile("../../../config/demo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "sites.yaml")
	cfg := strings.Replace(string(demo), "    # scan:", "    scan:\n      every: daily\n      pages: [\""+site.URL+"/\"]\n      pages_per_profile: 1\n    # scan:", 1)
	if err := os.WriteFile(file, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"KOEKJE_DB": filepath.Join(dir, "k.db"), "KOEKJE_ADMIN_TOKEN": adminToken, "CHROME_PATH": os.Getenv("CHROME_PATH")}
	// Pages get a minute: a busy machine's Chromium may take more than
	// the default 20 s, which would leave the scan inconclusive.
	base, stderr := serveUntilCleanup(t, addr, env, "--config", file, "--scan-page-timeout", "1m")

	var listed struct {
		Scans []struct {
			ID       string `json:"id"`
			Schedule string `json:"schedule"`
			Verdict  string `json:"verdict"`
			LogEntry *int64 `json:"log_entry"`
		} `json:"scans"`
	}
	deadline := time.Now().Add(3 * time.Minute)
	for len(listed.Scans) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no scheduled scan recorded in 3 minutes; the server said:\n%s", stderr.String())
		}
		time.Sleep(500 * time.Millisecond)
		body, status := httpGet(t, base+"/api/v1/sites/demo/scans", adminToken)
		if status != 200 {
			t.Fatalf("scans: %d %s", status, body)
		}
		if err := json.Unmarshal(body, &listed); err != nil {
			t.Fatal(err)
		}
	}
	if sc := listed.Scans[0]; len(listed.Scans) != 1 || sc.Schedule != "daily" || sc.Verdict != "fail" || sc.LogEntry == nil {
		t.Errorf("scans %+v: want one, the schedule's, failed on _ga, in the log", listed.Scans)
	}
	for !strings.Contains(stderr.String(), `"msg":"scheduled scan recorded"`) {
		if time.Now().After(deadline) {
			t.Fatalf("the log does not say the scan was recorded:\n%s", stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	var metrics []byte
	for !strings.Contains(string(metrics), `koekje_scan_latest{site="demo",verdict="fail"} 1`) {
		if time.Now().After(deadline) {
			t.Fatalf("metrics without the scan's verdict:\n%s", metrics)
		}
		time.Sleep(100 * time.Millisecond)
		metrics, _ = httpGet(t, base+"/metrics", adminToken)
	}
	for _, m := range []string{`koekje_scheduled_scans_total{site="demo",verdict="fail"} 1`, `koekje_scan_missing_slots{site="demo"} 0`} {
		if !strings.Contains(string(metrics), m) {
			t.Errorf("metrics without %s", m)
		}
	}
}
