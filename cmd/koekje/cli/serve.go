package cli

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mattn/go-isatty"

	"github.com/koekje/koekje/config"
	"github.com/koekje/koekje/server"
	"github.com/koekje/koekje/server/proof"
	"github.com/koekje/koekje/server/scan/chromium"
	"github.com/koekje/koekje/server/schedule"
	"github.com/koekje/koekje/server/store"
	"github.com/koekje/koekje/server/translog"
)

func serveCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var o options
	fs := o.flags("serve", getenv, stderr)
	fs.StringVar(&o.addr, "addr", envOr(getenv, "KOEKJE_ADDR", "127.0.0.1:8080"), "listen address (KOEKJE_ADDR)")
	fs.StringVar(&o.adminToken, "admin-token", getenv("KOEKJE_ADMIN_TOKEN"), "admin bearer token; one is generated when empty (KOEKJE_ADMIN_TOKEN)")
	fs.StringVar(&o.trustedProxies, "trusted-proxies", getenv("KOEKJE_TRUSTED_PROXIES"), "comma-separated CIDRs of reverse proxies whose X-Forwarded-For and X-Forwarded-Proto are believed (KOEKJE_TRUSTED_PROXIES)")
	fs.StringVar(&o.publicURL, "public-url", getenv("KOEKJE_PUBLIC_URL"), "the origin the server is reached at, such as https://consent.example.nl: receipts' issuer, links, the self origin; http:// + --addr when empty (KOEKJE_PUBLIC_URL)")
	defRate := 20.0
	if v := getenv("KOEKJE_RATE_LIMIT"); v != "" {
		r, err := strconv.ParseFloat(v, 64)
		if err != nil || r < 0 {
			return fmt.Errorf("KOEKJE_RATE_LIMIT: %q is not a number of requests per second", v)
		}
		defRate = r
	}
	fs.Float64Var(&o.rateLimit, "rate-limit", defRate, "public POSTs per second per client network; 0 turns it off (KOEKJE_RATE_LIMIT)")
	var witnesses []*translog.WitnessClient
	fs.Func("witness", "a witness as URL=KEY: checkpoints go to it every 10 s; repeat for more", witnessFlag(&witnesses))
	policy := fs.Int("witness-policy", 0, "cosignatures a checkpoint needs before it is published (default: every witness)")
	witnessEvery := fs.Duration("witness-interval", 10*time.Second, "how often the newest checkpoint goes to the witnesses, when the log grew")
	witnessTimeout := fs.Duration("witness-timeout", 10*time.Second, "how long a witness may take to answer before it counts as silent")
	scanPageTimeout := fs.Duration("scan-page-timeout", 20*time.Second, "scheduled scans: longest one page may take to load and settle; a page past it is not scanned")
	scanTimeout := fs.Duration("scan-timeout", 10*time.Minute, "scheduled scans: longest one site's scan may take")
	acceptLogState := fs.Bool("accept-log-state", false, "take the database's log as it is for the reference of what this server signed (after a move to a new machine without the reference file, never after restoring a backup)")
	fs.Int64Var(&o.maxDBSize, "max-db-size", 0, "cap the database at this many MiB; writes past it get 503 until there is room (KOEKJE_MAX_DB_SIZE; 0: no cap)")
	if v := getenv("KOEKJE_MAX_DB_SIZE"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("KOEKJE_MAX_DB_SIZE: %q is not a number of MiB", v)
		}
		o.maxDBSize = n
	}
	if err := parseAnywhere(fs, args); err != nil {
		return err
	}
	if o.rateLimit < 0 {
		return errors.New("--rate-limit must not be negative")
	}
	if *scanPageTimeout <= 0 || *scanTimeout <= 0 {
		return errors.New("--scan-page-timeout and --scan-timeout must be more than 0")
	}
	if n := len(o.adminToken); n > 0 && n < minAdminToken {
		return fmt.Errorf("the admin token (--admin-token, KOEKJE_ADMIN_TOKEN) has %d characters, fewer than %d: make one with \"koekje token\" (the token is on its first line), or give none to have one generated", n, minAdminToken)
	}
	publicGiven := o.publicURL != ""
	if o.publicURL == "" {
		o.publicURL = "http://" + o.addr
		if host, port, err := net.SplitHostPort(o.addr); err == nil && host == "" {
			o.publicURL = "http://localhost:" + port
		}
	}
	logs := newLogWriter(stderr)
	defer logs.Close()
	log := slog.New(slog.NewJSONHandler(logs, nil))
	// The server keeps a few MB live and allocates per request: collecting
	// at 5× the live heap instead of 2× spends ~20 MB to do a quarter of the
	// collection work. GOGC, when set, decides instead.
	if getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}

	cfg, err := loadConfig(o.config)
	if err != nil {
		return err
	}
	if !strings.Contains(o.db, "://") {
		release, err := lockServe(o.db)
		if err != nil {
			return err
		}
		defer release()
	}
	db, err := o.openDB(log)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.LimitSize(ctx, o.maxDBSize<<20); err != nil {
		return err
	}
	key, err := db.Secret(ctx, store.VisitorTokenSecret, 64)
	if err != nil {
		return err
	}
	keys, err := proof.OpenKeys(ctx, db)
	if err != nil {
		return err
	}
	logKey, guard, err := startLog(ctx, db, log, logOrigin(o.publicURL), publicGiven || loopback(o.addr), func(logKey string) (*translog.Guard, error) {
		// The store signs only trees the guard proved extend the
		// reference; while it holds, records wait in the log's queue. A
		// reference of the log's earlier name follows its successor.
		if err := followSuccessor(ctx, db, logKey, log); err != nil {
			return nil, err
		}
		return translog.CheckLogState(ctx, db, db.KeyFile(), log, logKey, witnesses, *acceptLogState)
	})
	if err != nil {
		return fmt.Errorf("transparency log: %w", err)
	}
	if o.shared() && len(witnesses) == 0 {
		log.Warn("several instances without a witness: each instance keeps its own reference of what the log signed, so a restored database is caught only by instances that signed or read a newer checkpoint; configure a witness (--witness)")
	}
	go guard.Keep(ctx, db, logKey)
	var wg *translog.Witnessing // set below, before serving, when witnesses are configured
	degradedWhy := func() string {
		var why []string
		if r := guard.Reason(); r != "" {
			why = append(why, r)
		}
		if wg != nil {
			if r := wg.Degraded(); r != "" {
				why = append(why, r)
			}
		}
		return strings.Join(why, "; ")
	}
	if o.adminToken == "" && len(cfg.Tokens) == 0 {
		if o.adminToken, err = generatedToken(o.localBase(), stderr, log); err != nil {
			return err
		}
	}
	var proxies []string
	if o.trustedProxies != "" {
		proxies = strings.Split(o.trustedProxies, ",")
	}
	pol, err := witnessPolicy(logKey, witnesses, policy)
	if err != nil {
		return err
	}
	metrics := server.NewMetrics()
	db.SetOnCommit(metrics.ObserveCommit)
	if c, ok := db.(store.Counters); ok {
		metrics.CountLog(c.LogIntegrated, c.LogRaces, c.LogRefused)
		metrics.CountRetries(c.Retries)
	}
	metrics.LogHeld(guard.Held)
	srv, err := server.New(ctx, server.Deps{
		Metrics: metrics,
		Config:  cfg, Store: db, Keys: keys, Log: log, AccessLog: logs, TokenKey: key, AdminToken: o.adminToken,
		RateLimit: o.rateLimit, TrustedProxies: proxies, PublicURL: o.publicURL, LogKey: logKey, Policy: pol,
		SharedStore: o.shared(), Precompress: true, Degraded: degradedWhy,
		LogReference: guard.Reference(), LogGuard: guard,
	})
	if err != nil {
		return err
	}
	var current atomic.Pointer[server.Server]
	current.Store(srv)
	var sites atomic.Pointer[config.Config]
	sites.Store(cfg)
	go server.Retention(ctx, log, leaseHolder(), sites.Load, db, keys)
	// The sites' scheduled scans, in a Chromium of their own; with several
	// instances, a lease gives each slot's scan to one of them.
	sched := &schedule.Scheduler{Store: db, Sites: sites.Load, Log: log, Holder: leaseHolder(),
		Chrome: chromium.ChromePath(getenv), PageTimeout: *scanPageTimeout, ScanTimeout: *scanTimeout,
		Recorded: metrics.ScanRecorded, Judged: metrics.ScanJudged}
	scheduling := make(chan struct{})
	go func() { sched.Run(ctx, time.Minute); close(scheduling) }()
	// A key rotated by another instance, or by koekje keys rotate, signs
	// here within seconds.
	go keys.Watch(ctx, 5*time.Second, func(err error) { log.Warn("reading the signing keys", "err", err) })
	if len(witnesses) > 0 {
		if *witnessTimeout <= 0 {
			return fmt.Errorf("--witness-timeout %s: want more than 0", *witnessTimeout)
		}
		if *witnessEvery < 100*time.Millisecond {
			return fmt.Errorf("--witness-interval %s: want at least 100ms", *witnessEvery)
		}
		wg = &translog.Witnessing{Store: db, LogKey: logKey, Witnesses: witnesses, Policy: *policy,
			Client: &http.Client{}, Timeout: *witnessTimeout, Log: log, Observe: metrics.ObserveWitness, Guard: guard}
		if o.shared() {
			// One instance at a time talks to the witnesses; if it stops,
			// another takes over within half a minute.
			holder := leaseHolder()
			wg.Lease = func(ctx context.Context) (bool, error) { return db.Lease(ctx, "witnessing", holder, 30*time.Second) }
		}
		go wg.Run(ctx, *witnessEvery)
	}
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return err
	}
	hs := srv.HTTPServer(o.addr)
	hs.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { current.Load().ServeHTTP(w, r) })
	// SIGHUP reloads the site configuration, as it does Caddy's and
	// nginx's; a file that does not load or build keeps the one in use.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	log.Info("serving", "addr", ln.Addr().String(), "public_url", o.publicURL, "db", o.dbName(), "sites", len(cfg.Sites), "version", versionString())
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
serving:
	for {
		select {
		case err := <-errc:
			return err
		case <-hup:
			if next, cfg := reload(ctx, log, o.config, current.Load()); next != nil {
				current.Store(next)
				sites.Store(cfg)
			}
		case <-ctx.Done():
			break serving
		}
	}
	// Answer what is in flight, then let the store commit its last batch.
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	guard.AdvanceReference(sctx, db, logKey)
	// A scheduled scan under way stops with ctx; its browser is gone
	// before the store closes.
	select {
	case <-scheduling:
	case <-sctx.Done():
	}
	return db.Close()
}

// reload loads the configuration file again and builds a server for it,
// saying in the log what it did; nil when it keeps the one in use.
func reload(ctx context.Context, log *slog.Logger, path string, srv *server.Server) (*server.Server, *config.Config) {
	if path == "" {
		log.Warn("SIGHUP: nothing to reload, the server runs the embedded demo configuration (no --config)")
		return nil, nil
	}
	cfg, err := config.LoadFile(path)
	if err == nil {
		var next *server.Server
		if next, err = srv.Reload(ctx, cfg); err == nil {
			log.Info("SIGHUP: configuration reloaded", "config", path, "sites", len(cfg.Sites))
			return next, cfg
		}
	}
	log.Error("SIGHUP: configuration not reloaded; the one in use stays", "config", path, "err", err.Error())
	return nil, nil
}

// loopback reports whether a listen address takes only this machine's
// connections.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// logOrigin names the transparency log: the public URL's host and /log.
func logOrigin(publicURL string) string {
	host := "localhost"
	if u, err := url.Parse(publicURL); err == nil && u.Host != "" {
		host = strings.ToLower(u.Host)
	}
	return host + "/log"
}

// generatedToken returns the admin token made when none was given: the
// one kept beside the database (mode 0600) since an earlier start, or a new
// one, kept there. It is shown only on a terminal, never in the log stream,
// which gets the file's path.
func generatedToken(dbPath string, stderr io.Writer, log *slog.Logger) (string, error) {
	path := dbPath + ".admin-token"
	if fi, err := os.Stat(path); err == nil {
		if fi.Mode().Perm()&0o077 != 0 {
			return "", fmt.Errorf("the admin token file %s may be read by group or others (mode %04o): run chmod 600 %s", path, fi.Mode().Perm(), path)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return "", err
		}
		tok := strings.TrimSpace(string(b))
		if len(tok) < minAdminToken {
			return "", fmt.Errorf("the admin token file %s holds no token of %d characters or more", path, minAdminToken)
		}
		log.Info("no admin token given; using the one generated earlier", "file", path)
		return tok, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	tok := newToken()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("keep the generated admin token: %w", err)
	}
	_, err = fmt.Fprintln(f, tok)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("keep the generated admin token: %w", err)
	}
	if isTerminal(stderr) {
		fmt.Fprintf(stderr, "koekje: no admin token given; generated %s (kept in %s for the next start)\n", tok, path)
	}
	log.Info("no admin token given; generated one, readable by this user only", "file", path)
	return tok, nil
}

// isTerminal reports whether w is a terminal (not merely a character
// device such as /dev/null).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && isatty.IsTerminal(f.Fd())
}

func newToken() string {
	b := make([]byte, 24)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// leaseHolder names this process for a lease.
func leaseHolder() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), newToken()[:8])
}
