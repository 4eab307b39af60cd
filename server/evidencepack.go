package server

import (
	"bytes"
	"encoding/json"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

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
	for _, r := range p.Records {
		_, _, jwt, err := s.signReceipt(c, r)
		if err != nil {
			return err
		}
		var tp []byte
		if s.logKey != "" {
			// Under the newest checkpoint that meets the witness policy,
			// as the proof route proves.
			pr, err := s.cosignedProof(ctx, r)
			if consent.ErrorCode(err) == consent.EUNAVAILABLE {
				c.Response().Header().Set("Retry-After", "1")
			}
			if err != nil {
				return err
			}
			tp, p.Checkpoint = pr.Encode(), pr.Checkpoint
		}
		p.Receipts, p.Proofs = append(p.Receipts, jwt), append(p.Proofs, tp)
		var policy *translog.Policy
		if s.logKey != "" {
			policy = s.policy
		}
		p.Checks = append(p.Checks, proof.CheckReceipt(jwt, p.JWKS, tp, policy))
		if p.Versions[r.ConfigHash] == nil {
			// Read through the store's check: a version whose body no
			// longer hashes to its name is refused, not packed.
			if p.Versions[r.ConfigHash], err = s.store.Version(ctx, site.ID, r.ConfigHash); err != nil {
				return err
			}
		}
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
