package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
)

// Backup writes a consistent copy of the database at path to a new file at
// to, while servers may go on writing: one read transaction sees the
// database as of a commit, and VACUUM INTO writes what it sees, compacted.
// The copy is the database alone: the key file that seals its secrets and
// the log's reference kept beside it are not in it (a restored reference
// would hide the restore from the log's consistency check).
func Backup(ctx context.Context, path, to string) error {
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("database %s: %w", path, err)
	}
	if _, err := os.Stat(to); err == nil {
		return fmt.Errorf("%s exists: a backup is written to a new file", to)
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	db, err := sql.Open("sqlite3", "file:"+(&url.URL{Path: path}).EscapedPath()+"?mode=ro&_busy_timeout=5000")
	if err != nil {
		return err
	}
	defer db.Close()
	// The copy holds the same records as the database: it is written in a
	// directory only the owner enters, made 0600, and only then moved.
	dir, err := os.MkdirTemp(filepath.Dir(to), ".koekje-backup-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	tmp := filepath.Join(dir, "backup.db")
	if _, err := db.ExecContext(ctx, `VACUUM INTO ?`, tmp); err != nil {
		return fmt.Errorf("back up %s: %w", path, err)
	}
	if err := os.Chmod(tmp, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, to)
}
