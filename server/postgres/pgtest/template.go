package pgtest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Template is a database that tests start from instead of an empty one,
// made once per cluster: copying it is cheaper than running every migration
// for every test. The store's tests pass it in, as pgtest cannot import the
// store whose tests import it.
type Template struct {
	// Key names what Make makes and changes whenever that does: a hash of
	// the migrations, so that a changed migration never gets a template
	// made by the old ones.
	Key string
	// Make makes the template in the empty database at dsn, closing its
	// connections before it returns.
	Make func(ctx context.Context, dsn string) error
}

// NewDatabaseFrom makes a database for tb that is a copy of the template,
// making the template first if the cluster has none for its key, and
// returns its DSN.
func (c *Cluster) NewDatabaseFrom(tb testing.TB, t Template) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	name, err := c.template(ctx, t)
	if err != nil {
		tb.Fatalf("template database: %v", err)
	}
	return c.newDatabase(tb, name)
}

// template returns the name of t's database, making it if need be.
func (c *Cluster) template(ctx context.Context, t Template) (string, error) {
	sum := sha256.Sum256([]byte(t.Key))
	name := "template_" + hex.EncodeToString(sum[:8])
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.made[name] {
		return name, nil
	}
	conn, err := pgx.Connect(ctx, c.DSN("postgres"))
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	// One process makes it, the others wait and find it made; a killed
	// maker's lock goes with its connection.
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock(hashtext($1))`, name); err != nil {
		return "", err
	}
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return "", err
	}
	if !exists {
		// Made under another name and renamed once whole, so nothing
		// copies half a template; a killed maker's half is dropped.
		part := name + "_part"
		for _, q := range []string{"DROP DATABASE IF EXISTS " + part + " WITH (FORCE)", "CREATE DATABASE " + part} {
			if _, err := conn.Exec(ctx, q); err != nil {
				return "", err
			}
		}
		if err := t.Make(ctx, c.DSN(part)); err != nil {
			return "", fmt.Errorf("make %s: %w", name, err)
		}
		// A connection to a template stops its copies: none is allowed.
		for _, q := range []string{"ALTER DATABASE " + part + " ALLOW_CONNECTIONS false", "ALTER DATABASE " + part + " RENAME TO " + name} {
			if _, err := conn.Exec(ctx, q); err != nil {
				return "", err
			}
		}
	}
	if c.made == nil {
		c.made = map[string]bool{}
	}
	c.made[name] = true
	return name, nil
}
