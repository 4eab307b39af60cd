package schedule

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/koekje/koekje/config"
	"github.com/koekje/koekje/server/consent"
	"github.com/koekje/koekje/server/scan"
	"github.com/koekje/koekje/server/scan/chromium"
	"github.com/koekje/koekje/server/store"
)

// Store is what the scheduler needs of the store: the scans, and a lease
// so that of several instances sharing a store one runs each slot's scan.
type Store interface {
	store.Scans
	store.Leases
}

// Scheduler runs the sites' scheduled scans: at the start of each slot,
// one site after the other, in one Chromium of its own that it starts for
// the slot's scans and stops after them. It only looks at pages: it never
// records a choice.
type Scheduler struct {
	Store Store
	Sites func() *config.Config // the configuration in use (reloads take effect)
	Log   *slog.Logger
	// Holder names this instance for the leases.
	Holder string
	// Chrome is the browser binary; HostResolverRules is passed to it
	// (tests map made-up names to local servers).
	Chrome, HostResolverRules string
	// PageTimeout and ScanTimeout bound one page and one site's scan
	// (defaults 20 s and 10 minutes).
	PageTimeout, ScanTimeout time.Duration
	// Retry is how long after a scan that could not run (no browser, a
	// store error) it is tried again within its slot (default 15 minutes).
	Retry time.Duration
	// Recorded, when set, is called with each scan recorded; Judged with
	// each site's status after each look (metrics).
	Recorded func(site, verdict string)
	Judged   func(site string, st *Status)
	Now      func() time.Time

	mu       sync.Mutex
	retry    map[string]time.Time // site → not before
	reported map[string]time.Time // site → the newest missing slot logged
}

// leaseName is the lease that gives one site's scheduled scan to one
// instance.
func leaseName(site string) string { return "scan/" + site }

func (s *Scheduler) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Scheduler) scanTimeout() time.Duration {
	if s.ScanTimeout > 0 {
		return s.ScanTimeout
	}
	return 10 * time.Minute
}

// Run looks every interval (a minute in koekje serve) until ctx ends.
func (s *Scheduler) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		s.Tick(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Tick runs the scans that are due now, and tells Judged each scheduled
// site's status; it returns the scans it recorded.
func (s *Scheduler) Tick(ctx context.Context) []*consent.Scan {
	cfg := s.Sites()
	var due []*config.Site
	for _, site := range cfg.Sites {
		if site.Scan == nil {
			continue
		}
		done, err := s.scanned(ctx, site)
		if err != nil {
			s.Log.Error("scheduled scan: reading the recorded scans", "site", site.ID, "err", err.Error())
			continue
		}
		if !done && s.mayTry(site.ID) {
			due = append(due, site)
		}
	}
	var recorded []*consent.Scan
	if len(due) > 0 {
		recorded = s.scanAll(ctx, due)
	}
	now := s.now()
	for _, site := range cfg.Sites {
		if site.Scan == nil {
			continue
		}
		st, err := StatusOf(ctx, s.Store, site, now.AddDate(0, 0, -30), now)
		if err != nil {
			s.Log.Error("scheduled scan: judging the recorded scans", "site", site.ID, "err", err.Error())
			continue
		}
		s.noteMissing(site, st)
		if s.Judged != nil {
			s.Judged(site.ID, st)
		}
	}
	return recorded
}

// scanned reports whether site's current slot holds a scheduled scan.
func (s *Scheduler) scanned(ctx context.Context, site *config.Site) (bool, error) {
	slot := site.Scan.Slot(s.now())
	before := uuid.Nil
	for {
		page, err := s.Store.Scans(ctx, site.ID, before, 50)
		if err != nil {
			return false, err
		}
		for _, sc := range page {
			if sc.Schedule != "" && !sc.StartedAt.Before(slot) {
				return true, nil
			}
			if sc.StartedAt.Before(slot) {
				return false, nil
			}
		}
		if len(page) < 50 {
			return false, nil
		}
		before = page[len(page)-1].ID
	}
}

// noteMissing logs each slot found missing once (per process): an ERROR
// line, as a failed scan gets.
func (s *Scheduler) noteMissing(site *config.Site, st *Status) {
	if len(st.Missing) == 0 {
		return
	}
	newest := st.Missing[len(st.Missing)-1]
	s.mu.Lock()
	if s.reported == nil {
		s.reported = map[string]time.Time{}
	}
	seen := !newest.After(s.reported[site.ID])
	s.reported[site.ID] = newest
	s.mu.Unlock()
	if !seen {
		s.Log.Error("scheduled scan missing: a slot passed without a recorded scan", "site", site.ID, "every", site.Scan.Every,
			"slot", newest.Format(time.RFC3339), "missing_in_30_days", len(st.Missing))
	}
}

func (s *Scheduler) mayTry(site string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.now().Before(s.retry[site])
}

func (s *Scheduler) tryLater(site string) {
	d := s.Retry
	if d <= 0 {
		d = 15 * time.Minute
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.retry == nil {
		s.retry = map[string]time.Time{}
	}
	s.retry[site] = s.now().Add(d)
}

// scanAll scans the due sites one after the other in one browser, each
// under its lease.
func (s *Scheduler) scanAll(ctx context.Context, due []*config.Site) []*consent.Scan {
	var b *chromium.Browser
	defer func() {
		if b != nil {
			b.Close()
		}
	}()
	var out []*consent.Scan
	for _, site := range due {
		if ctx.Err() != nil {
			break
		}
		// The lease outlives the scan, so no other instance starts the
		// same slot's scan while this one runs; the recorded scan then
		// tells every instance the slot is done.
		ok, err := s.Store.Lease(ctx, leaseName(site.ID), s.Holder, s.scanTimeout()+2*time.Minute)
		if err != nil {
			s.Log.Error("scheduled scan: taking the lease", "site", site.ID, "err", err.Error())
			continue
		}
		if !ok {
			continue // another instance scans it
		}
		if done, err := s.scanned(ctx, site); err != nil || done {
			continue // another instance finished it before the lease was ours
		}
		if b == nil {
			if b, err = chromium.StartBrowser(ctx, chromium.Options{Chrome: s.Chrome, HostResolverRules: s.HostResolverRules}); err != nil {
				b = nil
				s.failed(site, fmt.Errorf("starting Chromium: %w", err))
				continue
			}
		}
		sc, err := s.scanOne(ctx, b, site)
		if err != nil {
			s.failed(site, err)
			continue
		}
		out = append(out, sc)
	}
	return out
}

func (s *Scheduler) failed(site *config.Site, err error) {
	s.tryLater(site.ID)
	msg := "scheduled scan: could not scan; the slot shows missing unless a later try within it succeeds"
	if errors.Is(err, chromium.ErrNoChrome) {
		msg = "scheduled scan: no Chromium to scan with (install chromium, or set CHROME_PATH); the slot shows missing"
	}
	s.Log.Error(msg, "site", site.ID, "every", site.Scan.Every, "err", err.Error())
}

// scanOne scans one site's schedule's pages and records the report.
func (s *Scheduler) scanOne(ctx context.Context, b *chromium.Browser, site *config.Site) (*consent.Scan, error) {
	sched := site.Scan
	r, err := chromium.Run(ctx, chromium.Options{Site: site, URLs: sched.Pages, Pages: sched.PagesPerProfile,
		Browser: b, PageTimeout: s.PageTimeout, Timeout: s.scanTimeout()})
	if err != nil {
		return nil, err
	}
	r.Schedule = sched.Every
	sc, whole, err := r.Recorded(sched.Strict)
	if err != nil {
		return nil, err
	}
	if whole > 0 {
		s.Log.Warn("scheduled scan: the report is over the store's limit; it is recorded without the profiles' cookies, storage keys and requests (the findings are whole)",
			"site", site.ID, "bytes", whole, "limit", consent.MaxScanReport)
	}
	if err := s.Store.AddScan(ctx, sc); err != nil {
		return nil, fmt.Errorf("record the scan: %w", err)
	}
	level := slog.LevelInfo
	if sc.Verdict != scan.VerdictClean {
		level = slog.LevelError
	}
	s.Log.Log(ctx, level, "scheduled scan recorded", "site", site.ID, "scan", sc.ID.String(), "verdict", sc.Verdict,
		"violations", sc.Violations, "undeclared", sc.Undeclared, "stale", sc.Stale, "pages", len(sc.URLs))
	if s.Recorded != nil {
		s.Recorded(site.ID, sc.Verdict)
	}
	return sc, nil
}
