package server

import (
	"context"
	"net/http"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/koekje/koekje/server/consent"
	klog "github.com/koekje/koekje/server/tlog"
)

// logReader is what serving the transparency log needs of the store.
type logReader interface {
	// LatestCheckpoint returns the newest signed checkpoint, or nil.
	LatestCheckpoint(ctx context.Context) ([]byte, error)
	// LogHashes reads stored hashes by tlog's stored hash index.
	LogHashes(ctx context.Context, indexes []int64) ([]tlog.Hash, error)
	// LogEntries returns the entries of leaves [from, to).
	LogEntries(ctx context.Context, from, to int64) ([][]byte, error)
	// LeafOf returns the leaf of a site's record, or nil.
	LeafOf(ctx context.Context, site string, seq int64) (*klog.StoredLeaf, error)
	// LatestWitnessed returns the newest checkpoint the witnesses cosigned, or nil.
	LatestWitnessed(ctx context.Context) ([]byte, error)
}

// publishedCheckpoint is the checkpoint the log publishes: the newest the
// witnesses cosigned when there are witnesses, else the newest.
func (s *Server) publishedCheckpoint(ctx context.Context) (klog.Checkpoint, []byte, error) {
	if !s.witnessed {
		return s.latestCheckpoint(ctx)
	}
	signed, err := s.store.LatestWitnessed(ctx)
	if err != nil {
		return klog.Checkpoint{}, nil, err
	}
	if signed == nil {
		return klog.Checkpoint{}, nil, consent.Errorf(consent.ENOTFOUND, "no checkpoint has been cosigned yet")
	}
	cp, _, err := klog.OpenCheckpoint(signed, s.logKey)
	return cp, signed, err
}

// latestCheckpoint returns the newest checkpoint, opened with the log's key.
func (s *Server) latestCheckpoint(ctx context.Context) (klog.Checkpoint, []byte, error) {
	if s.logKey == "" {
		return klog.Checkpoint{}, nil, consent.Errorf(consent.ENOTFOUND, "this server keeps no transparency log")
	}
	signed, err := s.store.LatestCheckpoint(ctx)
	if err != nil {
		return klog.Checkpoint{}, nil, err
	}
	if signed == nil {
		return klog.Checkpoint{}, nil, consent.Errorf(consent.ENOTFOUND, "the log is empty")
	}
	cp, _, err := klog.OpenCheckpoint(signed, s.logKey)
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

// logTile serves hash tiles and entry bundles (C2SP tlog-tiles). Full tiles
// never change and are cached for good; partial ones for a moment.
func (s *Server) logTile(c echo.Context) error {
	ctx := c.Request().Context()
	t, err := klog.ParseTilePath("tile/" + c.Param("*"))
	if err != nil {
		return consent.Errorf(consent.ENOTFOUND, "no such tile: %v", err)
	}
	cp, _, err := s.latestCheckpoint(ctx)
	if err != nil {
		return err
	}
	// The tile's last leaf must be in the tree.
	level := max(t.L, 0)
	end := (t.N<<klog.TileHeight + int64(t.W)) << (klog.TileHeight * level)
	if end > cp.Size || end <= 0 {
		return consent.Errorf(consent.ENOTFOUND, "the log has no such tile yet")
	}
	var body []byte
	if t.L == -1 {
		first := t.N << klog.TileHeight
		entries, err := s.store.LogEntries(ctx, first, first+int64(t.W))
		if err != nil {
			return err
		}
		if len(entries) != t.W {
			return consent.Errorf(consent.ENOTFOUND, "the log has no such tile")
		}
		body = klog.EntryBundle(entries)
	} else {
		body, err = tlog.ReadTileData(t, s.hashReader(ctx))
		if err != nil {
			return err
		}
	}
	h := c.Response().Header()
	if t.W == 1<<klog.TileHeight {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "public, max-age=5")
	}
	return c.Blob(http.StatusOK, "application/octet-stream", body)
}

func (s *Server) hashReader(ctx context.Context) tlog.HashReader {
	return tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) { return s.store.LogHashes(ctx, idx) })
}

// logProof serves a C2SP tlog-proof of the visitor's newest record: its
// index, its inclusion proof and the checkpoint it is proven against, with
// the salt and site tag in the extra line (with the receipt's record hash,
// they make the leaf).
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
	p, err := s.inclusionProof(ctx, rec)
	if consent.ErrorCode(err) == consent.EUNAVAILABLE {
		// Committed, not yet in a signed checkpoint: on PostgreSQL the
		// integrator takes a record in within about a second.
		c.Response().Header().Set("Retry-After", "1")
	}
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	c.Response().Header().Set("Content-Disposition", `attachment; filename="`+rec.RecordID.String()+`.tlog-proof"`)
	return c.Blob(http.StatusOK, "text/plain; charset=utf-8", p.Encode())
}

// inclusionProof proves a record's leaf in the published checkpoint, or,
// while the witnesses have not cosigned one that covers it yet (up to a
// witnessing round, 10 s), in the newest one the log signed.
func (s *Server) inclusionProof(ctx context.Context, rec *consent.Record) (*klog.Proof, error) {
	if s.logKey == "" {
		return nil, consent.Errorf(consent.ENOTFOUND, "this server keeps no transparency log")
	}
	leaf, err := s.store.LeafOf(ctx, rec.Site, rec.Seq)
	if err != nil {
		return nil, err
	}
	if leaf == nil {
		return nil, consent.Errorf(consent.EUNAVAILABLE, "the record is not in the log yet; retry in a moment")
	}
	if leaf.Salt == nil {
		return nil, consent.Errorf(consent.ENOTFOUND, "this record has no leaf in the log")
	}
	cp, signed, err := s.latestCheckpoint(ctx)
	if err != nil {
		return nil, err
	}
	if s.witnessed {
		if wcp, wsigned, err := s.publishedCheckpoint(ctx); err == nil && leaf.Index < wcp.Size {
			cp, signed = wcp, wsigned
		}
	}
	if leaf.Index >= cp.Size {
		return nil, consent.Errorf(consent.EUNAVAILABLE, "the record is not in a signed checkpoint yet; retry in a moment")
	}
	l, err := klog.ParseLeaf(leaf.Entry)
	if err != nil {
		return nil, err
	}
	path, err := tlog.ProveRecord(cp.Size, leaf.Index, s.hashReader(ctx))
	if err != nil {
		return nil, err
	}
	return &klog.Proof{Index: leaf.Index, Salt: leaf.Salt, SiteTag: l.SiteTag, Path: path, Checkpoint: signed}, nil
}

// logIndexOf returns a record's leaf index, or -1.
func (s *Server) logIndexOf(ctx context.Context, rec *consent.Record) (int64, error) {
	if s.logKey == "" {
		return -1, nil
	}
	leaf, err := s.store.LeafOf(ctx, rec.Site, rec.Seq)
	if err != nil || leaf == nil {
		return -1, err
	}
	return leaf.Index, nil
}
