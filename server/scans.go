package server

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/koekje/koekje/config"
	"github.com/koekje/koekje/server/consent"
	"github.com/koekje/koekje/server/scan"
)

const scanPage = 50

// scanView is a recorded scan as the API lists it.
type scanView struct {
	*consent.Scan
	Clean bool `json:"clean"`
	// Current says whether the scan held the pages against the banner
	// version this server serves now.
	Current   bool   `json:"current_config"`
	ReportURL string `json:"report_url"`
}

func (s *Server) viewScan(site *config.Site, sc *consent.Scan) scanView {
	return scanView{Scan: sc, Clean: sc.Clean(), Current: sc.ConfigHash == s.bundles[site.ID].Hash,
		ReportURL: "/api/v1/sites/" + site.ID + "/scans/" + sc.ID.String()}
}

// listScans lists a site's recorded scans, newest first; next_cursor, when
// present, fetches the older ones.
func (s *Server) listScans(c echo.Context) error {
	site, err := s.pathSite(c)
	if err != nil {
		return err
	}
	limit, before := scanPage, uuid.Nil
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > consent.MaxScanPage {
			return consent.FieldErrorf(consent.EINVALID, "limit", "must be a whole number from 1 to %d", consent.MaxScanPage)
		}
		limit = n
	}
	if v := c.QueryParam("cursor"); v != "" {
		if before, err = uuid.Parse(v); err != nil || before.String() != v {
			return consent.FieldErrorf(consent.EINVALID, "cursor", "must be the next_cursor of an earlier page")
		}
	}
	scans, err := s.store.Scans(c.Request().Context(), site.ID, before, limit+1)
	if err != nil {
		return err
	}
	out := map[string]any{"site": site.ID}
	if len(scans) > limit {
		scans = scans[:limit]
		out["next_cursor"] = scans[limit-1].ID.String()
	}
	views := make([]scanView, len(scans))
	for i, sc := range scans {
		views[i] = s.viewScan(site, sc)
	}
	out["scans"] = views
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, out)
}

// scanReport answers with one recorded report: the JSON report as the scan
// wrote it, or with ?format=text the report a site owner reads.
func (s *Server) scanReport(c echo.Context) error {
	site, err := s.pathSite(c)
	if err != nil {
		return err
	}
	format := c.QueryParam("format")
	if format == "" {
		format = "json"
	}
	if format != "json" && format != "text" {
		return consent.FieldErrorf(consent.EINVALID, "format", "must be json or text")
	}
	id, err := uuid.Parse(c.Param("id"))
	if err != nil || id.String() != c.Param("id") {
		return consent.FieldErrorf(consent.EINVALID, "id", "not a scan ID (a UUID in canonical form)")
	}
	sc, err := s.store.ScanReport(c.Request().Context(), site.ID, id)
	if err != nil {
		return err
	}
	h := c.Response().Header()
	h.Set("Cache-Control", "private, max-age=86400, immutable")
	name := site.ID + "-scan-" + sc.StartedAt.Format("20060102-150405")
	if format == "json" {
		h.Set("Content-Disposition", `attachment; filename="`+name+`.json"`)
		return c.JSONBlob(http.StatusOK, sc.Report)
	}
	var r scan.Report
	if err := json.Unmarshal(sc.Report, &r); err != nil {
		return err
	}
	var b bytes.Buffer
	if err := r.Write(&b, "text", false); err != nil {
		return err
	}
	h.Set("Content-Disposition", `attachment; filename="`+name+`.txt"`)
	return c.Blob(http.StatusOK, "text/plain; charset=utf-8", b.Bytes())
}
