package server

import (
	"log/slog"
	"sort"
	"sync"
	"time"
)

// originRefusals counts the choices refused because their origin is not
// one of the site's, by site and origin over the last 24 hours, so that an
// origin missing from the configuration shows in the log, the metrics and
// the console instead of only in the visitor's browser. The counts are this
// instance's and start again with it.
type originRefusals struct {
	mu   sync.Mutex
	by   map[refusalKey]*refusalCount
	kept map[string]int // origins kept per site
	now  func() time.Time
}

type refusalKey struct{ site, origin string }

// refusalCount holds a count per hour of the last day and when the origin
// was last logged.
type refusalCount struct {
	hours    [24]int
	hourOf   [24]int64 // the hour (Unix hours) each slot counts
	logged   time.Time
	unlogged int // refused since the last log line
}

const (
	// maxRefusedOrigins bounds the origins kept per site: the Origin
	// header is the client's to choose. Past it, new origins count under
	// otherOrigins.
	maxRefusedOrigins = 50
	otherOrigins      = "(other origins)"
	maxOriginLength   = 200
	// refusalLogEvery is how often one site and origin is logged again.
	refusalLogEvery = 10 * time.Minute
)

func newOriginRefusals() *originRefusals {
	return &originRefusals{by: map[refusalKey]*refusalCount{}, kept: map[string]int{}, now: time.Now}
}

// refuse counts one refused choice and logs it, at most once per site and
// origin every refusalLogEvery, with the count since the last line.
func (r *originRefusals) refuse(log *slog.Logger, site, origin string) {
	if len(origin) > maxOriginLength {
		origin = origin[:maxOriginLength] + "…"
	}
	now := r.now()
	hour := now.Unix() / 3600
	r.mu.Lock()
	k := refusalKey{site, origin}
	c := r.by[k]
	if c == nil {
		if r.kept[site] >= maxRefusedOrigins {
			k.origin = otherOrigins
			c = r.by[k]
		}
		if c == nil {
			c = &refusalCount{}
			r.by[k] = c
			r.kept[site]++
		}
	}
	slot := hour % 24
	if c.hourOf[slot] != hour {
		c.hourOf[slot], c.hours[slot] = hour, 0
	}
	c.hours[slot]++
	c.unlogged++
	n, logNow := c.unlogged, now.Sub(c.logged) >= refusalLogEvery
	if logNow {
		c.logged, c.unlogged = now, 0
	}
	r.mu.Unlock()
	if logNow {
		log.Warn("choice refused: the origin is not one of the site's origins; add it to the site's origins in the configuration if the banner runs there",
			"site", site, "origin", k.origin, "refused", n)
	}
}

// refusedOrigin is one origin's count of refused choices.
type refusedOrigin struct {
	Origin string
	Count  int
}

// last24h returns the origins refused for site in the last 24 hours, the
// most refused first.
func (r *originRefusals) last24h(site string) []refusedOrigin {
	hour := r.now().Unix() / 3600
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []refusedOrigin
	for k, c := range r.by {
		if k.site != site {
			continue
		}
		n := 0
		for i, h := range c.hourOf {
			if hour-h < 24 {
				n += c.hours[i]
			}
		}
		if n > 0 {
			out = append(out, refusedOrigin{k.origin, n})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Origin < out[j].Origin
	})
	return out
}
