package store_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/koekje/koekje/server/postgres"
	"github.com/koekje/koekje/server/sqlite"
	"github.com/koekje/koekje/server/store"
)

// A DSN's scheme chooses its store; a path without one is a file.
func TestLookup(t *testing.T) {
	for dsn, want := range map[string]string{
		"koekje.db":                          "SQLite",
		"/var/lib/koekje/consent.sqlite3":    "SQLite",
		"postgres://koekje@db/koekje":        "PostgreSQL",
		"postgresql://koekje@db/koekje":      "PostgreSQL",
		"POSTGRES://koekje@db/koekje":        "PostgreSQL",
		"./relative/dir with spaces/k.db":    "SQLite",
		"postgres://u:secret@db:5432/koekje": "PostgreSQL",
	} {
		d, err := store.Lookup(dsn)
		if err != nil || d.Name != want {
			t.Errorf("Lookup(%q) = %v, %v; want %s", dsn, d, err, want)
		}
	}
	_, err := store.Lookup("mysql://root@db/koekje")
	if err == nil || !strings.Contains(err.Error(), "no store for mysql:// DSNs") || !strings.Contains(err.Error(), "postgres://…") {
		t.Errorf("an unknown scheme: %v; want an error naming it and the known ones", err)
	}
}

// What the commands learn of a store before they open it.
func TestDriverFacts(t *testing.T) {
	lite, _ := store.Lookup("k.db")
	pg, _ := store.Lookup("postgres://koekje@db/koekje")
	if !lite.File() || lite.Shared || pg.File() || !pg.Shared {
		t.Errorf("SQLite file %v shared %v, PostgreSQL file %v shared %v", lite.File(), lite.Shared, pg.File(), pg.Shared)
	}
	if lite.Backup == nil || pg.Backup != nil || lite.BeginImport != nil || pg.BeginImport == nil {
		t.Error("SQLite backs up and PostgreSQL imports, and neither the other")
	}
	if lite.Schema != sqlite.SchemaVersion || pg.Schema != postgres.SchemaVersion {
		t.Errorf("schemas %d, %d; want %d, %d", lite.Schema, pg.Schema, sqlite.SchemaVersion, postgres.SchemaVersion)
	}
	if got := lite.SideBase("/srv/k.db", "/srv/other.key"); got != "/srv/k.db" {
		t.Errorf("a file's side files are named after %q; want the file", got)
	}
	if got := pg.SideBase("postgres://db/k", "/etc/koekje/pg.key"); got != "/etc/koekje/pg" {
		t.Errorf("a shared store's side files are named after %q; want the key file's", got)
	}
	for dsn, want := range map[string]string{
		"postgres://koekje:hunter2@db/koekje":                  "postgres://koekje@db/koekje",
		"postgres://koekje@db/koekje?password=hunter2&x=1":     "postgres://koekje@db/koekje?password=xxxxx&x=1",
		"postgres://koekje:hunter2@db/koekje?sslmode=require":  "postgres://koekje@db/koekje?sslmode=require",
		"postgres://koekje:hunter2@db:5432/koekje?password=p2": "postgres://koekje@db:5432/koekje?password=xxxxx",
	} {
		if got := pg.Redacted(dsn); got != want || strings.Contains(got, "hunter2") {
			t.Errorf("Redacted(%q) = %q; want %q", dsn, got, want)
		}
	}
	if got := lite.Redacted("/srv/k.db"); got != "/srv/k.db" {
		t.Errorf("a path redacted: %q", got)
	}
}

// Open opens the store its DSN names, with the options given.
func TestOpen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "k.db")
	if _, _, err := store.Open(context.Background(), path, store.Options{Existing: true}); err == nil {
		t.Fatal("Existing opened a database that is not there")
	}
	s, d, err := store.Open(context.Background(), path, store.Options{KeyFile: filepath.Join(dir, "k.key")})
	if err != nil || d.Name != "SQLite" {
		t.Fatalf("Open: %v, %v", d, err)
	}
	defer s.Close()
	if _, ok := s.(store.Source); !ok {
		t.Error("a SQLite store can be copied from")
	}
	if _, ok := s.(store.Integrator); ok {
		t.Error("a SQLite store logs as it commits: it has nothing to integrate")
	}
	if err := s.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
}
