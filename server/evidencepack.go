package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/koekje/koekje/server/consent"
	"github.com/koekje/koekje/server/evidence"
	"github.com/koekje/koekje/server/export"
	"github.com/koekje/koekje/server/proof"
	"github.com/koekje/koekje/server/translog"
)

// evidencePack answers with the evidence pack of one visitor of a site: a
// ZIP holding their records, a receipt and an inclusion proof per record,
// the banner versions they saw, the keys and the checkpoint, and what the
// server found when it checked each file against them. Nothing is signed
// for a record that fails its checks (checkIntact): the pack is refused.
func (s *Server) evidencePack(c echo.Context) error {
	site, err := s.pathSite(c)
	if err != nil {
		return err
	}
	id, err := consent.ParseID(c.Param("id"))
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	p := &evidence.Pack{Site: site, ConsentID: id, MadeAt: time.Now().UTC(), LogKey: s.logKey, Versions: map[string][]byte{}}
	if s.logKey != "" {
		p.Policy = s.policy.Encode()
	}
	f := consent.Filter{Site: site.ID, ConsentID: id}
	var signed []byte
	if s.logKey != "" {
		if signed, err = s.store.LatestCheckpoint(ctx); err != nil {
			return err
		}
	}
	var nd bytes.Buffer
	w, err := export.New("ndjson", site, &nd)
	if err != nil {
		return err
	}
	err = s.store.Scan(ctx, f, func(r *consent.Record) error {
		if len(p.Records) == maxHistoryPage {
			return consent.FieldErrorf(consent.EINVALID, "consent_id", "this visitor has more than %d records: export them instead", maxHistoryPage)
		}
		p.Records = append(p.Records, r)
		return w.Write(r)
	})
	if err == nil {
		err = w.End(export.NewSummary(f, signed))
	}
	if err != nil {
		return err
	}
	if len(p.Records) == 0 {
		return consent.FieldErrorf(consent.ENOTFOUND, "consent_id", "no records of this site for this consent ID")
	}
	p.Export = nd.Bytes()
	if p.JWKS, err = json.Marshal(s.keys.Ring().JWKS()); err != nil {
		return err
	}
	// Every proof of the pack is made under one checkpoint: the newest that
	// meets the witness policy, as the proof route proves.
	var cp translog.Checkpoint
	var policy *translog.Policy
	notYet := ""
	if s.logKey != "" {
		if cp, p.Checkpoint, notYet, err = s.packCheckpoint(ctx); err != nil {
			return err
		}
		policy = s.policy
	}
	unavailable := func(err error) error {
		if consent.ErrorCode(err) == consent.EUNAVAILABLE {
			c.Response().Header().Set("Retry-After", "1")
		}
		return err
	}
	for _, r := range p.Records {
		_, _, jwt, err := s.signReceipt(c, r)
		if err != nil {
			return err
		}
		var tp []byte
		if s.logKey != "" {
			pr, err := s.proveIn(ctx, r, cp, p.Checkpoint, notYet)
			if err != nil {
				return unavailable(err)
			}
			tp = pr.Encode()
		}
		p.Receipts, p.Proofs = append(p.Receipts, jwt), append(p.Proofs, tp)
		p.Checks = append(p.Checks, proof.CheckReceipt(jwt, p.JWKS, tp, policy))
		if p.Versions[r.ConfigHash] == nil {
			// Read through the store's check: a version whose body no
			// longer hashes to its name is refused, not packed.
			if p.Versions[r.ConfigHash], err = s.store.Version(ctx, site.ID, r.ConfigHash); err != nil {
				return err
			}
		}
	}
	p.ScanFrom, p.ScanTo = evidence.ScanPeriod(p.Records)
	if p.Scans, err = s.scansBetween(ctx, site.ID, p.ScanFrom, p.ScanTo); err != nil {
		return err
	}
	for _, sc := range p.Scans {
		var tp []byte
		if s.logKey != "" && sc.EntryIndex != nil {
			pr, err := s.proveScan(ctx, sc, cp, p.Checkpoint)
			if err != nil {
				return unavailable(err)
			}
			tp = pr.Encode()
		}
		p.ScanProofs = append(p.ScanProofs, tp)
	}
	h := c.Response().Header()
	h.Set("Content-Type", "application/zip")
	h.Set("Content-Disposition", `attachment; filename="evidence-`+site.ID+`-`+id.String()+`.zip"`)
	h.Set("Cache-Control", "no-store")
	var zip bytes.Buffer
	if err := p.Write(&zip); err != nil {
		return err
	}
	return c.Blob(http.StatusOK, "application/zip", zip.Bytes())
}

// packCheckpoint is the checkpoint a pack's proofs are made under, as the
// proof route chooses it: with witnesses, the newest they cosigned (nil
// before they cosigned one); without, the newest the log signed. notYet
// says what a record or scan it does not cover waits for.
func (s *Server) packCheckpoint(ctx context.Context) (cp translog.Checkpoint, signed []byte, notYet string, err error) {
	if !s.witnessed {
		cp, signed, err = s.latestCheckpoint(ctx)
		if consent.ErrorCode(err) == consent.ENOTFOUND {
			err = nil // an empty log: nothing is in a checkpoint yet
		}
		return cp, signed, "the log has not signed a checkpoint with every record and scan of this pack yet; retry in a moment", err
	}
	if signed, err = s.store.LatestWitnessed(ctx); err != nil || signed == nil {
		return cp, nil, "the witnesses have not cosigned a checkpoint with every record and scan of this pack yet; retry in a moment", err
	}
	cp, _, signed, err = s.policy.Open(signed)
	return cp, signed, "the witnesses have not cosigned a checkpoint with every record and scan of this pack yet; retry in a moment", err
}

// maxPackScans bounds the scans one pack holds: a year of daily scans fits.
const maxPackScans = 1000

// scansBetween returns site's scans recorded in [from, to), oldest first,
// each with its report.
func (s *Server) scansBetween(ctx context.Context, site string, from, to time.Time) ([]*consent.Scan, error) {
	var in []*consent.Scan
	before := uuid.Nil
	for {
		page, err := s.store.Scans(ctx, site, before, 100)
		if err != nil {
			return nil, err
		}
		for _, sc := range page {
			if sc.RecordedAt.Before(from) {
				page = nil // newest first: the rest are older still
				break
			}
			if sc.RecordedAt.Before(to) {
				in = append(in, sc)
			}
		}
		if len(in) > maxPackScans {
			return nil, consent.Errorf(consent.EINVALID, "the site recorded more than %d scans in this visitor's period: list them with the scans API instead", maxPackScans)
		}
		if len(page) < 100 {
			break
		}
		before = page[len(page)-1].ID
	}
	slices.Reverse(in)
	for i, sc := range in {
		full, err := s.store.ScanReport(ctx, site, sc.ID)
		if err != nil {
			return nil, err
		}
		in[i] = full
	}
	return in, nil
}

// proveScan proves a scan's log entry in cp (signed: its note), or
// answers EUNAVAILABLE while cp does not cover it.
func (s *Server) proveScan(ctx context.Context, sc *consent.Scan, cp translog.Checkpoint, signed []byte) (*translog.Proof, error) {
	idx := *sc.EntryIndex
	if signed == nil || idx >= cp.Size {
		return nil, consent.Errorf(consent.EUNAVAILABLE, "the scan of %s is not in a checkpoint that meets the witness policy yet; retry in a moment", sc.RecordedAt.UTC().Format(time.RFC3339))
	}
	entries, err := s.store.LogEntries(ctx, idx, idx+1)
	if err != nil {
		return nil, err
	}
	if len(entries) != 1 {
		return nil, fmt.Errorf("scan %s: the log has no entry %d", sc.ID, idx)
	}
	l, err := translog.ParseLeaf(entries[0])
	if err != nil {
		return nil, err
	}
	if l.Kind != translog.KindScan {
		return nil, fmt.Errorf("scan %s: entry %d is a %s entry, not a scan's", sc.ID, idx, l.Kind)
	}
	path, err := tlog.ProveRecord(cp.Size, idx, s.hashReader(ctx))
	if err != nil {
		return nil, err
	}
	return &translog.Proof{Index: idx, Salt: sc.EntrySalt, SiteTag: l.SiteTag, Path: path, Checkpoint: signed}, nil
}
