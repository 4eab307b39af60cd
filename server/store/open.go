package store

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
)

// Options say how a store is opened.
type Options struct {
	// KeyFile holds the key that seals the stored secrets. A store on a
	// file keeps it beside the file (its path + ".key") when empty; a
	// shared store needs it given, the same to every instance.
	KeyFile string
	Log     *slog.Logger
	// Existing opens the database only as it is: its schema must be this
	// binary's and its key file must exist. Nothing is made and nothing
	// upgraded, for the commands whose job that is not.
	Existing bool
}

// Driver is a kind of store: how a DSN names it, how it is opened, and
// what the commands must know of it before they open it.
type Driver struct {
	// Name is the store's name for people: "SQLite", "PostgreSQL".
	Name string
	// Schemes are the DSN schemes it opens ("postgres" for
	// postgres://…). A driver with none opens a file path: one process
	// at a time serves it (the commands hold a lock beside the file), and
	// the files the commands keep beside the database are named after it.
	Schemes []string
	// Shared says several instances may serve one database at once.
	Shared bool
	// Schema is the newest schema version this binary writes.
	Schema int
	// Open opens the store at dsn.
	Open func(ctx context.Context, dsn string, o Options) (Store, error)
	// Redact returns dsn as it may be logged, without a password; nil
	// when a DSN holds none.
	Redact func(dsn string) string
	// Backup, if the store can do it, writes a consistent copy of the
	// database at dsn to the new file to while a server may be writing.
	Backup func(ctx context.Context, dsn, to string) error
	// BeginImport, if the store can be copied into, starts a copy into the
	// empty database at dsn, its secrets sealed under keyFile (Copy).
	BeginImport func(ctx context.Context, dsn, keyFile string) (Import, error)
}

// File reports whether the driver's databases are files.
func (d *Driver) File() bool { return len(d.Schemes) == 0 }

// Redacted returns dsn as it may be logged.
func (d *Driver) Redacted(dsn string) string {
	if d.Redact == nil {
		return dsn
	}
	return d.Redact(dsn)
}

// SideBase is the path that files the commands keep beside a database
// (the generated admin token) are named after: a file store's own path,
// else the key file's without its ".key".
func (d *Driver) SideBase(dsn, keyFile string) string {
	if d.File() {
		return dsn
	}
	return strings.TrimSuffix(keyFile, ".key")
}

var (
	mu      sync.RWMutex
	drivers []*Driver
)

// Register makes a driver available to Open. A store package registers
// its driver in its init, as database/sql drivers do.
func Register(d *Driver) {
	mu.Lock()
	defer mu.Unlock()
	for _, o := range drivers {
		if o.Name == d.Name {
			panic("store: Register called twice for " + d.Name)
		}
		if o.File() && d.File() {
			panic("store: two drivers of files: " + o.Name + " and " + d.Name)
		}
	}
	drivers = append(drivers, d)
}

// Drivers lists the registered drivers, in the order they registered.
func Drivers() []*Driver {
	mu.RLock()
	defer mu.RUnlock()
	return append([]*Driver(nil), drivers...)
}

// Lookup returns the driver of dsn: the one registered for its scheme
// (postgres://…), or for a path without one, the file driver.
func Lookup(dsn string) (*Driver, error) {
	scheme, _, hasScheme := strings.Cut(dsn, "://")
	mu.RLock()
	defer mu.RUnlock()
	for _, d := range drivers {
		if !hasScheme && d.File() {
			return d, nil
		}
		for _, s := range d.Schemes {
			if hasScheme && strings.EqualFold(s, scheme) {
				return d, nil
			}
		}
	}
	if hasScheme {
		var known []string
		for _, d := range drivers {
			for _, s := range d.Schemes {
				known = append(known, s+"://…")
			}
		}
		return nil, fmt.Errorf("no store for %s:// DSNs: give a database file or one of %s", scheme, strings.Join(known, ", "))
	}
	return nil, fmt.Errorf("no store for database files is built in")
}

// Open opens the store dsn names, with its driver.
func Open(ctx context.Context, dsn string, o Options) (Store, *Driver, error) {
	d, err := Lookup(dsn)
	if err != nil {
		return nil, nil, err
	}
	s, err := d.Open(ctx, dsn, o)
	if err != nil {
		return nil, nil, err
	}
	return s, d, nil
}
