package translog

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/mod/sumdb/tlog"
)

// A Guard stands between a store and its log's signer. Before a store signs
// on from the tree it holds, it asks Allow, which proves that tree
// consistent with the reference (the newest checkpoint this server signed or
// saw); the reference's keeper (Keep) holds the store's newest checkpoint to
// it as well. While either fails, or the log's state at start was not
// confirmed, the guard holds: the store signs nothing and keeps recording,
// each new record waiting in the log's queue with the write path's MAC
// (QueueMAC), and the guard says so: an ERROR line at each change of why,
// Reason for /healthz, the console and the metrics. When the tree extends
// the reference again (the missing leaves restored from the published
// tiles), the guard lets go and the queued records are appended after it.
type Guard struct {
	ref *Reference
	log *slog.Logger

	mu      sync.Mutex
	reasons map[string]string // why it holds, by who found it
	said    string            // all of them, as last logged: what Reason says
	proven  Checkpoint        // the newest tree the store proved or signed
	hasTree bool
	wake    func()

	// The newest checkpoint published: the reference file held it, synced,
	// before it went out.
	pub     []byte
	pubSize int64
	pubSet  bool // a checkpoint (or the empty tree) was proven this process
}

// Who holds a guard: the check at start, the reference's keeper, and the
// store's check of its tree before it signs.
const (
	holdStart     = "start"
	holdReference = "reference"
	holdTree      = "tree"
)

// NewGuard guards signing with ref; log gets the ERROR and INFO lines.
func NewGuard(ref *Reference, log *slog.Logger) *Guard {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Guard{ref: ref, log: log, reasons: map[string]string{}}
}

// Reference is the reference the guard holds the log to.
func (g *Guard) Reference() *Reference { return g.ref }

// Reason says why the log signs nothing, "" while it may sign.
func (g *Guard) Reason() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.said
}

func (g *Guard) reason() string {
	keys := make([]string, 0, len(g.reasons))
	for k := range g.reasons {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var why []string
	for _, k := range keys {
		if r := g.reasons[k]; !contains(why, r) {
			why = append(why, r)
		}
	}
	return strings.Join(why, "; ")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Held reports whether the log signs nothing now.
func (g *Guard) Held() bool { return g.Reason() != "" }

// OnRelease sets what the store does when the guard may let go: look at its
// tree again and append what waits in its queue.
func (g *Guard) OnRelease(wake func()) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.wake = wake
}

// set records why who holds ("" lets go of who's hold) and says so once per
// change: an ERROR line while the log signs nothing, an INFO line when it
// signs again.
func (g *Guard) set(who, why string) {
	g.mu.Lock()
	if why == "" {
		delete(g.reasons, who)
	} else {
		g.reasons[who] = why
	}
	now := g.reason()
	changed := now != g.said
	g.said = now
	g.mu.Unlock()
	switch {
	case !changed:
	case now != "":
		g.log.Error("the log signs nothing until its tree is proven to extend what this server signed before; new records are kept and wait for the log", "reason", now)
	default:
		g.log.Info("the log extends what this server signed before again: it signs on, and the records that waited are appended")
	}
}

// holdAtStart holds the log for this process's life: its state at start
// could not be confirmed (no reference file beside a log that is not empty,
// or a witness's checkpoint the tree does not extend). A restart with a
// witness or --accept-log-state, after the operator looked, lets go.
func (g *Guard) holdAtStart(why string) { g.set(holdStart, why) }

// Allow reports whether the store may append to and sign on from its tree
// of size n, whose stored hashes hashes reads: the tree must be proven to
// extend the reference (once per tree the store did not sign itself), and
// nothing else may hold the guard. A tree that does not extend the
// reference holds it.
func (g *Guard) Allow(origin string, n int64, hashes tlog.HashReader) bool {
	g.mu.Lock()
	proven := g.hasTree && g.proven.Size == n && g.reasons[holdTree] == ""
	g.mu.Unlock()
	if !proven {
		err := g.check(origin, n, hashes)
		switch {
		case errors.Is(err, ErrNoReference):
			return false // held since the start, until a restart confirms the log
		case err != nil:
			g.set(holdTree, err.Error())
			return false
		}
		g.set(holdTree, "")
	}
	return !g.Held()
}

// check proves the tree of size n consistent with the reference.
func (g *Guard) check(origin string, n int64, hashes tlog.HashReader) error {
	var th tlog.Hash
	if n > 0 {
		var err error
		if th, err = tlog.TreeHash(n, hashes); err != nil {
			return err
		}
	}
	cp := Checkpoint{Origin: origin, Size: n, Hash: th}
	if err := g.ref.Check(cp, hashes); err != nil {
		return describe(err, n, g.ref)
	}
	g.mu.Lock()
	g.proven, g.hasTree = cp, true
	g.mu.Unlock()
	return nil
}

// describe names both sizes of a failed check, and where to read on.
func describe(err error, n int64, ref *Reference) error {
	if errors.Is(err, ErrNoReference) {
		return err
	}
	kept, _ := ref.Checkpoint()
	return &HeldError{Err: err, Size: n, Reference: kept.Size, Path: ref.path}
}

// HeldError is a log that does not extend its reference.
type HeldError struct {
	Err             error
	Size, Reference int64
	Path            string
}

func (e *HeldError) Error() string {
	return e.Err.Error() + "; it signs nothing that would fork it: the database holds " + strconv.FormatInt(e.Size, 10) +
		" leaves, the reference " + strconv.FormatInt(e.Reference, 10) + " (" + e.Path + "); see \"Back up and restore\" in the README"
}

func (e *HeldError) Unwrap() error { return e.Err }

// publish makes cp, whose signed note is signed, the checkpoint the log
// publishes, once the reference file holds it or a larger tree.
// A nil signed is the empty tree: nothing is published yet, and nothing
// the store signs goes out before the reference holds it either.
func (g *Guard) publish(cp Checkpoint, signed []byte) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.pubSet || (signed != nil && cp.Size >= g.pubSize) {
		g.pub, g.pubSize, g.pubSet = signed, cp.Size, true
	}
}

// Published is the signed note of the newest checkpoint the log may
// publish: one the reference file held, synced to disk, before it was
// handed out. A checkpoint the store signed since is published at the
// keeper's next tick (ReferenceEvery), so a server killed at any moment
// has never shown anyone a tree its reference does not hold. Nil until
// this process proved a checkpoint, and while the log is empty; ok says
// whether the guard publishes at all: not while the log has been held
// since the start, which signs nothing new.
func (g *Guard) Published() (signed []byte, ok bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.pub, g.pubSet
}

// Signed tells the guard the store signed the tree cp, which extends the
// one Allow proved: the next batch needs no proof again.
func (g *Guard) Signed(cp Checkpoint) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.proven, g.hasTree = cp, true
}

// QueueMAC is the key of the write path's MAC over what it queues for the
// log: a record queued any other way (a row written with sqlite3 or psql)
// has no valid MAC and never gets a leaf.
type QueueMAC []byte

// Sum is the MAC of a site's record at seq with hash.
func (k QueueMAC) Sum(site string, seq int64, hash []byte) []byte {
	m := hmac.New(sha256.New, k)
	m.Write([]byte(site))
	m.Write([]byte{0})
	m.Write(binary.BigEndian.AppendUint64(nil, uint64(seq)))
	m.Write(hash)
	return m.Sum(nil)
}

// Valid reports whether mac is the MAC of the record.
func (k QueueMAC) Valid(site string, seq int64, hash, mac []byte) bool {
	return len(mac) == sha256.Size && hmac.Equal(mac, k.Sum(site, seq, hash))
}

// Newest returns the newest checkpoint the log publishes of db: Published
// once the guard publishes, else db's own (signed by an earlier process,
// whose reference held it), or nil for the empty tree.
func (g *Guard) Newest(ctx context.Context, db CheckpointReader) ([]byte, error) {
	if g != nil {
		if n, ok := g.Published(); ok {
			return n, nil
		}
	}
	return db.LatestCheckpoint(ctx)
}
