package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/koekje/koekje/server/consent"
	"github.com/koekje/koekje/server/translog"
)

// publishedCheckpoint is the checkpoint the log publishes: the newest the
// witnesses cosigned when there are witnesses, else the newest.
func (s *Server) publishedCheckpoint(ctx context.Context) (translog.Checkpoint, []byte, error) {
	signed, err := s.publishedNote(ctx)
	if err != nil {
		return translog.Checkpoint{}, nil, err
	}
	cp, _, err := translog.OpenCheckpoint(signed, s.logKey)
	return cp, signed, err
}

// publishedNote reads the published checkpoint's signed note, unopened.
func (s *Server) publishedNote(ctx context.Context) ([]byte, error) {
	if s.logKey == "" {
		return nil, consent.Errorf(consent.ENOTFOUND, "this server keeps no transparency log")
	}
	if !s.witnessed {
		signed, err := s.store.LatestCheckpoint(ctx)
		if err == nil && signed == nil {
			err = consent.Errorf(consent.ENOTFOUND, "the log is empty")
		}
		return signed, err
	}
	return s.published.note(ctx, s)
}

// published is the checkpoint a witnessed log publishes, which never goes
// back: the newest the witnesses cosigned, once it is at least as large as
// anything this process published. Until then (after a start, while the
// witnesses have not cosigned the newest checkpoint, or have cosigned none
// at all) it is the newest checkpoint the log had signed when the process
// first published one: a tlog client that saw it never sees a smaller
// tree, and a verifier that requires cosignatures waits for them.
type published struct {
	mu   sync.Mutex
	size int64  // the size published last; -1 before the first
	last []byte // the note published last

	// The witnessed note as stored, cleaned under the policy, and its size:
	// it is verified again only when the store holds another.
	raw, clean []byte
	rawSize    int64
}

func newPublished() *published { return &published{size: -1} }

func (p *published) note(ctx context.Context, s *Server) ([]byte, error) {
	witnessed, err := s.store.LatestWitnessed(ctx)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	wsize := int64(-1)
	if witnessed != nil {
		// Only signatures that verify under the policy go out, whatever
		// the row holds.
		if !bytes.Equal(witnessed, p.raw) {
			cp, clean, err := s.policy.Clean(witnessed)
			if err != nil {
				return nil, err
			}
			p.raw, p.clean, p.rawSize = witnessed, clean, cp.Size
		}
		wsize, witnessed = p.rawSize, p.clean
	}
	if p.size < 0 {
		newest, err := s.store.LatestCheckpoint(ctx)
		if err != nil {
			return nil, err
		}
		if newest == nil {
			return nil, consent.Errorf(consent.ENOTFOUND, "the log is empty")
		}
		cp, _, err := translog.OpenCheckpoint(newest, s.logKey)
		if err != nil {
			return nil, err
		}
		if cp.Size > wsize {
			p.size, p.last = cp.Size, newest
		}
	}
	if wsize >= p.size {
		p.size, p.last = wsize, witnessed
	}
	return p.last, nil
}

// latestCheckpoint returns the newest checkpoint, opened with the log's key.
func (s *Server) latestCheckpoint(ctx context.Context) (translog.Checkpoint, []byte, error) {
	if s.logKey == "" {
		return translog.Checkpoint{}, nil, consent.Errorf(consent.ENOTFOUND, "this server keeps no transparency log")
	}
	signed, err := s.store.LatestCheckpoint(ctx)
	if err != nil {
		return translog.Checkpoint{}, nil, err
	}
	if signed == nil {
		return translog.Checkpoint{}, nil, consent.Errorf(consent.ENOTFOUND, "the log is empty")
	}
	cp, _, err := translog.OpenCheckpoint(signed, s.logKey)
	return cp, signed, err
}

// logCheckpoint serves the published checkpoint (C2SP tlog-checkpoint).
func (s *Server) logCheckpoint(c echo.Context) error {
	_, signed, err := s.publishedCheckpoint(c.Request().Context())
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-cache")
	return c.Blob(http.StatusOK, "text/plain; charset=utf-8", signed)
}

// logKeyText serves the log's verifier key. An auditor pins it once, from
// a source other than this server, and checks that this is the same.
func (s *Server) logKeyText(c echo.Context) error {
	if s.logKey == "" {
		return consent.Errorf(consent.ENOTFOUND, "this server keeps no transparency log")
	}
	return c.String(http.StatusOK, s.logKey+"\n")
}

// logPolicyText serves the log's witness policy (C2SP tlog-policy): its
// key and the witnesses a checkpoint must be cosigned by. Verifiers pin it
// with the key; "quorum none" says plainly that the log has no witnesses.
func (s *Server) logPolicyText(c echo.Context) error {
	if s.logKey == "" {
		return consent.Errorf(consent.ENOTFOUND, "this server keeps no transparency log")
	}
	c.Response().Header().Set("Cache-Control", "no-cache")
	return c.Blob(http.StatusOK, "text/plain; charset=utf-8", s.policy.Encode())
}

// logTiles serves hash tiles and entry bundles (C2SP tlog-tiles) from
// memory. A tile's bytes never change once the tree holds it, so every tile
// path, full or partial, is served as immutable; a tile the published tree
// does not hold yet is a 404 that nothing caches. The published size is
// kept too: a request within it reads nothing from the store, and one
// beyond it reads the checkpoint again, one read at a time however many
// such requests wait.
type logTiles struct {
	s     *Server
	cache *tileCache
	size  atomic.Int64 // the published checkpoint's size, as last read

	reads  atomic.Int64 // reads of the checkpoint started
	mu     sync.Mutex   // held by the read under way
	lastOK int64        // the number of the newest read that succeeded
	signed []byte       // the note it read
}

func newLogTiles(s *Server, cacheBytes int) *logTiles {
	return &logTiles{s: s, cache: newTileCache(cacheBytes)}
}

var (
	octetStream   = []string{"application/octet-stream"}
	immutable     = []string{"public, max-age=31536000, immutable"}
	gzipEncoding  = []string{"gzip"}
	tileNotCached = []string{"no-store"}
)

func (lt *logTiles) serve(c echo.Context) error {
	ctx := c.Request().Context()
	h := c.Response().Header()
	// The same path may be a tile tomorrow: no cache keeps its 404.
	h["Cache-Control"] = tileNotCached
	t, end, err := parseTile("tile/" + c.Param("*"))
	if err != nil {
		return consent.Errorf(consent.ENOTFOUND, "no such tile: %v", err)
	}
	if err := lt.holds(ctx, end); err != nil {
		return err
	}
	st, err := lt.cache.get(ctx, t, lt.read)
	if err != nil {
		return err
	}
	body, length := st.plain, st.plainLength
	if t.L == -1 {
		h["Vary"] = varyEncoding
		if acceptsEncoding(c.Request().Header.Get("Accept-Encoding"), "gzip") {
			body, length = st.gzipped, st.gzippedLength
			h["Content-Encoding"] = gzipEncoding
		}
	}
	h["Cache-Control"] = immutable
	h["Content-Type"] = octetStream
	h["Content-Length"] = length
	c.Response().WriteHeader(http.StatusOK)
	if c.Request().Method == http.MethodHead {
		return nil
	}
	_, err = c.Response().Write(body)
	return err
}

// holds answers whether the published tree has at least end leaves,
// reading its checkpoint again only when the size last read is smaller.
// A read that started after this request arrived answers for it: requests
// that arrive during a read wait for the next one, and share it.
func (lt *logTiles) holds(ctx context.Context, end int64) error {
	if end <= lt.size.Load() {
		return nil
	}
	arrived := lt.reads.Load()
	lt.mu.Lock()
	defer lt.mu.Unlock()
	if lt.lastOK <= arrived {
		n := lt.reads.Add(1)
		if err := lt.readSize(ctx); err != nil {
			return err
		}
		lt.lastOK = n
	}
	if end > lt.size.Load() {
		return consent.Errorf(consent.ENOTFOUND, "the log has no such tile yet")
	}
	return nil
}

// readSize reads the published checkpoint; its signature is checked when
// the note changed. The size only grows: the log is append-only, and a
// tile served as immutable stays served.
func (lt *logTiles) readSize(ctx context.Context) error {
	signed, err := lt.s.publishedNote(ctx)
	if err != nil || bytes.Equal(signed, lt.signed) {
		return err
	}
	cp, _, err := translog.OpenCheckpoint(signed, lt.s.logKey)
	if err != nil {
		return err
	}
	lt.signed = signed
	if cp.Size > lt.size.Load() {
		lt.size.Store(cp.Size)
	}
	return nil
}

// read makes a tile from the store: the tree holds it (holds said so).
func (lt *logTiles) read(ctx context.Context, t tlog.Tile) (*servedTile, error) {
	if t.L != -1 {
		body, err := tlog.ReadTileData(t, lt.s.hashReader(ctx))
		if err != nil {
			return nil, err
		}
		return newServedTile(t, body)
	}
	first := t.N << translog.TileHeight
	entries, err := lt.s.store.LogEntries(ctx, first, first+int64(t.W))
	if err != nil {
		return nil, err
	}
	if len(entries) != t.W {
		return nil, fmt.Errorf("entry bundle %s: %d entries in the store", translog.TilePath(t), len(entries))
	}
	return newServedTile(t, translog.EntryBundle(entries))
}

func (s *Server) hashReader(ctx context.Context) tlog.HashReader {
	return tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) { return s.store.LogHashes(ctx, idx) })
}

// proofWait is how long the proof route waits for a checkpoint that meets
// the log's witness policy and covers the record: a witnessing round is 10 s
// by default.
var proofWait = 15 * time.Second

// logProof serves a C2SP tlog-proof of the visitor's newest record: its
// index, its inclusion proof and a checkpoint that meets the log's witness
// policy (the witnesses cosigned it), with the salt and site tag in the
// extra line (with the receipt's record hash, they make the leaf). It waits
// up to proofWait for such a checkpoint, then answers 503 with Retry-After,
// saying what it waits for.
func (s *Server) logProof(c echo.Context) error {
	ctx := c.Request().Context()
	id := uuid.MustParse(c.Param("id"))
	site, _ := c.Get(ctxVisitorSite).(string)
	rec, err := s.store.Latest(ctx, id, site)
	if err != nil {
		return err
	}
	if rec == nil {
		return consent.FieldErrorf(consent.ENOTFOUND, "consent_id", "no records for this consent ID")
	}
	var p *translog.Proof
	for deadline := time.Now().Add(proofWait); ; {
		p, err = s.cosignedProof(ctx, rec)
		if consent.ErrorCode(err) != consent.EUNAVAILABLE || time.Now().After(deadline) {
			break
		}
		if errors.Is(err, errNotInLog) {
			// Committed, not yet in the log: on PostgreSQL the integrator
			// takes a record in within about a second.
			c.Response().Header().Set("Retry-After", "1")
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	if consent.ErrorCode(err) == consent.EUNAVAILABLE {
		c.Response().Header().Set("Retry-After", "5")
	}
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	c.Response().Header().Set("Content-Disposition", `attachment; filename="`+rec.RecordID.String()+`.tlog-proof"`)
	return c.Blob(http.StatusOK, "text/plain; charset=utf-8", p.Encode())
}

// cosignedProof proves a record's leaf in the newest checkpoint that meets
// the log's witness policy (for a log without witnesses, the newest it
// signed), with only the signatures that verify under the policy.
func (s *Server) cosignedProof(ctx context.Context, rec *consent.Record) (*translog.Proof, error) {
	if s.logKey == "" {
		return nil, consent.Errorf(consent.ENOTFOUND, "this server keeps no transparency log")
	}
	if !s.witnessed {
		return s.inclusionProof(ctx, rec)
	}
	signed, err := s.store.LatestWitnessed(ctx)
	if err != nil {
		return nil, err
	}
	var cp translog.Checkpoint
	if signed != nil {
		if cp, _, signed, err = s.policy.Open(signed); err != nil {
			return nil, err
		}
	}
	return s.proveIn(ctx, rec, cp, signed, "the witnesses have not cosigned a checkpoint with this record yet; retry in a moment")
}

// inclusionProof proves a record's leaf in the newest checkpoint the log
// signed, cosigned or not.
func (s *Server) inclusionProof(ctx context.Context, rec *consent.Record) (*translog.Proof, error) {
	cp, signed, err := s.latestCheckpoint(ctx)
	if err != nil && (s.logKey == "" || consent.ErrorCode(err) != consent.ENOTFOUND) {
		return nil, err
	}
	return s.proveIn(ctx, rec, cp, signed, "the record is not in a signed checkpoint yet; retry in a moment")
}

// errNotInLog: the record was committed and has no leaf yet.
var errNotInLog = consent.Errorf(consent.EUNAVAILABLE, "the record is not in the log yet; retry in a moment")

// proveIn proves a record's leaf in cp (signed: its note; nil for none),
// or answers EUNAVAILABLE with notYet while cp does not cover it.
func (s *Server) proveIn(ctx context.Context, rec *consent.Record, cp translog.Checkpoint, signed []byte, notYet string) (*translog.Proof, error) {
	leaf, err := s.store.LeafOf(ctx, rec.Site, rec.Seq)
	if err != nil {
		return nil, err
	}
	if leaf == nil {
		return nil, errNotInLog
	}
	if leaf.Salt == nil {
		return nil, consent.Errorf(consent.ENOTFOUND, "this record has no leaf in the log")
	}
	if signed == nil || leaf.Index >= cp.Size {
		return nil, consent.Errorf(consent.EUNAVAILABLE, "%s", notYet)
	}
	l, err := translog.ParseLeaf(leaf.Entry)
	if err != nil {
		return nil, err
	}
	if l.Kind != translog.KindRecord {
		return nil, fmt.Errorf("leaf %d is a %s entry, not a record's", leaf.Index, l.Kind)
	}
	path, err := tlog.ProveRecord(cp.Size, leaf.Index, s.hashReader(ctx))
	if err != nil {
		return nil, err
	}
	return &translog.Proof{Index: leaf.Index, Salt: leaf.Salt, SiteTag: l.SiteTag, Path: path, Checkpoint: signed}, nil
}
