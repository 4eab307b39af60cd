package sqlite

import (
	"database/sql"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Opened as it is, a database of an older schema is refused, naming the
// command that upgrades it, and keeps its schema; serve's open upgrades it.
func TestExistingKeepsTheSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	old, err := sql.Open("sqlite3", "file:"+path+"?_journal_mode=WAL")
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	const schema = 3
	for i := range schema {
		tx, err := old.Begin()
		if err != nil {
			t.Fatal(err)
		}
		if err := migrations[i](tx, nil); err != nil {
			t.Fatalf("migration %d: %v", i+1, err)
		}
		if _, err := tx.Exec(`PRAGMA user_version = ` + strconv.Itoa(i+1)); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	version := func() int {
		var v int
		old.QueryRow(`PRAGMA user_version`).Scan(&v)
		return v
	}
	_, err = OpenWith(path, Options{Existing: true, KeyFile: filepath.Join(t.TempDir(), "none.key")})
	if err == nil || !strings.Contains(err.Error(), "has schema 3 and this koekje reads schema") || !strings.Contains(err.Error(), "koekje serve does") {
		t.Fatalf("opening schema 3 as it is: %v", err)
	}
	if v := version(); v != schema {
		t.Fatalf("schema %d after a refused open, want %d", v, schema)
	}
	db, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	if v := version(); v != SchemaVersion {
		t.Errorf("schema %d after serve's open, want %d", v, SchemaVersion)
	}
	db, err = OpenWith(path, Options{Existing: true})
	if err != nil {
		t.Fatalf("opening the upgraded database as it is: %v", err)
	}
	db.Close()
}
