package translog

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// AuditResult is what an Audit found.
type AuditResult struct {
	OK     bool   `json:"ok"`
	Origin string `json:"origin"`
	Size   int64  `json:"size"`
	// Since is the size of the newest checkpoint the log was proven to
	// extend: the one this auditor verified before, or the one --since kept.
	Since int64 `json:"since,omitempty"`
	// Witnesses are those of the pinned policy that cosigned the checkpoint.
	Witnesses []string `json:"witnesses,omitempty"`
	// Unwitnessed says the log's policy asks for no cosignature.
	Unwitnessed bool `json:"unwitnessed,omitempty"`
	// State is the directory that keeps what this auditor pinned and saw.
	State string `json:"state"`
	// Site and its leaves, found with the site's audit key.
	Site   string  `json:"site,omitempty"`
	Leaves []int64 `json:"leaves,omitempty"`
	// Purges are the site's purge entries: a retention purge removed the
	// records of the site's leaves before each, and said so in the log.
	Purges []int64 `json:"purges,omitempty"`
	// Scans are the site's recorded scans' entries.
	Scans []int64 `json:"scans,omitempty"`
	// Successions are the successor statements in the log, each held to
	// what this auditor saw of the log it succeeds.
	Successions []AuditSuccession `json:"successions,omitempty"`
	Error       string            `json:"error,omitempty"`
}

// AuditSuccession is a successor statement as an auditor checked it.
type AuditSuccession struct {
	Entry           int64  `json:"entry"` // the old log's leaves before it are carried
	Predecessor     string `json:"predecessor"`
	PredecessorSize int64  `json:"predecessor_size"`
	// Lost names the old log's leaves the successor does not hold.
	Lost string `json:"lost,omitempty"`
	// Seen is the size of the old log's checkpoint this auditor verified
	// before, if its state kept one.
	Seen int64  `json:"seen,omitempty"`
	Note string `json:"note"`
}

// Audit checks a log from its public tiles alone (koekje log-audit): the
// published checkpoint's signature and cosignatures under the log's
// witness policy, that the tiles rebuild its root, that it extends every
// checkpoint this auditor verified before (and Since), and, with a site's
// audit key, which leaves are that site's.
//
// Like Go's checksum-database client, it keeps a state directory per log:
// the log's key and policy, pinned on first use, the newest checkpoint it
// verified, and the entry bundles it verified. A later run fails on another
// key, on a weaker policy (unless AcceptPolicy), and on a log smaller
// than, or not extending, what it saw before: a rollback needs no Since.
type Audit struct {
	Tiles *Remote
	// StateDir keeps each log's state, in a directory of its own.
	StateDir string
	// LogKey is the verifier key the caller pinned (required the first
	// time, then kept in the state); PolicyFile the witness policy they
	// pinned ("": the log's own /log/policy, pinned on first use).
	LogKey, PolicyFile string
	// AcceptPolicy pins the log's policy even if it accepts what the
	// pinned one did not; AllowUnwitnessed accepts a policy without
	// witnesses.
	AcceptPolicy, AllowUnwitnessed bool
	// Since is a checkpoint file the caller kept: the log must extend it.
	Since string
	// AuditKey is a site's audit key, hex, to list its leaves with.
	AuditKey string
	// Count, if set, counts the leaves checked as they go.
	Count func(n int64)

	dir string // this log's state
}

// file names in a log's state directory
const (
	stateKey        = "key"
	statePolicy     = "policy"
	stateCheckpoint = "checkpoint"
)

// Run audits the log into res.
func (a *Audit) Run(res *AuditResult) error {
	signed, err := a.Tiles.Get("checkpoint")
	if err != nil {
		return err
	}
	origin, _, _ := strings.Cut(string(signed), "\n")
	if origin == "" || strings.ContainsAny(origin, "\x00") {
		return errors.New("the log's checkpoint names no origin")
	}
	a.dir = filepath.Join(a.StateDir, url.PathEscape(origin))
	res.State = a.dir
	if err := a.pinKey(origin); err != nil {
		return err
	}
	policy, err := a.pinPolicy()
	if err != nil {
		return err
	}
	res.Unwitnessed = policy.Unwitnessed()
	cp, names, clean, err := policy.Open(signed)
	res.Origin, res.Size, res.Witnesses = cp.Origin, cp.Size, names
	if err != nil {
		return err
	}
	tree := tlog.Tree{N: cp.Size, Hash: cp.Hash}
	hashes := tlog.TileHashReader(tree, a.Tiles)
	var refs []string // where each reference comes from
	var olds []Checkpoint
	if b, err := os.ReadFile(filepath.Join(a.dir, stateCheckpoint)); err == nil {
		old, _, err := OpenCheckpoint(b, a.LogKey)
		if err != nil {
			return fmt.Errorf("the checkpoint kept in %s: %w", a.dir, err)
		}
		refs, olds = append(refs, "the checkpoint this auditor verified before"), append(olds, old)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if a.Since != "" {
		kept, err := os.ReadFile(a.Since)
		if err != nil {
			return err
		}
		old, _, err := OpenCheckpoint(kept, a.LogKey)
		if err != nil {
			return fmt.Errorf("--since: %w", err)
		}
		refs, olds = append(refs, "the kept checkpoint"), append(olds, old)
	}
	for i, old := range olds {
		if old.Size > cp.Size {
			return fmt.Errorf("the log has %d leaves, fewer than the %d of %s: it was rolled back or forked", cp.Size, old.Size, refs[i])
		}
		p, err := tlog.ProveTree(cp.Size, old.Size, hashes)
		if err == nil {
			err = tlog.CheckTree(p, cp.Size, cp.Hash, old.Size, old.Hash)
		}
		if err != nil {
			return fmt.Errorf("the log does not extend %s of size %d: %w", refs[i], old.Size, err)
		}
		res.Since = max(res.Since, old.Size)
	}
	bundles, successors, err := a.checkEntries(cp, res)
	if err != nil {
		return err
	}
	for _, s := range successors {
		sc, err := a.heldToSeen(s, hashes)
		if err != nil {
			return err
		}
		res.Successions = append(res.Successions, sc)
	}
	// All checked: keep the new tiles and the checkpoint, which extends
	// every one seen before.
	for path, data := range bundles {
		file := filepath.Join(a.dir, filepath.FromSlash(path))
		if partial := filepath.Dir(file); strings.HasSuffix(partial, ".p") {
			os.RemoveAll(partial) // only the newest partial bundle is kept
		}
		if err := writeState(file, data); err != nil {
			return err
		}
	}
	return writeState(filepath.Join(a.dir, stateCheckpoint), clean)
}

// pinKey holds the log's key against the one pinned in the state, pinning
// it on first use. A log has one key for life: another one fails.
func (a *Audit) pinKey(origin string) error {
	b, err := os.ReadFile(filepath.Join(a.dir, stateKey))
	pinned := strings.TrimSpace(string(b))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if a.LogKey == "" {
			return fmt.Errorf("no key pinned for %s in %s: give --log-key the first time", origin, a.StateDir)
		}
		if v, err := note.NewVerifier(a.LogKey); err != nil || v.Name() != origin {
			return fmt.Errorf("--log-key is not a key of the log %s", origin)
		}
		return writeState(filepath.Join(a.dir, stateKey), []byte(a.LogKey+"\n"))
	case err != nil:
		return err
	case a.LogKey != "" && a.LogKey != pinned:
		return fmt.Errorf("--log-key is not the key pinned for %s in %s (%s): a log keeps its key for life", origin, a.dir, pinned)
	}
	a.LogKey = pinned
	return nil
}

// pinPolicy reads the log's witness policy (--policy, or the log's own) and
// holds it against the one pinned in the state: a weaker one fails unless
// --accept-policy re-pins it; one at least as strict is pinned.
func (a *Audit) pinPolicy() (*Policy, error) {
	var (
		text []byte
		err  error
	)
	if a.PolicyFile != "" {
		text, err = os.ReadFile(a.PolicyFile)
	} else {
		text, err = a.Tiles.Get("policy")
	}
	if err != nil {
		return nil, fmt.Errorf("the log's witness policy: %w", err)
	}
	policy, err := ParsePolicy(text)
	if err != nil {
		return nil, err
	}
	if !policy.HasLog(a.LogKey) {
		return nil, fmt.Errorf("the witness policy does not name the pinned key %s", a.LogKey)
	}
	path := filepath.Join(a.dir, statePolicy)
	if b, err := os.ReadFile(path); err == nil {
		pinned, err := ParsePolicy(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if werr := policy.WeakerThan(pinned); werr != nil && !a.AcceptPolicy {
			return nil, fmt.Errorf("the log's witness policy is weaker than the one pinned in %s: %w (give --accept-policy to pin it if you trust the change)", path, werr)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if policy.Unwitnessed() && !a.AllowUnwitnessed {
		return nil, errors.New("the log has no witnesses (quorum none): its checkpoints rest on its own signature alone; give --allow-unwitnessed to accept that")
	}
	return policy, writeState(path, policy.Encode())
}

// writeState writes a state file atomically (0600 in a 0700 directory).
func writeState(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}

// heldToSeen holds a successor statement to what this auditor kept of the
// log it succeeds: the key it pinned, and the newest checkpoint it
// verified, which the successor must carry (its tree the successor's first
// leaves) or which must lie in the gap the statement names, never beyond
// the old checkpoint the statement carries.
func (a *Audit) heldToSeen(s *Successor, hashes tlog.HashReader) (AuditSuccession, error) {
	sc := AuditSuccession{Entry: s.Carried, Predecessor: s.Predecessor.Origin, PredecessorSize: s.Predecessor.Size}
	if from, to := s.Lost(); to > from {
		sc.Lost = fmt.Sprintf("leaves %d to %d of %s", from, to-1, s.Predecessor.Origin)
	}
	dir := filepath.Join(a.StateDir, url.PathEscape(s.Predecessor.Origin))
	key, err := os.ReadFile(filepath.Join(dir, stateKey))
	if errors.Is(err, fs.ErrNotExist) {
		sc.Note = fmt.Sprintf("this auditor kept nothing of %s: its old checkpoint rests on the key the statement names", s.Predecessor.Origin)
		return sc, nil
	}
	if err != nil {
		return sc, err
	}
	if strings.TrimSpace(string(key)) != s.PredecessorKey {
		return sc, fmt.Errorf("the successor statement at leaf %d names the key %s for %s, not the one pinned in %s", s.Carried, s.PredecessorKey, s.Predecessor.Origin, dir)
	}
	b, err := os.ReadFile(filepath.Join(dir, stateCheckpoint))
	if errors.Is(err, fs.ErrNotExist) {
		sc.Note = "the old log's key is the one this auditor pinned; it kept no checkpoint of it"
		return sc, nil
	}
	if err != nil {
		return sc, err
	}
	seen, _, err := OpenCheckpoint(b, s.PredecessorKey)
	if err != nil {
		return sc, fmt.Errorf("the checkpoint kept in %s: %w", dir, err)
	}
	sc.Seen = seen.Size
	switch {
	case seen.Size > s.Predecessor.Size:
		return sc, fmt.Errorf("this auditor saw %d leaves of %s, more than the %d of the old checkpoint its successor's statement carries", seen.Size, seen.Origin, s.Predecessor.Size)
	case seen.Size == s.Predecessor.Size && seen.Hash != s.Predecessor.Hash:
		return sc, fmt.Errorf("the old checkpoint the successor's statement carries is not the one of %d leaves this auditor saw: %s forked", seen.Size, seen.Origin)
	case seen.Size <= s.Carried:
		var th tlog.Hash
		if seen.Size > 0 {
			if th, err = tlog.TreeHash(seen.Size, hashes); err != nil {
				return sc, err
			}
		}
		if th != seen.Hash {
			return sc, fmt.Errorf("the successor's first %d leaves are not the log %s this auditor saw", seen.Size, seen.Origin)
		}
		sc.Note = fmt.Sprintf("the successor carries the %d leaves of %s this auditor saw", seen.Size, seen.Origin)
	default:
		sc.Note = fmt.Sprintf("this auditor saw %d leaves of %s: those from %d on are in the gap the statement names", seen.Size, seen.Origin, s.Carried)
	}
	return sc, nil
}

// checkEntries rebuilds the checkpoint's root from every entry bundle and
// lists the site's leaves; it returns the bundles by tile path, and the
// successor statements, each checked to be at the index of the leaves it
// carries and, when it lost none, to follow the old checkpoint's tree.
func (a *Audit) checkEntries(cp Checkpoint, res *AuditResult) (map[string][]byte, []*Successor, error) {
	var successors []*Successor
	bundles := map[string][]byte{}
	// Every entry, rebuilt into the tree, must give the checkpoint's root.
	var (
		b      TreeBuilder
		tagger *SiteTagger
	)
	if a.AuditKey != "" {
		k, err := hex.DecodeString(a.AuditKey)
		if err != nil || len(k) != 32 {
			return nil, nil, errors.New("--audit-key: want 64 hex digits")
		}
		tagger = NewSiteTagger(k)
	}
	for n := int64(0); n < cp.Size; n += 1 << TileHeight {
		w := min(cp.Size-n, 1<<TileHeight)
		path := TilePath(tlog.Tile{H: TileHeight, L: -1, N: n >> TileHeight, W: int(w)})
		// A full bundle verified before is read from the state; it is
		// checked again with the rest, against today's root.
		data, err := os.ReadFile(filepath.Join(a.dir, filepath.FromSlash(path)))
		if err != nil || w < 1<<TileHeight {
			if data, err = a.Tiles.Get(path); err != nil {
				return nil, nil, err
			}
			bundles[path] = data
		}
		entries, err := ParseEntryBundle(data)
		if err != nil || int64(len(entries)) != w {
			return nil, nil, fmt.Errorf("entry bundle at %d: %d entries, %v", n, len(entries), err)
		}
		if a.Count != nil {
			a.Count(int64(len(entries)))
		}
		for i, e := range entries {
			if len(e) > 0 && LeafKind(e[0]) == KindSuccessor {
				s, err := ParseSuccessor(e)
				switch {
				case err != nil:
					return nil, nil, fmt.Errorf("leaf %d: %w", n+int64(i), err)
				case s.Carried != n+int64(i):
					return nil, nil, fmt.Errorf("the successor statement at leaf %d says it carries %d leaves", n+int64(i), s.Carried)
				case s.Predecessor.Size == s.Carried && b.Root() != s.Predecessor.Hash:
					return nil, nil, fmt.Errorf("the %d leaves before the successor statement at leaf %d are not the old checkpoint's tree", s.Carried, s.Carried)
				}
				successors = append(successors, s)
			}
			b.Add(e)
			if tagger == nil {
				continue
			}
			l, err := ParseLeaf(e)
			if err != nil {
				return nil, nil, fmt.Errorf("leaf %d: %w", n+int64(i), err)
			}
			if l.SiteTag == tagger.Tag(n+int64(i)) {
				switch l.Kind {
				case KindPurge:
					res.Purges = append(res.Purges, n+int64(i))
				case KindScan:
					res.Scans = append(res.Scans, n+int64(i))
				default:
					res.Leaves = append(res.Leaves, n+int64(i))
				}
			}
		}
	}
	if b.Root() != cp.Hash {
		return nil, nil, errors.New("the entries do not rebuild the checkpoint's root")
	}
	return bundles, successors, nil
}
