package translog_test

import (
	"bytes"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/koekje/koekje/server/translog"
)

// successorFixture is the statement of a successor of a log of n leaves
// that carries k of them.
func successorFixture(t testing.TB, k, n int64) (*translog.Successor, *translog.Signer) {
	t.Helper()
	old, err := translog.NewSigner("consent.example.nl/log", bytes.Repeat([]byte{1}, 32))
	if err != nil {
		t.Fatal(err)
	}
	root := tlog.Hash{7}
	signed, err := old.Sign(n, root)
	if err != nil {
		t.Fatal(err)
	}
	return &translog.Successor{
		Origin:         translog.SuccessorOrigin(old.Origin(), "", nil),
		Predecessor:    translog.Checkpoint{Origin: old.Origin(), Size: n, Hash: root},
		PredecessorKey: old.VerifierKey(),
		Signed:         signed,
		Carried:        k,
	}, old
}

// A successor statement reads back as it was made, says its gap in words
// and numbers, is a leaf of its own kind, and is held to the earlier keys
// it is checked against; a statement whose numbers and words disagree, or
// whose old checkpoint is not signed by the key it names, is refused.
func TestSuccessor(t *testing.T) {
	s, old := successorFixture(t, 19, 37)
	if s.Origin != "consent.example.nl/log/2" {
		t.Fatalf("successor name %q", s.Origin)
	}
	entry, err := s.Encode()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"\x04koekje-successor-v1\nlog consent.example.nl/log/2\npredecessor consent.example.nl/log\n", "carried 19\nlost 19 36\n\n",
		"It does not hold leaves 19 to 36", "\n\nconsent.example.nl/log\n37\n"} {
		if !strings.Contains(string(entry), want) {
			t.Errorf("the statement lacks %q:\n%s", want, entry)
		}
	}
	back, err := translog.ParseSuccessor(entry)
	if err != nil || back.Origin != s.Origin || back.Predecessor != s.Predecessor || back.Carried != 19 {
		t.Fatalf("read back: %v %+v", err, back)
	}
	if from, to := back.Lost(); from != 19 || to != 37 {
		t.Errorf("lost [%d, %d), want [19, 37)", from, to)
	}
	if l, err := translog.ParseLeaf(entry); err != nil || l.Kind != translog.KindSuccessor {
		t.Errorf("as a leaf: %v %v", err, l.Kind)
	}
	if err := back.Open([]string{old.VerifierKey()}); err != nil {
		t.Errorf("under the old log's key: %v", err)
	}
	other, _ := translog.NewSigner("consent.example.nl/log", bytes.Repeat([]byte{2}, 32))
	if err := back.Open([]string{other.VerifierKey()}); err == nil {
		t.Error("held to another key of the same name")
	}

	whole, _ := successorFixture(t, 37, 37)
	e, _ := whole.Encode()
	if !strings.Contains(string(e), "lost none\n") || !strings.Contains(whole.Gap(), "holds all its 37 leaves (0 to 36)") {
		t.Errorf("a successor with no gap:\n%s", e)
	}

	for name, change := range map[string]func(string) string{
		"numbers": func(e string) string { return strings.Replace(e, "lost 19 36", "lost 19 35", 1) },
		"words":   func(e string) string { return strings.Replace(e, "It does not hold", "It holds", 1) },
		"carried": func(e string) string {
			return strings.Replace(e, "carried 19\nlost 19 36", "carried 38\nlost 38 37", 1)
		},
		"signature": func(e string) string { return strings.Replace(e, "\n37\n", "\n36\n", 1) },
		"key":       func(e string) string { return strings.Replace(e, s.PredecessorKey, other.VerifierKey(), 1) },
		"same name": func(e string) string {
			return strings.Replace(e, "log consent.example.nl/log/2\n", "log consent.example.nl/log\n", 1)
		},
		"kind": func(e string) string { return "\x03" + e[1:] },
	} {
		if _, err := translog.ParseSuccessor([]byte(change(string(entry)))); err == nil {
			t.Errorf("a statement with its %s changed reads", name)
		}
	}
}

// A successor is named after the new public URL's log when that is new,
// else with the next generation of its base name; a successor's name is
// the same log as its base for serve's check of the public URL.
func TestSuccessorOrigin(t *testing.T) {
	for _, c := range []struct {
		old, want string
		used      []string
		is        string
	}{
		{"a.example/log", "", nil, "a.example/log/2"},
		{"a.example/log", "a.example/log", nil, "a.example/log/2"},
		{"a.example/log", "b.example/log", nil, "b.example/log"},
		{"a.example/log/2", "", []string{"a.example/log"}, "a.example/log/3"},
		{"b.example/log", "a.example/log", []string{"a.example/log"}, "a.example/log/2"},
		{"a.example/log/2", "a.example/log", []string{"a.example/log"}, "a.example/log/3"},
	} {
		if got := translog.SuccessorOrigin(c.old, c.want, c.used); got != c.is {
			t.Errorf("SuccessorOrigin(%q, %q, %q) = %q, want %q", c.old, c.want, c.used, got, c.is)
		}
	}
	for named, same := range map[string]bool{"a.example/log": true, "a.example/log/2": true, "a.example/log/12": true,
		"a.example/log/1": false, "a.example/log/02": false, "a.example/logs/2": false, "b.example/log": false} {
		if translog.SameLog(named, "a.example/log") != same {
			t.Errorf("SameLog(%q, a.example/log) = %v", named, !same)
		}
	}
}

func FuzzParseSuccessor(f *testing.F) {
	for _, kn := range [][2]int64{{19, 37}, {7, 7}, {0, 3}} {
		s, _ := successorFixture(f, kn[0], kn[1])
		e, _ := s.Encode()
		f.Add(e)
	}
	f.Add([]byte("\x04koekje-successor-v1\n\n\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := translog.ParseSuccessor(b)
		if err != nil {
			return
		}
		again, err := s.Encode()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("%q: does not encode back: %v", b, err)
		}
		if s.Carried > s.Predecessor.Size || s.Origin == s.Predecessor.Origin {
			t.Fatalf("%q: reads with %d carried of %d, %q after %q", b, s.Carried, s.Predecessor.Size, s.Origin, s.Predecessor.Origin)
		}
	})
}
