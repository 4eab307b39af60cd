package postgres

import (
	"context"
	"net/url"

	"github.com/koekje/koekje/server/store"
)

var (
	_ store.Store          = (*DB)(nil)
	_ store.Integrator     = (*DB)(nil)
	_ store.SharedFailures = (*DB)(nil)
	_ store.Counters       = (*DB)(nil)
	_ store.LogRestorer    = (*DB)(nil)
	_ store.Import         = (*Import)(nil)
)

func init() {
	store.Register(&store.Driver{
		Name:    "PostgreSQL",
		Schemes: []string{"postgres", "postgresql"},
		Shared:  true,
		Schema:  SchemaVersion,
		Open: func(ctx context.Context, dsn string, o store.Options) (store.Store, error) {
			db, err := Open(ctx, dsn, Options(o))
			if err != nil {
				return nil, err
			}
			return db, nil
		},
		Redact: redact,
		BeginImport: func(ctx context.Context, dsn, keyFile string) (store.Import, error) {
			imp, err := BeginImport(ctx, dsn, keyFile)
			if err != nil {
				return nil, err
			}
			return imp, nil
		},
	})
}

// redact is a DSN as it may be logged: its password is left out.
func redact(dsn string) string {
	u, err := url.Parse(dsn)
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
