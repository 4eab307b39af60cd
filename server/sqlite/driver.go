package sqlite

import (
	"context"

	"github.com/koekje/koekje/server/store"
)

var (
	_ store.Store       = (*DB)(nil)
	_ store.Source      = (*DB)(nil)
	_ store.LogRestorer = (*DB)(nil)
)

func init() {
	store.Register(&store.Driver{
		Name:   "SQLite",
		Schema: SchemaVersion,
		Open: func(_ context.Context, path string, o store.Options) (store.Store, error) {
			db, err := OpenWith(path, Options(o))
			if err != nil {
				return nil, err
			}
			return db, nil
		},
		Backup: Backup,
	})
}
