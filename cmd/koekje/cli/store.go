package cli

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/koekje/koekje/server/store"
	"github.com/koekje/koekje/server/translog"

	// The stores --db can name register themselves.
	_ "github.com/koekje/koekje/server/postgres"
	_ "github.com/koekje/koekje/server/sqlite"
)

// openStore opens the store --db names, with its driver. Only existing is
// opened as it is, neither made nor upgraded, nor given a key file.
func (o *options) openStore(log *slog.Logger, existing bool) (store.Store, error) {
	db, _, err := store.Open(context.Background(), o.db, store.Options{KeyFile: o.keyFile, Log: log, Existing: existing})
	return db, err
}

// driver is the kind of store --db names, or nil for a DSN of no known
// kind (opening it says why).
func (o *options) driver() *store.Driver {
	d, _ := store.Lookup(o.db)
	return d
}

// shared reports whether several instances may serve --db at once.
func (o *options) shared() bool { d := o.driver(); return d != nil && d.Shared }

// startLog starts the transparency log and returns its verifier key and
// the guard every signing asks (check makes it from the log's key). A log
// is named once, after the public URL of the start that makes it, and only
// when that name is meant (mayName): a public URL given, or the loopback
// demo. A later start under another public URL serves the same log, and
// says how to move to a new name. The guard is set before the log starts,
// so that not even a start signs a tree it did not prove. On PostgreSQL
// every instance starts it; the one elected integrates.
func startLog(ctx context.Context, db store.Store, log *slog.Logger, origin string, mayName bool, check func(logKey string) (*translog.Guard, error)) (string, *translog.Guard, error) {
	named, err := db.LogOrigin(ctx)
	if err != nil {
		return "", nil, err
	}
	if named == "" && !mayName {
		return "", nil, fmt.Errorf("no log yet, and it is named for life after the public URL: give the origin visitors reach with --public-url (KOEKJE_PUBLIC_URL), such as https://consent.example.nl")
	}
	var guard *translog.Guard
	if named != "" {
		signer, err := db.LogSigner(ctx)
		if err != nil {
			return "", nil, err
		}
		if guard, err = check(signer.VerifierKey()); err != nil {
			return "", nil, err
		}
		db.GuardLog(guard)
	}
	signer, err := db.StartLog(ctx, origin)
	if err != nil {
		return "", nil, err
	}
	if guard == nil { // a log made now: its tree is empty
		if guard, err = check(signer.VerifierKey()); err != nil {
			return "", nil, err
		}
		db.GuardLog(guard)
	}
	if !translog.SameLog(signer.Origin(), origin) {
		log.Warn("the public URL does not name this log: it keeps its name for life and is served under it; to move it to the new name, stop the server and run koekje successor-log --public-url with the new URL",
			"log_origin", signer.Origin(), "public_url_log", origin)
	}
	return signer.VerifierKey(), guard, nil
}

// localBase is the path that files kept beside the database (the
// generated admin token) are named after.
func (o *options) localBase() string {
	if d := o.driver(); d != nil {
		return d.SideBase(o.db, o.keyFile)
	}
	return o.db
}

// dbName is --db as it may be logged: a DSN's password is left out.
func (o *options) dbName() string {
	d := o.driver()
	if d == nil {
		scheme, _, _ := strings.Cut(o.db, "://")
		return scheme + "://(a DSN of no known store)"
	}
	return d.Redacted(o.db)
}
