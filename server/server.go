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
	"time"

	"github.com/labstack/echo/v4"

	"github.com/koekje/koekje/config"
	"github.com/koekje/koekje/server/proof"
	"github.com/koekje/koekje/static"
)

// Deps is everything the server needs; New takes nothing from globals.
type Deps struct {
	Config         *config.Config
	Store          Store
	Keys           *proof.Keys // signs receipts and checkpoints; shared with whatever else signs
	Log            *slog.Logger
	AccessLog      io.Writer // one JSON line per request; nil writes none
	TokenKey       []byte    // MAC key of visitor tokens, kept in the store
	AdminToken     string    // the --admin-token; may be empty when the config has tokens
	RateLimit      float64   // public POSTs per second per client address; 0 turns it off
	TrustedProxies []string  // CIDRs whose X-Forwarded-For is believed
	Metrics        *Metrics  // made here when nil; give it to wire the store's OnCommit
	LogKey         string    // the transparency log's verifier key; empty when no log is kept
	Witnessed      bool      // witnesses cosign the log: publish only checkpoints they cosigned
}

// Store is what the handlers need of the consent store, declared in pieces
// beside the handlers that use them.
type Store interface {
	recorder
	histories
	auditor
	logReader
	// Ping checks that the store can be read.
	Ping(ctx context.Context) error
}

// Server serves Koekje's HTTP API, banner and demo page.
type Server struct {
	echo      *echo.Echo
	cfg       *config.Config
	store     Store
	keys      *proof.Keys
	log       *slog.Logger
	accessLog slog.Handler
	bundles   map[string]*static.Bundle
	served    map[string]*servedBundle
	tokens    *visitorTokens
	sessions  *sessions
	admins    *adminTokens
	limit     float64
	metrics   *Metrics
	exports   chan struct{} // a slot per export running
	logKey    string
	witnessed bool
}

// New builds the server: the banner bundle of every site (stored as a
// version, so records can refer to what was shown) and the routes.
func New(ctx context.Context, d Deps) (*Server, error) {
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Keys == nil {
		return nil, fmt.Errorf("no signing keys")
	}
	if len(d.TokenKey) < 32 {
		return nil, fmt.Errorf("token key must be at least 32 bytes")
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
		tokens:    newVisitorTokens(d.TokenKey),
		sessions:  newSessions(d.TokenKey),
		admins:    newAdminTokens(d.AdminToken, d.Config.Tokens),
		limit:     d.RateLimit,
		metrics:   d.Metrics,
		exports:   make(chan struct{}, maxExports),
		logKey:    d.LogKey,
		witnessed: d.Witnessed,
	}
	if s.metrics == nil {
		s.metrics = NewMetrics()
	}
	for _, site := range d.Config.Sites {
		b, err := static.Build(site)
		if err != nil {
			return nil, fmt.Errorf("build banner for %s: %w", site.ID, err)
		}
		if err := d.Store.PutVersion(ctx, site.ID, b.Hash, b.Version); err != nil {
			return nil, err
		}
		s.bundles[site.ID] = b
		s.served[site.ID] = newServedBundle(b)
	}
	ipx, err := ipExtractor(d.TrustedProxies)
	if err != nil {
		return nil, err
	}
	s.echo.IPExtractor = ipx
	s.echo.HideBanner, s.echo.HidePort = true, true
	s.echo.HTTPErrorHandler = s.handleError
	s.routes()
	return s, nil
}

// ServeHTTP makes the server an http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.echo.ServeHTTP(w, r) }

// Bundle returns the banner bundle of a site, or nil.
func (s *Server) Bundle(site string) *static.Bundle { return s.bundles[site] }

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

// ipExtractor takes the peer address, or X-Forwarded-For when the peer is a
// trusted proxy. Nothing is trusted by default, not even loopback.
func ipExtractor(trusted []string) (echo.IPExtractor, error) {
	if len(trusted) == 0 {
		return echo.ExtractIPDirect(), nil
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, c := range trusted {
		_, n, err := net.ParseCIDR(c)
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %q: %w", c, err)
		}
		opts = append(opts, echo.TrustIPRange(n))
	}
	return echo.ExtractIPFromXFFHeader(opts...), nil
}
