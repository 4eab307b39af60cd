package server

import (
	"context"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/koekje/koekje/server/consent"
	"github.com/koekje/koekje/server/store"
)

// Guessing admin tokens: after failLimit failed console sign-ins or bearer
// tokens from one client network (/24, /48) within failWindow, every attempt
// from it is answered 429 for failBase, doubling with each further failure
// up to failMax. A success does not reset the count: an attacker sharing a
// network with a working audit job would otherwise guess for ever.
const (
	failLimit  = 10
	failWindow = time.Minute
	failBase   = time.Minute
	failMax    = time.Hour
)

// failureCounter counts failed attempts per client network. The one in
// memory counts per instance; behind a load balancer a store shared by the
// instances can implement it instead.
type failureCounter interface {
	// Wait returns how long network must wait before its next attempt, or 0.
	Wait(network string, now time.Time) time.Duration
	// Fail records a failed attempt.
	Fail(network string, now time.Time)
}

// memFailures is a failureCounter in memory, bounded to maxNetworks.
type memFailures struct {
	mu   sync.Mutex
	nets map[string]*failures
	max  int
}

type failures struct {
	count       int
	last, until time.Time
}

// maxNetworks bounds the counter's memory (about 100 bytes a network).
const maxNetworks = 100000

func newMemFailures() *memFailures {
	return &memFailures{nets: map[string]*failures{}, max: maxNetworks}
}

// expired reports whether f is forgotten: a quiet window after its last
// failure and after its block.
func (f *failures) expired(now time.Time) bool {
	return !now.Before(f.last.Add(failWindow)) && !now.Before(f.until.Add(failWindow))
}

func (m *memFailures) Wait(network string, now time.Time) time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	if f := m.nets[network]; f != nil && now.Before(f.until) {
		return f.until.Sub(now)
	}
	return 0
}

func (m *memFailures) Fail(network string, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f := m.nets[network]
	if f == nil {
		if len(m.nets) >= m.max {
			m.evict(now)
		}
		f = &failures{}
		m.nets[network] = f
	}
	*f = f.next(now)
}

// next is the count after one more failure at now: a forgotten count
// starts again; from failLimit on, each failure blocks the network for
// twice as long as the one before, up to failMax.
func (f failures) next(now time.Time) failures {
	if f.expired(now) {
		f = failures{}
	}
	f.count++
	f.last = now
	if f.count >= failLimit {
		wait := failMax
		if n := f.count - failLimit; n < 16 {
			wait = min(failBase<<n, failMax)
		}
		f.until = now.Add(wait)
	}
	return f
}

// storeFailures is a failureCounter in a shared store. A store that does
// not answer blocks no one (its error is logged): the token is still
// checked, so that fails open only on the counting.
type storeFailures struct {
	store store.SharedFailures
	log   *slog.Logger
}

func (s storeFailures) Wait(network string, now time.Time) time.Duration {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, _, until, err := s.store.Failures(ctx, network)
	if err != nil {
		s.log.Warn("reading failed tokens", "err", err)
		return 0
	}
	if now.Before(until) {
		return until.Sub(now)
	}
	return 0
}

func (s storeFailures) Fail(network string, now time.Time) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := s.store.AddFailure(ctx, network, func(count int, last, until time.Time) (int, time.Time, time.Time) {
		f := failures{count: count, last: last, until: until}.next(now)
		return f.count, f.last, f.until
	})
	if err != nil {
		s.log.Warn("counting a failed token", "err", err)
	}
}

// evict forgets expired networks and, if that is not enough, networks
// that are not blocked now, down to three quarters of the bound: one walk
// over the map makes room for many networks, so a flood of new networks
// costs no walk per failure.
func (m *memFailures) evict(now time.Time) {
	target := m.max * 3 / 4
	for k, f := range m.nets {
		if f.expired(now) {
			delete(m.nets, k)
		}
	}
	for k, f := range m.nets {
		if len(m.nets) <= target {
			return
		}
		if !now.Before(f.until) {
			delete(m.nets, k)
		}
	}
}

// tooManyFailures answers a blocked network: 429 with Retry-After.
func tooManyFailures(c echo.Context, wait time.Duration) error {
	secs := strconv.Itoa(int(math.Ceil(wait.Seconds())))
	c.Response().Header().Set("Retry-After", secs)
	return consent.Errorf(consent.ERATELIMIT, "too many failed tokens from your network; retry after %s s", secs)
}

// Failed tokens count per client network in one of two places: on the
// routes made for admin and audit tokens (and the console's sign-in) in the
// network's own count, on the public visitor routes, where anyone may send
// a bearer, in its count under visitorRoutes. Junk tokens on a visitor
// route block further tokens there only, never an admin or audit token on
// the routes made for it; a network blocked for guessing on those is
// blocked on the visitor routes too, so it cannot move its guessing there.
const visitorRoutes = "visitor-routes "

// bearerScope returns the scope of the request's bearer token, "" when it
// has none or a wrong one (a wrong one counts as a failure of its network,
// on a visitor route under visitorRoutes), or the 429 of a network that
// failed too often.
func (s *Server) bearerScope(c echo.Context, visitorRoute bool) (string, error) {
	tok, ok := bearerToken(c.Request())
	if !ok {
		return "", nil
	}
	network, now := consent.TruncateIP(c.RealIP()), time.Now()
	wait := s.failures.Wait(network, now)
	if visitorRoute {
		network = visitorRoutes + network
		wait = max(wait, s.failures.Wait(network, now))
	}
	if wait > 0 {
		return "", tooManyFailures(c, wait)
	}
	scope, name, _ := s.admins.find(tok)
	if scope == "" {
		s.failures.Fail(network, now)
	}
	c.Set(ctxToken, name)
	return scope, nil
}

// checkToken returns the scope and SHA-256 of a token typed into the
// console's sign-in form ("" when it is wrong, which counts as a failure),
// or how long its network must wait.
func (s *Server) checkToken(c echo.Context, tok string) (string, []byte, time.Duration) {
	network, now := consent.TruncateIP(c.RealIP()), time.Now()
	if wait := s.failures.Wait(network, now); wait > 0 {
		return "", nil, wait
	}
	scope, _, sum := s.admins.find(tok)
	if scope == "" {
		s.failures.Fail(network, now)
	}
	return scope, sum, 0
}
