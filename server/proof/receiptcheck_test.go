package proof_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/koekje/koekje/config"
	"github.com/koekje/koekje/server/consent"
	"github.com/koekje/koekje/server/proof"
)

// A receipt carries its record's canonical encoding: verify-receipt
// recomputes the record's hash from it and holds the claims against it, so
// a receipt whose claims say other than the record its hash commits to
// fails even with a valid signature: say, a receipt claiming accept_all
// beside the hash of a withdrawal.
func TestReceiptRecordRehashed(t *testing.T) {
	t.Parallel()
	key, err := proof.NewKey(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ring, err := proof.NewKeyring([]consent.SigningKey{key})
	if err != nil {
		t.Fatal(err)
	}
	jwks, _ := json.Marshal(ring.JWKS())
	site := config.Demo().Site("demo")
	r := &consent.Record{RecordID: uuid.Must(uuid.NewV7()), ConsentID: uuid.New(), Site: "demo", Seq: 2,
		RecordedAt: time.Now().UTC().Truncate(time.Microsecond), Action: consent.Withdraw,
		Choices:  map[string]bool{"necessary": true, "functional": false, "analytics": false, "embeds": false},
		Revision: 1, ConfigHash: "sha256:ab", Language: "nl", URL: "https://example.nl/", UserAgent: "ua", IP: "192.0.2.0/24",
		PrevHash: make([]byte, 32)}
	r.Hash = consent.RecordHash(r)
	sign := func(edit func(*proof.Receipt)) string {
		c := proof.NewReceipt(r, site, "https://consent.example.nl", time.Now(), uuid.NewString())
		edit(c)
		jwt, err := ring.SignJWT(c)
		if err != nil {
			t.Fatal(err)
		}
		return jwt
	}
	if rc := proof.CheckReceipt(sign(func(*proof.Receipt) {}), jwks, nil, nil); !rc.OK || !rc.RecordRehashed {
		t.Errorf("an honest receipt: %+v", rc)
	}
	for name, c := range map[string]struct {
		edit func(*proof.Receipt)
		want string
	}{
		"action":      {func(c *proof.Receipt) { c.Action = consent.AcceptAll }, "action is withdraw"},
		"a purpose":   {func(c *proof.Receipt) { c.Services[0].Purposes[2].State = "granted" }, "record says"},
		"record hash": {func(c *proof.Receipt) { c.RecordHash = strings.Repeat("00", 32) }, "does not hash"},
		"time":        {func(c *proof.Receipt) { c.RecordedAt = r.RecordedAt.Add(time.Second).Format(time.RFC3339Nano) }, "made at"},
		"record":      {func(c *proof.Receipt) { c.Record = c.Record[:len(c.Record)-4] }, "record"},
	} {
		if rc := proof.CheckReceipt(sign(c.edit), jwks, nil, nil); rc.OK || !strings.Contains(rc.Error, c.want) {
			t.Errorf("%s changed: %+v, want a failure saying %q", name, rc, c.want)
		}
	}
}
