package translog_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/koekje/koekje/server/translog"
)

// policyFixture is a log and three witnesses.
type policyFixture struct {
	log       *translog.Signer
	witnesses []*translog.Cosigner
}

func newPolicyFixture(t *testing.T) *policyFixture {
	t.Helper()
	f := &policyFixture{}
	f.log, _ = translog.NewSigner("koekje.test/log", bytes.Repeat([]byte{1}, 32))
	for i, name := range []string{"w1.test", "w2.test", "w3.test"} {
		c, err := translog.NewCosigner(name, bytes.Repeat([]byte{byte(10 + i)}, 32))
		if err != nil {
			t.Fatal(err)
		}
		f.witnesses = append(f.witnesses, c)
	}
	return f
}

func (f *policyFixture) keys(idx ...int) []string {
	var out []string
	for _, i := range idx {
		out = append(out, f.witnesses[i].VerifierKey())
	}
	return out
}

// cosigned is a checkpoint of size 3 cosigned by the witnesses idx.
func (f *policyFixture) cosigned(idx ...int) []byte {
	signed, _ := f.log.Sign(3, tlog.Hash{1})
	n, _ := note.Open(signed, note.VerifierList(mustVerifier(f.log.VerifierKey())))
	for _, i := range idx {
		signed = append(signed, f.witnesses[i].Cosign(n.Text, time.Unix(1700000000, 0))...)
	}
	return signed
}

func mustVerifier(key string) note.Verifier {
	v, err := note.NewVerifier(key)
	if err != nil {
		panic(err)
	}
	return v
}

// A log's policy reads back as it was written, accepts a checkpoint only
// with its quorum of cosignatures, and gives back the note with only the
// signatures that verified.
func TestPolicy(t *testing.T) {
	f := newPolicyFixture(t)
	p, err := translog.NewPolicy(f.log.VerifierKey(), f.keys(0, 1, 2), 2)
	if err != nil {
		t.Fatal(err)
	}
	again, err := translog.ParsePolicy(p.Encode())
	if err != nil || !bytes.Equal(again.Encode(), p.Encode()) {
		t.Fatalf("read back: %v\n%s\n%s", err, p.Encode(), again.Encode())
	}
	if !strings.Contains(string(p.Encode()), "group witnesses 2 w1.test w2.test w3.test\nquorum witnesses\n") {
		t.Errorf("policy:\n%s", p.Encode())
	}
	if _, _, _, err := p.Open(f.cosigned(0)); err == nil {
		t.Error("one cosignature met a quorum of two")
	}
	withJunk := append(f.cosigned(0, 2), "— someone.else AAAAAQAAAAA=\n"...)
	cp, names, clean, err := p.Open(withJunk)
	if err != nil || cp.Size != 3 || len(names) != 2 {
		t.Fatalf("two cosignatures: %+v %v %v", cp, names, err)
	}
	if bytes.Contains(clean, []byte("someone.else")) || strings.Count(string(clean), "— ") != 3 {
		t.Errorf("the note kept an unverified line:\n%s", clean)
	}
	none, _ := translog.NewPolicy(f.log.VerifierKey(), nil, 0)
	if !none.Unwitnessed() || string(none.Encode()) != "log "+f.log.VerifierKey()+"\nquorum none\n" {
		t.Errorf("a log without witnesses: %v\n%s", none.Unwitnessed(), none.Encode())
	}
	if _, _, _, err := none.Open(f.cosigned()); err != nil {
		t.Errorf("quorum none: %v", err)
	}
	other, _ := translog.NewSigner("other.test/log", bytes.Repeat([]byte{2}, 32))
	signed, _ := other.Sign(3, tlog.Hash{1})
	if _, _, _, err := none.Open(signed); err == nil {
		t.Error("a checkpoint of another log was accepted")
	}
}

// A policy that accepts what an earlier one did not is weaker: fewer
// cosignatures, another witness, no witness at all, another log.
func TestPolicyWeakerThan(t *testing.T) {
	f := newPolicyFixture(t)
	mk := func(k int, idx ...int) *translog.Policy {
		p, err := translog.NewPolicy(f.log.VerifierKey(), f.keys(idx...), k)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	otherLog, _ := translog.NewSigner("other.test/log", bytes.Repeat([]byte{2}, 32))
	otherPolicy, _ := translog.NewPolicy(otherLog.VerifierKey(), nil, 0)
	for _, tt := range []struct {
		name     string
		old, now *translog.Policy
		weaker   bool
	}{
		{"same", mk(2, 0, 1, 2), mk(2, 0, 1, 2), false},
		{"more cosignatures", mk(1, 0, 1), mk(2, 0, 1), false},
		{"fewer cosignatures", mk(2, 0, 1, 2), mk(1, 0, 1, 2), true},
		{"a witness added to the group", mk(2, 0, 1), mk(2, 0, 1, 2), true},
		{"a witness dropped, same threshold", mk(1, 0, 1, 2), mk(1, 0, 1), false},
		{"another witness", mk(1, 0), mk(1, 1), true},
		{"no witnesses", mk(1, 0), mk(0), true},
		{"witnesses where there were none", mk(0), mk(1, 0), false},
		{"another log", mk(0), otherPolicy, true},
	} {
		err := tt.now.WeakerThan(tt.old)
		if (err != nil) != tt.weaker {
			t.Errorf("%s: %v, want weaker %v", tt.name, err, tt.weaker)
		}
	}
}

func FuzzParsePolicy(f *testing.F) {
	fx := &policyFixture{}
	fx.log, _ = translog.NewSigner("koekje.test/log", bytes.Repeat([]byte{1}, 32))
	w, _ := translog.NewCosigner("w1.test", bytes.Repeat([]byte{3}, 32))
	f.Add([]byte("log " + fx.log.VerifierKey() + "\nquorum none\n"))
	f.Add([]byte("# c\nlog " + fx.log.VerifierKey() + " https://x\nwitness a " + w.VerifierKey() + "\ngroup g any a\nquorum g\n"))
	f.Add([]byte("group g 0 a\nquorum g\nquorum g\n\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := translog.ParsePolicy(b)
		if err != nil {
			return
		}
		again, err := translog.ParsePolicy(p.Encode())
		if err != nil || !bytes.Equal(again.Encode(), p.Encode()) {
			t.Fatalf("%q: does not read back: %v", b, err)
		}
		if p.WeakerThan(again) != nil {
			t.Fatalf("%q: weaker than itself", b)
		}
	})
}
