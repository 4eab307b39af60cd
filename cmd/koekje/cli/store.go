package cli

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/koekje/koekje/server"
	"github.com/koekje/koekje/server/keyfile"
	"github.com/koekje/koekje/server/postgres"
	"github.com/koekje/koekje/server/proof"
	"github.com/koekje/koekje/server/sqlite"
	"github.com/koekje/koekje/server/translog"
)

// store is what the commands need of a consent store; the SQLite and the
// PostgreSQL store both have it.
type store interface {
	server.Store
	proof.KeyStore
	SaveWitnessed(ctx context.Context, size int64, cosigned []byte) error
	Secret(ctx context.Context, name string, n int) ([]byte, error)
	StartLog(ctx context.Context, origin string) (*translog.Signer, error)
	LogOrigin(ctx context.Context) (string, error)
	KeyFile() *keyfile.Key
	LogSigner(ctx context.Context) (*translog.Signer, error)
	NewLogSigner(ctx context.Context, origin string) (*translog.Signer, error)
	Sites(ctx context.Context) ([]string, error)
	LimitSize(ctx context.Context, maxBytes int64) error
	SetOnCommit(f func(size int, d time.Duration, err error))
	Lease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error)
	Close() error
}

// openStore opens the store --db names: PostgreSQL for a postgres:// DSN,
// else a SQLite file. Only existing is opened as it is, neither made nor
// upgraded, nor given a key file.
func (o *options) openStore(log *slog.Logger, existing bool) (store, error) {
	if postgres.IsDSN(o.db) {
		db, err := postgres.Open(context.Background(), o.db, postgres.Options{KeyFile: o.keyFile, Log: log, Existing: existing})
		if err != nil {
			return nil, err
		}
		return db, nil
	}
	db, err := sqlite.OpenWith(o.db, sqlite.Options{KeyFile: o.keyFile, Log: log, Existing: existing})
	if err != nil {
		return nil, err
	}
	return db, nil
}

// startLog starts the transparency log and returns its verifier key. A log
// is named once, after the public URL of the start that makes it, and only
// when that name is meant (mayName): a public URL given, or the loopback
// demo. A later start under another public URL serves the same log, and
// says how to move to a new name. On PostgreSQL every instance starts it;
// the one elected integrates.
func startLog(ctx context.Context, db store, log *slog.Logger, origin string, mayName bool) (string, error) {
	named, err := db.LogOrigin(ctx)
	if err != nil {
		return "", err
	}
	if named == "" && !mayName {
		return "", fmt.Errorf("no log yet, and it is named for life after the public URL: give the origin visitors reach with --public-url (KOEKJE_PUBLIC_URL), such as https://consent.example.nl")
	}
	signer, err := db.StartLog(ctx, origin)
	if err != nil {
		return "", err
	}
	if signer.Origin() != origin {
		log.Warn("the public URL does not name this log: it keeps its name for life and is served under it; a log under the new name is a successor log, started on a new database",
			"log_origin", signer.Origin(), "public_url_log", origin)
	}
	return signer.VerifierKey(), nil
}

// localBase is the path that files kept beside the database (the
// generated admin token) are named after: the SQLite file, or on
// PostgreSQL the key file.
func (o *options) localBase() string {
	if postgres.IsDSN(o.db) {
		return strings.TrimSuffix(o.keyFile, ".key")
	}
	return o.db
}

// dbName is --db as it may be logged: a DSN's password is left out.
func (o *options) dbName() string {
	if !postgres.IsDSN(o.db) {
		return o.db
	}
	u, err := url.Parse(o.db)
	if err != nil {
		return "postgres://(unparsable DSN)"
	}
	u.User = url.User(u.User.Username())
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.String()
}
