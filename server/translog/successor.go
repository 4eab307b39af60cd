package translog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// A successor log takes over from a log that cannot go on under its name:
// a restored backup whose missing leaves no published tiles kept (the old
// log cannot sign on without forking), or a log moved to a new public URL.
// It carries the old log's leaves that the database holds, unchanged and
// at the same indexes (every record keeps its leaf, its proofs and its
// receipts), then its statement, then what waited; it is signed under a
// new name with a new key, and the old name never signs again, so neither
// name ever has two histories.
//
// The statement is the entry itself, public in the tiles as any entry is:
// the byte KindSuccessor, then UTF-8 text (koekje-successor-v1):
//
//	koekje-successor-v1
//	log <the successor's origin>
//	predecessor <the old log's origin>
//	predecessor-key <the old log's verifier key>
//	carried <k>            leaves 0..k-1 of the old log, this entry's index
//	lost <k> <n-1>         the old log's leaves this log does not hold ("lost none")
//	<blank line>
//	<one paragraph in plain words saying the same>
//	<blank line>
//	<the old log's last checkpoint, a signed note of size n>
//
// A verifier checks the note under a key of an earlier name of the log,
// that this entry's index is k, and, when n = k, that the tree of the k
// leaves before it is the old checkpoint's. When n > k the old log's
// leaves k..n-1 are lost: their records went with a restore, and no copy
// of them was published that could be restored.
const successorHeader = "koekje-successor-v1"

// maxEntry is the longest entry tlog-tiles can bundle.
const maxEntry = 1<<16 - 1

// Successor is a successor log's statement.
type Successor struct {
	Origin         string     // the successor's name
	Predecessor    Checkpoint // the old log's last checkpoint
	PredecessorKey string     // its verifier key
	Signed         []byte     // that checkpoint's signed note
	Carried        int64      // leaves of the old log carried over: 0..Carried-1
}

// Lost reports the old log's leaves the successor does not hold, [from, to).
func (s *Successor) Lost() (from, to int64) {
	return s.Carried, max(s.Carried, s.Predecessor.Size)
}

// Gap says in words which of the old log's leaves the successor holds and
// which it does not.
func (s *Successor) Gap() string {
	from, to := s.Lost()
	if to == 0 {
		return fmt.Sprintf("The log %s succeeds the log %s, which held no leaves: nothing is lost; the old name signs nothing again.", s.Origin, s.Predecessor.Origin)
	}
	if from == to {
		return fmt.Sprintf("The log %s succeeds the log %s and holds all its %d leaves (0 to %d), unchanged and at the same indexes: nothing is lost; the old name signs nothing again.",
			s.Origin, s.Predecessor.Origin, s.Carried, s.Carried-1)
	}
	held := "none of its leaves"
	if s.Carried > 0 {
		held = fmt.Sprintf("its leaves 0 to %d, unchanged and at the same indexes", s.Carried-1)
	}
	return fmt.Sprintf("The log %s succeeds the log %s, whose last checkpoint signed %d leaves. It holds %s. It does not hold leaves %d to %d: they were lost with a restore of the database, and no published tiles of them were kept; the records they committed to are lost too. The old name signs nothing again.",
		s.Origin, s.Predecessor.Origin, s.Predecessor.Size, held, from, to-1)
}

// Encode returns the statement's entry.
func (s *Successor) Encode() ([]byte, error) {
	from, to := s.Lost()
	lost := "lost none"
	if to > from {
		lost = fmt.Sprintf("lost %d %d", from, to-1)
	}
	var b bytes.Buffer
	b.WriteByte(byte(KindSuccessor))
	fmt.Fprintf(&b, "%s\nlog %s\npredecessor %s\npredecessor-key %s\ncarried %d\n%s\n\n%s\n\n",
		successorHeader, s.Origin, s.Predecessor.Origin, s.PredecessorKey, s.Carried, lost, s.Gap())
	b.Write(s.Signed)
	if b.Len() > maxEntry {
		return nil, fmt.Errorf("the successor statement has %d bytes, more than an entry holds (%d)", b.Len(), maxEntry)
	}
	return b.Bytes(), nil
}

// ParseSuccessor reads a successor statement's entry and checks that it
// says what it is made of: the old checkpoint is signed under the
// predecessor key it names (which a verifier still has to hold to a key it
// trusts: Open), and the lost range and the words are the ones its numbers
// give.
func ParseSuccessor(entry []byte) (*Successor, error) {
	if len(entry) == 0 || LeafKind(entry[0]) != KindSuccessor {
		return nil, errors.New("not a successor statement")
	}
	head, rest, ok := strings.Cut(string(entry[1:]), "\n\n")
	_, signed, ok2 := strings.Cut(rest, "\n\n")
	if !ok || !ok2 {
		return nil, errors.New("successor statement: want its lines, its words and the old checkpoint")
	}
	lines := strings.Split(head, "\n")
	if len(lines) != 6 || lines[0] != successorHeader {
		return nil, errors.New("successor statement: not " + successorHeader)
	}
	field := func(i int, name string) (string, error) {
		v, ok := strings.CutPrefix(lines[i], name+" ")
		if !ok || v == "" {
			return "", fmt.Errorf("successor statement: line %d is not %q", i+1, name)
		}
		return v, nil
	}
	s := &Successor{Signed: []byte(signed)}
	var err error
	if s.Origin, err = field(1, "log"); err != nil {
		return nil, err
	}
	predecessor, err := field(2, "predecessor")
	if err != nil {
		return nil, err
	}
	if s.PredecessorKey, err = field(3, "predecessor-key"); err != nil {
		return nil, err
	}
	carried, err := field(4, "carried")
	if err != nil {
		return nil, err
	}
	if s.Carried, err = strconv.ParseInt(carried, 10, 64); err != nil || s.Carried < 0 || strconv.FormatInt(s.Carried, 10) != carried {
		return nil, fmt.Errorf("successor statement: carried %q", carried)
	}
	if s.Predecessor, _, err = OpenCheckpoint(s.Signed, s.PredecessorKey); err != nil {
		return nil, fmt.Errorf("successor statement: the old checkpoint: %w", err)
	}
	if s.Predecessor.Origin != predecessor || predecessor == s.Origin {
		return nil, fmt.Errorf("successor statement: the old checkpoint is of %q, and the statement names %q as the old log and %q as the new", s.Predecessor.Origin, predecessor, s.Origin)
	}
	if s.Predecessor.Size < s.Carried {
		return nil, fmt.Errorf("successor statement: it carries %d leaves, more than the old checkpoint's %d", s.Carried, s.Predecessor.Size)
	}
	again, err := s.Encode()
	if err != nil || !bytes.Equal(again, entry) {
		return nil, errors.New("successor statement: its lost range or its words are not the ones its numbers give")
	}
	return s, nil
}

// Open checks the statement against the verifier keys of the log's earlier
// names (keys): its old checkpoint must be signed by one of them, the one
// it names.
func (s *Successor) Open(keys []string) error {
	for _, k := range keys {
		if k == s.PredecessorKey {
			return nil
		}
	}
	v, err := note.NewVerifier(s.PredecessorKey)
	if err != nil {
		return fmt.Errorf("successor statement: %w", err)
	}
	return fmt.Errorf("the successor statement's old checkpoint is signed by %s+%08x, which is no key of an earlier name of this log", v.Name(), v.KeyHash())
}

// SuccessorOrigin is the name of a log that succeeds old, preferring want
// (the new public URL's log name), when that is neither old nor in used
// (the log's earlier names). Otherwise it is want's (or old's) base name with
// a generation: consent.example.nl/log/2, /log/3, and so on.
func SuccessorOrigin(old, want string, used []string) string {
	taken := func(o string) bool { return o == old || contains(used, o) }
	if want != "" && !taken(want) {
		return want
	}
	base := want
	if base == "" {
		base = old
	}
	base, _ = splitGeneration(base)
	for g := 2; ; g++ {
		if o := base + "/" + strconv.Itoa(g); !taken(o) {
			return o
		}
	}
}

// SameLog reports whether named, a log's name, is base (a public URL's log
// name) or a successor of it under the same URL (base/2, base/3, …).
func SameLog(named, base string) bool {
	b, _ := splitGeneration(named)
	return named == base || b == base
}

// splitGeneration splits a successor's name into its base and generation
// (1 for a name without one).
func splitGeneration(origin string) (string, int) {
	i := strings.LastIndexByte(origin, '/')
	if i < 0 {
		return origin, 1
	}
	g, err := strconv.Atoi(origin[i+1:])
	if err != nil || g < 2 || strconv.Itoa(g) != origin[i+1:] {
		return origin, 1
	}
	return origin[:i], g
}

// SuccessorReader is what following a successor reads of a store.
type SuccessorReader interface {
	CheckpointReader
	LogEntries(ctx context.Context, from, to int64) ([][]byte, error)
}

// FollowSuccessor moves a reference of an earlier name of the log (kept
// beside the key file of an instance that did not make the successor, such
// as another PostgreSQL instance) to the successor's tree up to its
// statement, when the log, whose key is logKey, holds a statement that
// succeeds that name and carries the reference: the reference is among the
// carried leaves, or in the gap the statement names, never beyond the old
// checkpoint it carries; its old checkpoint is signed by one of the earlier
// keys, which the key file seals. Otherwise it leaves the reference as it
// is, and the guard holds the log as for any other tree that does not
// extend it.
func FollowSuccessor(ctx context.Context, db SuccessorReader, ref *Reference, logKey string, earlier []string, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	kept, ok := ref.Checkpoint()
	name, _, _ := strings.Cut(logKey, "+")
	if !ok || kept.Origin == name || !slices.ContainsFunc(earlier, func(k string) bool { return strings.HasPrefix(k, kept.Origin+"+") }) {
		return nil
	}
	latest, hashes, err := Latest(ctx, db, logKey)
	if err != nil {
		return err
	}
	const page = 1 << 12
	for from := int64(0); from < latest.Size; from += page {
		entries, err := db.LogEntries(ctx, from, min(from+page, latest.Size))
		if err != nil {
			return err
		}
		for i, e := range entries {
			if len(e) == 0 || LeafKind(e[0]) != KindSuccessor {
				continue
			}
			s, err := ParseSuccessor(e)
			if err != nil || s.Predecessor.Origin != kept.Origin || s.Carried != from+int64(i) || s.Open(earlier) != nil {
				continue
			}
			why := ""
			switch {
			case kept.Size > s.Predecessor.Size:
				why = "the reference holds more leaves of the old log than the statement's old checkpoint"
			case kept.Size == s.Predecessor.Size && kept.Hash != s.Predecessor.Hash:
				why = "the reference is another tree than the statement's old checkpoint"
			case kept.Size <= s.Carried && kept.Size > 0:
				if th, err := tlog.TreeHash(kept.Size, hashes); err != nil || th != kept.Hash {
					why = "the carried leaves are not the reference's tree"
				}
			}
			if why != "" {
				log.Warn("the log's successor statement does not carry this server's reference: the reference stays", "leaf", s.Carried, "reason", why)
				return nil
			}
			th, err := tlog.TreeHash(s.Carried+1, hashes)
			if err != nil {
				return err
			}
			next := Checkpoint{Origin: s.Origin, Size: s.Carried + 1, Hash: th}
			if err := ref.Accept(next); err != nil {
				return err
			}
			log.Info("the log's reference was of its earlier name; the successor statement carries it, and the reference is the successor's tree up to the statement",
				"was", kept.Origin, "was_size", kept.Size, "log_origin", s.Origin, "leaf", s.Carried)
			if kept = next; kept.Origin == name {
				return nil
			}
		}
	}
	return nil
}
