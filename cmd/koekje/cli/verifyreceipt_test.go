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

	"github.com/koekje/koekje/server/translog"
)

// A receipt and its proof, fetched from a running server, verify offline
// under the log's published policy; a changed receipt, a proof for another
// record or a missing witness do not. A log without witnesses publishes a
// policy that says so, which verify-receipt accepts only when told to.
func TestVerifyReceiptOffline(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	addr := freeAddr(t)
	env := func(k string) string {
		return map[string]string{"KOEKJE_DB": filepath.Join(dir, "k.db"), "KOEKJE_ADMIN_TOKEN": "receipt-test-admin-token-0123456789"}[k]
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, []string{"serve", "--addr", addr}, env, &bytes.Buffer{}, &syncBuffer{}) }()
	defer func() { cancel(); <-done }()
	base := "http://" + addr
	waitHealthy(t, base)
	get := func(path, token string) []byte {
		t.Helper()
		req, _ := http.NewRequest("GET", base+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, b)
		}
		return b
	}
	var ans [2]struct{ ConsentID, Token string }
	for i := range ans {
		resp, err := http.Post(base+"/api/v1/consents", "application/json", strings.NewReader(`{"site":"demo","action":"accept_all"}`))
		if err != nil {
			t.Fatal(err)
		}
		var a struct {
			ConsentID string `json:"consent_id"`
			Token     string `json:"token"`
		}
		json.NewDecoder(resp.Body).Decode(&a)
		resp.Body.Close()
		ans[i].ConsentID, ans[i].Token = a.ConsentID, a.Token
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	receipt := write("receipt.json", get("/api/v1/consents/"+ans[0].ConsentID+"/receipt", ans[0].Token))
	proofFile := write("r.tlog-proof", get("/api/v1/consents/"+ans[0].ConsentID+"/proof", ans[0].Token))
	otherProof := write("o.tlog-proof", get("/api/v1/consents/"+ans[1].ConsentID+"/proof", ans[1].Token))
	keys := write("keys.json", get("/api/v1/keys", ""))
	policy := write("policy", get("/log/policy", ""))
	if !strings.HasSuffix(string(get("/log/policy", "")), "\nquorum none\n") {
		t.Fatalf("the policy of a log without witnesses:\n%s", get("/log/policy", ""))
	}

	check := func(args ...string) (error, string) {
		var out, errs bytes.Buffer
		err := Run(context.Background(), append([]string{"verify-receipt"}, args...), env, &out, &errs)
		return err, out.String() + errs.String()
	}
	if err, out := check(receipt, "--keys", keys, "--proof", proofFile, "--policy", policy, "--allow-unwitnessed"); err != nil || !strings.Contains(out, `"ok": true`) || !strings.Contains(out, `"unwitnessed": true`) {
		t.Fatalf("a good receipt: %v\n%s", err, out)
	}
	if err, out := check(receipt, "--keys", keys, "--proof", proofFile, "--policy", policy); err == nil || !strings.Contains(err.Error(), "--allow-unwitnessed") {
		t.Errorf("a log without witnesses, not allowed: %v\n%s", err, out)
	}
	if err, _ := check(receipt, "--keys", keys, "--proof", proofFile); err == nil {
		t.Error("a proof checked without a policy")
	}
	if err, out := check("--keys", keys, receipt); err != nil {
		t.Fatalf("the signature alone, flags first: %v\n%s", err, out)
	}
	if err, _ := check(receipt, "--keys", keys, "--proof", otherProof, "--policy", policy, "--allow-unwitnessed"); err != ErrFailed {
		t.Errorf("another record's proof: %v", err)
	}
	// A policy that asks for a witness: the proof carries no cosignature.
	logKey := strings.TrimSpace(string(get("/log/key", "")))
	w, _ := translog.NewCosigner("witness.test", bytes.Repeat([]byte{4}, 32))
	withWitness, _ := translog.NewPolicy(logKey, []string{w.VerifierKey()}, 1)
	if err, out := check(receipt, "--keys", keys, "--proof", proofFile, "--policy", write("witnessed", withWitness.Encode())); err != ErrFailed || !strings.Contains(out, "cosigned by 0 witnesses") {
		t.Errorf("an uncosigned proof under a policy that needs a witness: %v\n%s", err, out)
	}
	var r struct{ JWT string }
	raw, _ := os.ReadFile(receipt)
	json.Unmarshal(raw, &r)
	parts := strings.Split(r.JWT, ".")
	forged := write("forged.jwt", []byte(parts[0]+"."+strings.Replace(parts[1], parts[1][10:12], "AA", 1)+"."+parts[2]))
	if err, out := check(forged, "--keys", keys); err != ErrFailed || !strings.Contains(out, "does not verify") {
		t.Errorf("a changed receipt: %v\n%s", err, out)
	}
}
