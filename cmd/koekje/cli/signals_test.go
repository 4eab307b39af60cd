package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/koekje/koekje/server/consent"
	"github.com/koekje/koekje/server/store/storetest"
)

// A record of koekje-record-v2, with the browser's signals, verifies next
// to one of koekje-record-v1 stored before signals were recorded: in the
// server's verify, in NDJSON and CSV exports through verify-export, and in
// a receipt through verify-receipt. A signal edited in an export fails.
func TestSignalsVerifyBesideOldRecords(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	l := newExportLog(t, dir, filepath.Join(dir, "k.db"))
	old := storetest.NewRecord("demo", uuid.Nil)
	old.GPC = true
	old.Action, old.Choices = consent.RejectAll, map[string]bool{"necessary": true, "functional": false, "analytics": false, "embeds": false}
	if err := l.db.Append(context.Background(), old); err != nil {
		t.Fatal(err)
	}
	do := func(method, path, body string, headers ...string) []byte {
		t.Helper()
		req, _ := http.NewRequest(method, l.ts.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+exportTestToken)
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode/100 != 2 {
			t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
		}
		return b
	}
	var made struct {
		ConsentID string `json:"consent_id"`
	}
	json.Unmarshal(do("POST", "/api/v1/consents", `{"site":"demo","action":"reject_all"}`, "Sec-GPC", "1"), &made)

	if b := do("GET", "/api/v1/sites/demo/verify", ""); !bytes.Contains(b, []byte(`"ok":true`)) || !bytes.Contains(b, []byte(`"records":2`)) {
		t.Errorf("the server's verify over both encodings: %s", b)
	}
	nd := l.export("format=ndjson")
	if !bytes.Contains(nd, []byte(`"gpc":true,"prev_hash"`)) || !bytes.Contains(nd, []byte(`"gpc":false,"gpc_header":true,"signal":"gpc-header","prev_hash"`)) ||
		bytes.Count(nd, []byte(`"encoding":"koekje-record-v2"`)) != 1 {
		t.Fatalf("the export does not hold a record of each encoding:\n%s", nd)
	}
	csv := l.export("format=csv")
	if !bytes.Contains(csv, []byte(",true,,,,,")) || !bytes.Contains(csv, []byte(",false,true,,gpc-header,")) {
		t.Fatalf("the CSV does not hold a record of each encoding:\n%s", csv)
	}
	for name, data := range map[string][]byte{"ndjson": nd, "csv": csv} {
		if v, err := l.verify(data); err != nil || !v.OK || v.Records != 2 {
			t.Errorf("%s with both encodings: %v %+v", name, err, v)
		}
	}
	for name, data := range map[string][]byte{
		"the deciding signal":  bytes.Replace(nd, []byte(`"signal":"gpc-header"`), []byte(`"signal":"none"`), 1),
		"the header's reading": bytes.Replace(csv, []byte(",false,true,,gpc-header,"), []byte(",false,false,,gpc-header,"), 1),
		"the encoding dropped": bytes.Replace(nd, []byte(`,"encoding":"koekje-record-v2"`), nil, 1),
	} {
		if v, err := l.verify(data); err != ErrFailed || v.OK {
			t.Errorf("%s edited: %v %+v", name, err, v)
		}
	}

	keys := filepath.Join(dir, "keys.json")
	writeFile(t, keys, do("GET", "/api/v1/keys", ""))
	for _, c := range []struct {
		id, encoding string
	}{{old.ConsentID.String(), ""}, {made.ConsentID, consent.RecordEncodingV2}} {
		raw := do("GET", "/api/v1/consents/"+c.id+"/receipt", "")
		var r struct {
			Claims struct {
				RecordEncoding string `json:"record_encoding"`
				Signal         string `json:"signal"`
			} `json:"claims"`
		}
		json.Unmarshal(raw, &r)
		if r.Claims.RecordEncoding != c.encoding {
			t.Errorf("the receipt of %s claims encoding %q, want %q", c.id, r.Claims.RecordEncoding, c.encoding)
		}
		receipt := filepath.Join(dir, c.id+".json")
		writeFile(t, receipt, raw)
		var out bytes.Buffer
		if err := Run(context.Background(), []string{"verify-receipt", receipt, "--keys", keys}, func(string) string { return "" }, &out, &out); err != nil ||
			!strings.Contains(out.String(), `"record_rehashed": true`) {
			t.Errorf("the receipt of a record of encoding %q: %v\n%s", c.encoding, err, out.String())
		}
	}
}

func writeFile(t *testing.T, name string, b []byte) {
	t.Helper()
	if err := os.WriteFile(name, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
