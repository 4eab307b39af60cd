package e2e

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/koekje/koekje/config"
	"github.com/koekje/koekje/server/proof"
	"github.com/koekje/koekje/server/translog"
)

// An evidence pack made under a witnessed log carries the cosigned
// checkpoint and the log's policy, names its witness, and its proofs verify
// under the policy it carries; its banner page, opened in Chromium,
// shows both layers in the visitor's language, loads nothing besides
// itself and passes axe.
func TestEvidencePackInBrowser(t *testing.T) {
	t.Parallel()
	lg := newWitnessedLog(t)
	const token = "receipt-page-admin-token-0123456789"
	resp, err := http.Post(lg.url+"/api/v1/consents", "application/json", strings.NewReader(`{"site":"demo","action":"custom","language":"fr","choices":{"analytics":true}}`))
	if err != nil || resp.StatusCode != 201 {
		t.Fatalf("post: %v %v", err, resp)
	}
	var a struct {
		ConsentID string `json:"consent_id"`
	}
	json.NewDecoder(resp.Body).Decode(&a)
	resp.Body.Close()
	// Before the witnesses cosigned a checkpoint with the record, there is
	// no pack yet: its proofs are made only under the policy.
	req, _ := http.NewRequest("GET", lg.url+"/api/v1/sites/demo/consents/"+a.ConsentID+"/evidence", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("evidence before the witnesses cosigned: %v %v", err, resp)
	} else {
		resp.Body.Close()
	}
	lg.witnessN()

	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	pack, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("evidence: %d %s", resp.StatusCode, pack)
	}
	zr, err := zip.NewReader(bytes.NewReader(pack), int64(len(pack)))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	var page string
	for _, f := range zr.File {
		rc, _ := f.Open()
		files[f.Name], _ = io.ReadAll(rc)
		rc.Close()
		if strings.HasSuffix(f.Name, ".html") {
			page = f.Name
		}
	}
	var v struct {
		OK             bool `json:"ok"`
		CheckedAgainst struct {
			Cosigners   []string `json:"cosigned_by"`
			Unwitnessed bool     `json:"unwitnessed"`
		} `json:"checked_against"`
	}
	json.Unmarshal(files["verification.json"], &v)
	if !v.OK || len(v.CheckedAgainst.Cosigners) != 1 || v.CheckedAgainst.Cosigners[0] != "witness.test" || v.CheckedAgainst.Unwitnessed ||
		bytes.Contains(files["README.txt"], []byte("NO WITNESSES")) ||
		!bytes.Contains(files["checkpoint.txt"], []byte("\n— witness.test ")) {
		t.Fatalf("the pack does not carry the witnessed checkpoint: %s\n%s", files["verification.json"], files["checkpoint.txt"])
	}
	// The proof a verifier checks with the witness's key holds.
	for name, b := range files {
		if strings.HasPrefix(name, "receipts/") {
			tp := files["proofs/"+strings.TrimSuffix(strings.TrimPrefix(name, "receipts/"), ".jwt")+".tlog-proof"]
			pol, err := translog.ParsePolicy(files["policy.txt"])
			if err != nil {
				t.Fatal(err)
			}
			if rc := proof.CheckReceipt(strings.TrimSpace(string(b)), files["keys.json"], tp, pol); !rc.OK || !strings.HasPrefix(strings.TrimSpace(string(files["log-key.txt"])), lg.signer.Origin()) {
				t.Errorf("%s with its witness: %s", name, rc.Error)
			}
		}
	}

	// The banner page, served as a file would be opened.
	hs := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Type", "text/html; charset=utf-8")
		rw.Write(files[page])
	}))
	defer hs.Close()
	tb := newTab(t)
	tb.do(chromedp.Navigate(hs.URL + "/banner.html"))
	fr := config.Demo().Site("demo")
	got := eval[[]string](tb, `[document.documentElement.lang,
		document.querySelector('#first-layer h2').innerText,
		document.querySelector('#settings-layer').innerText,
		String(document.querySelector('#settings-layer').getBoundingClientRect().height > 0)]`)
	if got[0] != "fr" || got[3] != "true" {
		t.Errorf("the page: %q", got)
	}
	for _, c := range fr.Categories {
		if !strings.Contains(got[2], c.Title["fr"]) {
			t.Errorf("the settings layer lacks %q: %s", c.Title["fr"], got[2])
		}
	}
	if reqs := tb.requests("", false); len(reqs) != 1 {
		t.Errorf("the page loaded more than itself: %v", reqs)
	}
	tb.axe("evidence banner page")
}
