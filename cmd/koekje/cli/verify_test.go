package cli

import (
	"context"
	"database/sql"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/koekje/koekje/config"
	"github.com/koekje/koekje/server/postgres"
	"github.com/koekje/koekje/server/postgres/pgtest"
	"github.com/koekje/koekje/server/sqlite"
	"github.com/koekje/koekje/server/store"
	"github.com/koekje/koekje/server/store/storetest"
)

// A banner version edited in the database fails verify on either store,
// named by its hash; the site's other version and another site's copy of
// the same version still pass.
func TestVerifyChecksVersions(t *testing.T) {
	t.Parallel()
	shown := []byte(`{"texts":{"nl":{"accept":"Alles accepteren","reject":"Alles weigeren"}}}`)
	later := []byte(`{"texts":{"nl":{"accept":"Akkoord","reject":"Weigeren"}}}`)
	altered := []byte(`{"texts":{"nl":{"accept":"Alles weigeren","reject":"Alles accepteren"}}}`)
	for _, c := range []struct {
		name string
		// open makes a database and returns the environment that names
		// it, a store on it, and a way to change it behind the store's back.
		open func(t *testing.T) (map[string]string, store.Store, func(statement string, args ...any))
	}{
		{"sqlite", func(t *testing.T) (map[string]string, store.Store, func(string, ...any)) {
			path := filepath.Join(t.TempDir(), "k.db")
			db, err := sqlite.Open(path, nil)
			if err != nil {
				t.Fatal(err)
			}
			return map[string]string{"KOEKJE_DB": path}, db, func(statement string, args ...any) {
				raw, err := sql.Open("sqlite3", path)
				if err != nil {
					t.Fatal(err)
				}
				defer raw.Close()
				if _, err := raw.Exec(statement, args...); err != nil {
					t.Fatal(err)
				}
			}
		}},
		{"postgres", func(t *testing.T) (map[string]string, store.Store, func(string, ...any)) {
			dsn := pgtest.Shared(t).NewDatabase(t)
			keyFile := filepath.Join(t.TempDir(), "pg.key")
			db, err := postgres.Open(context.Background(), dsn, postgres.Options{KeyFile: keyFile})
			if err != nil {
				t.Fatal(err)
			}
			return map[string]string{"KOEKJE_DB": dsn, "KOEKJE_KEY_FILE": keyFile}, db, func(statement string, args ...any) {
				ctx := context.Background()
				conn, err := pgx.Connect(ctx, dsn)
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close(ctx)
				if _, err := conn.Exec(ctx, statement, args...); err != nil {
					t.Fatal(err)
				}
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			env, db, insider := c.open(t)
			ctx := context.Background()
			for _, v := range []struct {
				site string
				body []byte
			}{{"demo", shown}, {"demo", later}, {"shop", shown}} {
				if err := db.PutVersion(ctx, v.site, config.Hash(v.body), v.body); err != nil {
					t.Fatal(err)
				}
				r := storetest.NewRecord(v.site, uuid.Nil)
				r.ConfigHash = config.Hash(v.body)
				if err := db.Append(ctx, r); err != nil {
					t.Fatal(err)
				}
			}
			db.Close()
			sites := func(out string) map[string]siteVerification {
				t.Helper()
				got := map[string]siteVerification{}
				for line := range strings.Lines(out) {
					var v siteVerification
					if err := json.Unmarshal([]byte(line), &v); err != nil {
						t.Fatalf("%v: %s", err, out)
					}
					got[v.Site] = v
				}
				return got
			}
			out, _, err := runCLIOut(t, env, "verify")
			if v := sites(out); err != nil || !v["demo"].OK || v["demo"].Versions != 2 || !v["shop"].OK || v["shop"].Versions != 1 {
				t.Fatalf("verify before the edit: %v\n%s", err, out)
			}

			insider(`UPDATE versions SET body = $1 WHERE site = $2 AND hash = $3`, altered, "demo", config.Hash(shown))
			out, _, err = runCLIOut(t, env, "verify")
			v := sites(out)
			if err != ErrFailed || v["demo"].OK || v["demo"].Versions != 2 || !slices.Equal(v["demo"].DamagedVersions, []string{config.Hash(shown)}) ||
				v["demo"].Records != 2 || v["demo"].Reason != "" {
				t.Errorf("verify after the edit: %v\n%s", err, out)
			}
			if !v["shop"].OK || v["shop"].DamagedVersions != nil {
				t.Errorf("the other site after the edit: %s", out)
			}
			if out, err := runCLI(t, env, "verify", "--site", "shop"); err != nil || !strings.Contains(out, `"ok":true`) {
				t.Errorf("verify --site shop: %v %s", err, out)
			}
		})
	}
}
