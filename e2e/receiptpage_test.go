package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/koekje/koekje/config"
	"github.com/koekje/koekje/server"
	"github.com/koekje/koekje/server/proof"
	"github.com/koekje/koekje/server/sqlite"
	"github.com/koekje/koekje/server/translog"
	"github.com/koekje/koekje/server/witness"
)

// The page at /verify checks a receipt in the browser and comes to the same
// answer as `koekje verify-receipt` (proof.CheckReceipt), for a good receipt
// with a witnessed proof and for each kind of bad one.
// witnessedLog is a server whose log one witness cosigns when told.
type witnessedLog struct {
	url      string
	signer   *translog.Signer
	witness  *witness.Witness
	keys     *proof.Keys
	witnessN func() // one witnessing round
}

func newWitnessedLog(t *testing.T) *witnessedLog {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(filepath.Join(t.TempDir(), "k.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	signer, err := db.StartLog(ctx, "koekje.test/log")
	if err != nil {
		t.Fatal(err)
	}
	keys, err := proof.OpenKeys(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	w, err := witness.Open(filepath.Join(t.TempDir(), "w.db"), "witness.test", []string{signer.VerifierKey()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	ws := httptest.NewServer(w.Handler())
	t.Cleanup(ws.Close)
	ts := httptest.NewUnstartedServer(nil)
	logPolicy, err := translog.NewPolicy(signer.VerifierKey(), []string{w.VerifierKey()}, 1)
	if err != nil {
		t.Fatal(err)
	}
	s, err := server.New(ctx, server.Deps{Config: config.Demo(), Store: db, Keys: keys, TokenKey: bytes.Repeat([]byte{5}, 64),
		AdminToken: "receipt-page-admin-token-0123456789", LogKey: signer.VerifierKey(), Policy: logPolicy,
		PublicURL: "http://" + ts.Listener.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = s
	ts.Start()
	t.Cleanup(ts.Close)
	wg := &translog.Witnessing{Store: db, LogKey: signer.VerifierKey(), Policy: 1, Client: http.DefaultClient,
		Witnesses: []*translog.WitnessClient{{URL: ws.URL, Key: w.VerifierKey()}}}
	return &witnessedLog{url: ts.URL, signer: signer, witness: w, keys: keys, witnessN: func() {
		t.Helper()
		if err := wg.Once(ctx); err != nil {
			t.Fatal(err)
		}
	}}
}

func TestReceiptPageAgreesWithCLI(t *testing.T) {
	t.Parallel()
	lg := newWitnessedLog(t)
	signer, w, keys := lg.signer, lg.witness, lg.keys
	fetch := func(method, path, body, token string) []byte {
		t.Helper()
		req, _ := http.NewRequest(method, lg.url+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode >= 300 {
			t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
		}
		return b
	}
	var a [2]struct {
		ConsentID string `json:"consent_id"`
		Token     string `json:"token"`
	}
	for i := range a {
		json.Unmarshal(fetch("POST", "/api/v1/consents", `{"site":"demo","action":"custom","choices":{"analytics":true}}`, ""), &a[i])
	}
	lg.witnessN()
	var receipt struct{ JWT string }
	json.Unmarshal(fetch("GET", "/api/v1/consents/"+a[0].ConsentID+"/receipt", "", a[0].Token), &receipt)
	proofText := fetch("GET", "/api/v1/consents/"+a[0].ConsentID+"/proof", "", a[0].Token)
	otherProof := fetch("GET", "/api/v1/consents/"+a[1].ConsentID+"/proof", "", a[1].Token)
	jwks := fetch("GET", "/api/v1/keys", "", "")
	parts := strings.Split(receipt.JWT, ".")
	forged := parts[0] + "." + parts[1][:20] + strings.ToUpper(parts[1][20:21]) + strings.ToLower(parts[1][20:21]) + parts[1][22:] + "." + parts[2]
	if forged == receipt.JWT {
		forged = parts[0] + "." + parts[1] + "." + parts[2][:10] + "AAAA" + parts[2][14:]
	}

	// Signed by the server's own key, but claiming another action than the
	// record it carries, whose hash it names.
	var claims map[string]any
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	claims["action"] = "accept_all"
	lying, err := keys.Ring().SignJWT(claims)
	if err != nil {
		t.Fatal(err)
	}

	tb := newTab(t)
	tb.do(chromedp.Navigate(lg.url + "/verify"))
	policy := func(k int, witnessKeys ...string) string {
		p, err := translog.NewPolicy(signer.VerifierKey(), witnessKeys, k)
		if err != nil {
			t.Fatal(err)
		}
		return string(p.Encode())
	}
	stranger, _ := translog.NewCosigner("stranger.test", bytes.Repeat([]byte{5}, 32))
	witnessed := policy(1, w.VerifierKey())
	for _, tt := range []struct {
		name   string
		jwt    string
		proof  []byte
		policy string
		ok     bool
	}{
		{"good, witnessed", receipt.JWT, proofText, witnessed, true},
		{"signature alone", receipt.JWT, nil, "", true},
		{"a log without witnesses", receipt.JWT, proofText, policy(0), true},
		{"changed receipt", forged, proofText, witnessed, false},
		{"claims that are not its record", lying, proofText, witnessed, false},
		{"another record's proof", receipt.JWT, otherProof, witnessed, false},
		{"two witnesses asked for", receipt.JWT, proofText, policy(2, w.VerifierKey(), stranger.VerifierKey()), false},
		{"another witness asked for", receipt.JWT, proofText, policy(1, stranger.VerifierKey()), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var pol *translog.Policy
			if tt.policy != "" {
				pol, _ = translog.ParsePolicy([]byte(tt.policy))
			}
			want := proof.CheckReceipt(tt.jwt, jwks, tt.proof, pol)
			fields := map[string]any{"receipt": tt.jwt, "jwks": string(jwks), "proof": string(tt.proof), "policy": tt.policy}
			in, _ := json.Marshal(fields)
			got := eval[string](tb, `(async () => {
				const f = `+string(in)+`
				for (const [k, v] of Object.entries(f)) document.getElementById(k).value = String(v)
				delete document.body.dataset.checked
				document.querySelector('#check button').click()
				while (!document.body.dataset.checked) await new Promise(r => setTimeout(r, 5))
				return document.getElementById('result').textContent })()`)
			var page proof.ReceiptCheck
			if err := json.Unmarshal([]byte(got), &page); err != nil {
				t.Fatalf("the page's result %q: %v", got, err)
			}
			if page.OK != tt.ok || want.OK != tt.ok {
				t.Fatalf("ok: page %v (%s), CLI %v (%s), want %v", page.OK, page.Error, want.OK, want.Error, tt.ok)
			}
			page.Error, want.Error = "", ""
			pj, _ := json.Marshal(page)
			wj, _ := json.Marshal(want)
			if !bytes.Equal(pj, wj) {
				t.Errorf("the page and the CLI differ:\npage %s\ncli  %s", pj, wj)
			}
		})
	}
}

// A visitor who opens /verify from their receipt page finds it in their
// own language, with the receipt, its cosigned proof, and the issuer's keys
// and witness policy filled in, checked at once, and a verdict in plain
// words of what was checked; in Dutch and in German.
func TestVerifyOpenedFromReceiptPage(t *testing.T) {
	t.Parallel()
	lg := newWitnessedLog(t)
	tb := newTab(t)
	for _, tt := range []struct {
		lang, title, signature, witnesses string
	}{
		{"nl", "Een toestemmingsbewijs controleren", "De handtekening van het bewijs klopt met de sleutel", "Getuigen uit het beleid van het log ondertekenden dat controlepunt mee: witness.test."},
		{"de", "Einen Einwilligungsnachweis prüfen", "Die Signatur des Nachweises passt zum Schlüssel", "Zeugen aus der Richtlinie des Protokolls haben diesen Prüfpunkt mitsigniert: witness.test."},
	} {
		t.Run(tt.lang, func(t *testing.T) {
			var a struct {
				ConsentID string `json:"consent_id"`
				Token     string `json:"token"`
			}
			resp, err := http.Post(lg.url+"/api/v1/consents", "application/json",
				strings.NewReader(`{"site":"demo","action":"custom","choices":{"analytics":true},"language":"`+tt.lang+`"}`))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
				t.Fatal(err)
			}
			page := lg.url + "/api/v1/consents/" + a.ConsentID + "/receipt?token=" + a.Token
			// Before the witnesses cosigned: the page says it waits.
			tb.do(chromedp.Navigate(page))
			if got := eval[string](tb, `(document.getElementById('waiting') || {}).textContent || ''`); got == "" {
				t.Errorf("the receipt page does not say it waits for the witnesses")
			}
			lg.witnessN()
			tb.do(chromedp.Navigate(page))
			if got := eval[bool](tb, `!!document.querySelector('a[download]') && !document.getElementById('waiting')`); !got {
				t.Fatal("the receipt page does not offer the cosigned proof")
			}
			tb.do(chromedp.Navigate(eval[string](tb, `document.getElementById("check").href`)))
			got := eval[map[string]any](tb, `(async () => {
				while (!document.body.dataset.checked) await new Promise(r => setTimeout(r, 20))
				return { lang: document.documentElement.lang, title: document.querySelector('h1').textContent,
					path: location.pathname, hasProof: document.getElementById('proof').value.startsWith('c2sp.org/tlog-proof@v1'),
					policy: document.getElementById('policy').value, verdict: document.getElementById('verdict').innerText,
					result: JSON.parse(document.getElementById('result').textContent) } })()`)
			if got["lang"] != tt.lang || got["title"] != tt.title || got["path"] != "/verify" {
				t.Errorf("the page: %v %v %v, want %s", got["lang"], got["title"], got["path"], tt.lang)
			}
			if got["hasProof"] != true || !strings.Contains(got["policy"].(string), "witness witness.test "+lg.witness.VerifierKey()) {
				t.Errorf("the proof or the policy is not filled in: %v\n%v", got["hasProof"], got["policy"])
			}
			result := got["result"].(map[string]any)
			verdict := got["verdict"].(string)
			if result["ok"] != true || !strings.Contains(verdict, tt.signature) || !strings.Contains(verdict, tt.witnesses) {
				t.Errorf("the verdict:\n%s\n%v", verdict, result)
			}
		})
	}
}
