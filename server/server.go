// Package server is Koekje's HTTP layer: echo routes, handlers, middleware and
// the table from error codes to statuses.
package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/koekje/koekje/config"
	"github.com/koekje/koekje/server/consent"
	"github.com/koekje/koekje/server/proof"
	"github.com/koekje/koekje/server/store"
	"github.com/koekje/koekje/server/translog"
	"github.com/koekje/koekje/static"
)

// Deps is everything the server needs; New takes nothing from globals.
type Deps struct {
	Config         *config.Config
	Store          store.Store
	Keys           *proof.Keys // signs receipts and checkpoints; shared with whatever else signs
	Log            *slog.Logger
	AccessLog      io.Writer // one JSON line per request; nil writes none
	TokenKey       []byte    // MAC key of visitor tokens, kept in the store
	AdminToken     string    // the --admin-token; may be empty when the config has tokens
	RateLimit      float64   // public POSTs per second per client address; 0 turns it off
	TrustedProxies []string  // CIDRs whose X-Forwarded-For and X-Forwarded-Proto are believed
	// PublicURL is the origin the server is reached at (https://consent.example.nl):
	// the issuer of receipts, the base of links, the "self" of site origins.
	// Never taken from a request's Host.
	PublicURL string
	Metrics   *Metrics // made here when nil; give it to wire the store's OnCommit
	LogKey    string   // the transparency log's verifier key; empty when no log is kept
	// Policy is the log's witness policy (C2SP tlog-policy), published at
	// /log/policy; nil is the policy of a log without witnesses. With
	// witnesses, the log publishes the checkpoints they cosigned.
	Policy *translog.Policy
	// SharedStore says several instances share the store: failed tokens
	// are counted in it.
	SharedStore bool
	// Degraded, when set, says why proof cannot advance ("" while it can):
	// /healthz then answers 200 with status "degraded" and the reason, so
	// a monitor sees it and a container health check does not restart the
	// server in a loop.
	Degraded func() string
	// LogReference is the log reference kept beside the key file: Verify
	// holds the database's log against it. Nil without one.
	LogReference *translog.Reference
	// LogGuard, when set, is the log's guard: the server publishes only
	// checkpoints it published (the reference file held them, synced,
	// first), in /log/checkpoint, proofs, receipts and tiles alike.
	LogGuard *translog.Guard
	// Precompress compresses every site's bundle in the background at
	// start, so a serving process has them ready before the first visitor;
	// otherwise a bundle is compressed when first asked for compressed.
	Precompress bool
}

// Server serves Koekje's HTTP API, banner and demo page.
type Server struct {
	echo      *echo.Echo
	cfg       *config.Config
	store     store.Store
	keys      *proof.Keys
	log       *slog.Logger
	accessLog slog.Handler
	bundles   map[string]*static.Bundle
	served    map[string]*servedBundle
	earlier   *earlierParts // the second parts of the sites' earlier banner versions
	tokens    *visitorTokens
	sessions  *sessions
	admins    *adminTokens
	limit     float64
	metrics   *Metrics
	exports   chan struct{} // a slot per export running
	logKey    string
	witnessed bool
	self      string       // the public URL's origin
	https     bool         // the public URL is https: HSTS on every answer
	warned    *sync.Map    // sites ("" for none) whose untrusted-proxy warning was logged
	proxies   []*net.IPNet // trusted reverse proxies
	failures  failureCounter
	refusals  *originRefusals
	deps      Deps     // what New was given, for Reload
	tokenIDs  [][]byte // IDs of the configured tokens, as sessions name them
	degraded  func() string
	logRef    *translog.Reference
	published *published // what /log/checkpoint serves of a witnessed log
	policy    *translog.Policy
}

// New builds the server: the banner bundle of every site (stored as a
// version, so records can refer to what was shown) and the routes.
func New(ctx context.Context, d Deps) (*Server, error) {
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	self, err := publicOrigin(d.PublicURL)
	if err != nil {
		return nil, err
	}
	if d.Keys == nil {
		return nil, fmt.Errorf("no signing keys")
	}
	if len(d.TokenKey) < 32 {
		return nil, fmt.Errorf("token key must be at least 32 bytes")
	}
	proxies, err := parseProxies(d.TrustedProxies)
	if err != nil {
		return nil, err
	}
	// Behind a proxy Koekje does not trust, every visitor of a first-party
	// site would share the proxy's address: one rate limit, one stored
	// network.
	for _, site := range d.Config.Sites {
		if site.FirstParty != nil && len(proxies) == 0 {
			return nil, fmt.Errorf("site %s is in first-party mode (its proxy forwards %s to Koekje): give the proxy's address with --trusted-proxies (KOEKJE_TRUSTED_PROXIES), else every visitor shares its address, one rate limit and one stored network", site.ID, site.FirstParty.URL)
		}
	}
	s := &Server{
		echo:      echo.New(),
		cfg:       d.Config,
		store:     d.Store,
		keys:      d.Keys,
		log:       d.Log,
		accessLog: newAccessLog(d.AccessLog),
		bundles:   map[string]*static.Bundle{},
		served:    map[string]*servedBundle{},
		earlier:   &earlierParts{},
		tokens:    newVisitorTokens(d.TokenKey),
		sessions:  newSessions(d.TokenKey),
		admins:    newAdminTokens(d.AdminToken, d.Config.Tokens),
		limit:     d.RateLimit,
		metrics:   d.Metrics,
		exports:   make(chan struct{}, maxExports),
		logKey:    d.LogKey,
		witnessed: d.Policy != nil && !d.Policy.Unwitnessed(),
		self:      self,
		https:     strings.HasPrefix(self, "https://"),
		refusals:  newOriginRefusals(),
		proxies:   proxies,
		failures:  newMemFailures(),
		degraded:  d.Degraded,
		logRef:    d.LogReference,
		published: newPublished(),
		warned:    &sync.Map{},
	}
	if d.LogGuard != nil {
		s.store = publishedStore{d.Store, d.LogGuard}
	}
	if d.LogKey != "" {
		if s.policy = d.Policy; s.policy == nil {
			if s.policy, err = translog.NewPolicy(d.LogKey, nil, 0); err != nil {
				return nil, err
			}
		}
		if !s.policy.HasLog(d.LogKey) {
			return nil, fmt.Errorf("the witness policy does not name the log's key %s", d.LogKey)
		}
	}
	// Instances sharing a store count failed tokens in it, so a guesser
	// cannot spread its guesses over them.
	if fs, ok := d.Store.(store.SharedFailures); ok && d.SharedStore {
		s.failures = storeFailures{store: fs, log: d.Log}
	}
	for _, sum := range s.admins.hashes {
		s.tokenIDs = append(s.tokenIDs, s.sessions.tokenID(sum))
	}
	// Sessions of tokens no longer configured (removed, or an admin token
	// that changed) end now, and stay ended if the token comes back.
	if n, err := d.Store.EndSessionsExcept(ctx, s.tokenIDs, time.Now()); err != nil {
		return nil, fmt.Errorf("end sessions of removed tokens: %w", err)
	} else if n > 0 {
		s.log.Info("console sessions ended: their token is no longer configured", "sessions", n)
	}
	s.sessions.secure = func(r *http.Request) bool {
		return strings.HasPrefix(s.self, "https:") || s.scheme(r) == "https"
	}
	if s.metrics == nil {
		s.metrics = NewMetrics()
	}
	s.deps = d
	s.deps.Metrics = s.metrics
	for _, site := range d.Config.Sites {
		b, err := static.BuildPlain(site)
		if err != nil {
			return nil, fmt.Errorf("build banner for %s: %w", site.ID, err)
		}
		if err := d.Store.PutVersion(ctx, site.ID, b.Hash, b.Version); err != nil {
			return nil, err
		}
		s.bundles[site.ID] = b
		s.served[site.ID] = newServedBundle(b)
	}
	if d.Precompress {
		go s.packAll(ctx)
	}
	s.echo.IPExtractor = ipExtractor(proxies)
	s.echo.HideBanner, s.echo.HidePort = true, true
	s.echo.HTTPErrorHandler = s.handleError
	s.routes()
	return s, nil
}

// Reload returns a server for cfg with everything else this one was given
// (store, keys, tokens, metrics) and this one's counts of failed tokens
// and refused origins, so a reload neither forgets a lockout nor a
// refusal. The caller swaps it in; this one is left as it was, so a
// configuration that fails to build leaves the server in use untouched.
func (s *Server) Reload(ctx context.Context, cfg *config.Config) (*Server, error) {
	d := s.deps
	d.Config = cfg
	n, err := New(ctx, d)
	if err != nil {
		return nil, err
	}
	n.failures, n.refusals = s.failures, s.refusals
	n.warned = s.warned
	n.earlier = s.earlier
	return n, nil
}

// ServeHTTP makes the server an http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.echo.ServeHTTP(w, r) }

// Bundle returns the banner bundle of a site, or nil.
func (s *Server) Bundle(site string) *static.Bundle {
	if b := s.served[site]; b != nil {
		b.pack()
	}
	return s.bundles[site]
}

// HTTPServer wraps the handler in an http.Server with timeouts, so slow or
// stalled clients cannot hold connections open.
func (s *Server) HTTPServer(addr string) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           s,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
}

// publicOrigin checks the public URL and returns it as an origin: scheme
// and host, no path.
func publicOrigin(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("public URL %q must be an origin such as https://consent.example.nl (scheme and host, no path)", raw)
	}
	return u.Scheme + "://" + strings.ToLower(u.Host), nil
}

func parseProxies(trusted []string) ([]*net.IPNet, error) {
	var nets []*net.IPNet
	for _, c := range trusted {
		_, n, err := net.ParseCIDR(strings.TrimSpace(c))
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %q: %w", c, err)
		}
		nets = append(nets, n)
	}
	return nets, nil
}

// ipExtractor takes the peer address, or X-Forwarded-For when the peer is a
// trusted proxy. Nothing is trusted by default, not even loopback or private
// networks (which echo would trust).
func ipExtractor(trusted []*net.IPNet) echo.IPExtractor {
	if len(trusted) == 0 {
		return echo.ExtractIPDirect()
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, n := range trusted {
		opts = append(opts, echo.TrustIPRange(n))
	}
	return echo.ExtractIPFromXFFHeader(opts...)
}

// fromProxy reports whether the request's peer is a trusted proxy.
func (s *Server) fromProxy(r *http.Request) bool {
	if len(s.proxies) == 0 {
		return false
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	for _, n := range s.proxies {
		if ip != nil && n.Contains(ip) {
			return true
		}
	}
	return false
}

// warnUntrustedProxy says once a site, in the log, that requests come with
// forwarded headers from a peer that is not a trusted proxy: behind a
// proxy not named in --trusted-proxies every visitor shares the proxy's
// address, so one rate-limit budget and one count of failed tokens. The
// site is the one the request is for, where it says (a first-party site's
// host, the site in the path or the banner's name), so that an operator
// with many sites knows whose proxy it is. A peer on a public address is
// named by its network, as visitors are.
func (s *Server) warnUntrustedProxy(c echo.Context) {
	r := c.Request()
	if (r.Header.Get("X-Forwarded-For") == "" && r.Header.Get("Forwarded") == "" && r.Header.Get("X-Real-Ip") == "") || s.fromProxy(r) {
		return
	}
	site := s.requestSite(c)
	if _, done := s.warned.LoadOrStore(site, true); done {
		return
	}
	peer, _, _ := net.SplitHostPort(r.RemoteAddr)
	if ip := net.ParseIP(peer); ip == nil || !(ip.IsLoopback() || ip.IsPrivate()) {
		peer = consent.TruncateIP(peer)
	}
	msg := "requests carry forwarded headers (X-Forwarded-For) from a peer that is not a trusted proxy: they are ignored, and every visitor behind it shares one address, one rate limit and one count of failed tokens; if it is your reverse proxy, give its address with --trusted-proxies (KOEKJE_TRUSTED_PROXIES)"
	if site == "" {
		s.log.Warn(msg, "peer", peer)
		return
	}
	if s.cfg.Site(site).FirstParty != nil {
		msg += "; site " + site + " is in first-party mode: its proxy must be trusted, or the site's visitors share one network"
	} else {
		msg += "; the requests are for site " + site
	}
	s.log.Warn(msg, "peer", peer, "site", site)
}

// requestSite is the configured site a request is for, as far as it says:
// a first-party site whose host it asked, the site in its path, or the
// site of the banner it asks for; "" for none.
func (s *Server) requestSite(c echo.Context) string {
	for _, site := range s.cfg.Sites {
		if s.viaProxy(site, c.Request()) {
			return site.ID
		}
	}
	id := c.Param("site")
	if c.Path() == bundleRoute {
		id, _, _ = strings.Cut(strings.TrimSuffix(c.Param("file"), ".js"), ".")
	}
	if s.cfg.Site(id) == nil {
		return ""
	}
	return id
}

// scheme is the scheme the client used: https over TLS, or what a trusted
// proxy says in X-Forwarded-Proto; echo's Context.Scheme would believe
// that header from anyone.
func (s *Server) scheme(r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	if s.fromProxy(r) && strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
		return "https"
	}
	return "http"
}

// publishedStore is the store as the log publishes it: its newest
// checkpoint is the newest the guard published.
type publishedStore struct {
	store.Store
	guard *translog.Guard
}

func (p publishedStore) LatestCheckpoint(ctx context.Context) ([]byte, error) {
	return p.guard.Newest(ctx, p.Store)
}
