package sqlite

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/koekje/koekje/server/consent"
	"github.com/koekje/koekje/server/keyfile"
	"github.com/koekje/koekje/server/store"
)

func newSigningKey(t *testing.T, id string) consent.SigningKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return consent.SigningKey{ID: id, Private: priv, CreatedAt: time.Now().UTC().Truncate(time.Microsecond)}
}

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func copyFile(t *testing.T, from, to string, perm os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, perm); err != nil {
		t.Fatal(err)
	}
}

// The database holds its secrets sealed under the key file's key: its files
// are the owner's only, its bytes hold no secret, and a copy without the key
// file (or with another one) opens no key.
func TestSecretsSealed(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "koekje.db")
	db, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	token, err := db.Secret(ctx, store.VisitorTokenSecret, 64)
	if err != nil {
		t.Fatal(err)
	}
	consentKey, err := db.Secret(ctx, store.ConsentIDSecret, 16)
	if err != nil {
		t.Fatal(err)
	}
	sk := newSigningKey(t, "k1")
	if err := db.AddKey(ctx, sk); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm", path + ".key"} {
		if m := mode(t, p); m != 0o600 {
			t.Errorf("%s has mode %04o, want 0600", filepath.Base(p), m)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	wal, _ := os.ReadFile(path + "-wal")
	raw = append(raw, wal...)
	for name, secret := range map[string][]byte{"visitor token key": token, "consent ID key": consentKey, "signing key": ed25519.PrivateKey(sk.Private).Seed()} {
		if bytes.Contains(raw, secret) {
			t.Errorf("the %s is in the database file in the clear", name)
		}
	}

	// A copy of the database without its key file.
	stolen := filepath.Join(t.TempDir(), "copy.db")
	copyFile(t, path, stolen, 0o600)
	_, err = Open(stolen, nil)
	if err == nil || !strings.Contains(err.Error(), "sealed with a key file") || !strings.Contains(err.Error(), "--key-file") {
		t.Fatalf("opening a copy without its key file: %v", err)
	}
	if _, err := os.Stat(stolen + ".key"); err == nil {
		t.Error("a key file was made for a database whose keys are sealed with another")
	}
	// With another key file.
	other := filepath.Join(t.TempDir(), "other.key")
	if _, err := keyfile.Create(other); err != nil {
		t.Fatal(err)
	}
	if _, err = OpenWith(stolen, Options{KeyFile: other}); err == nil || !errors.Is(err, keyfile.ErrWrongKey) {
		t.Fatalf("opening with another key file: %v", err)
	}
	// With its own key file, elsewhere: the same keys come back.
	moved := filepath.Join(t.TempDir(), "moved.key")
	copyFile(t, path+".key", moved, 0o600)
	db2, err := OpenWith(stolen, Options{KeyFile: moved})
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	if got, err := db2.Secret(ctx, store.VisitorTokenSecret, 64); err != nil || !bytes.Equal(got, token) {
		t.Errorf("visitor token key after the move: %v", err)
	}
	keys, err := db2.Keys(ctx)
	if err != nil || len(keys) != 1 || !bytes.Equal(keys[0].Private, sk.Private) {
		t.Errorf("signing keys after the move: %v %v", keys, err)
	}
}

// A key file that group or others may read is refused, with the fix.
func TestKeyFileMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "koekje.db")
	db, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	for _, m := range []os.FileMode{0o640, 0o604, 0o644} {
		if err := os.Chmod(path+".key", m); err != nil {
			t.Fatal(err)
		}
		_, err := Open(path, nil)
		if err == nil || !strings.Contains(err.Error(), "chmod 600 "+path+".key") {
			t.Errorf("key file mode %04o: %v", m, err)
		}
	}
	os.Chmod(path+".key", 0o600)
	db, err = Open(path, nil)
	if err != nil {
		t.Fatalf("key file mode 0600: %v", err)
	}
	db.Close()
}

// A database made before secrets were sealed (secrets and
// signing keys in the clear, files 0644) has them sealed when opened, and
// the same keys come back.
func TestMigrateSealsSecrets(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	os.Chmod(path, 0o644) // whatever the umask
	old, err := sql.Open("sqlite3", "file:"+path+"?_journal_mode=WAL")
	if err != nil {
		t.Fatal(err)
	}
	tx, err := old.Begin()
	if err != nil {
		t.Fatal(err)
	}
	// Every migration before sealSecrets, as the code before it ran them.
	before := slices.IndexFunc(migrations, func(m func(*sql.Tx, *keyfile.Key) error) bool {
		return reflect.ValueOf(m).Pointer() == reflect.ValueOf(sealSecrets).Pointer()
	})
	if before < 2 {
		t.Fatalf("sealSecrets is migration %d", before+1)
	}
	for _, m := range migrations[:before] {
		if err := m(tx, nil); err != nil {
			t.Fatal(err)
		}
	}
	token := bytes.Repeat([]byte{0xab}, 64)
	sk := newSigningKey(t, "old-key")
	if _, err := tx.Exec(`INSERT INTO secrets (name, value, created_at) VALUES ('visitor-token-key', ?, 1)`, token); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(`INSERT INTO signing_keys (id, private, created_at) VALUES (?, ?, 1)`, sk.ID, []byte(sk.Private)); err != nil {
		t.Fatal(err)
	}
	var consentKey []byte
	if err := tx.QueryRow(`SELECT value FROM secrets WHERE name = ?`, store.ConsentIDSecret).Scan(&consentKey); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(fmt.Sprintf(`PRAGMA user_version = %d`, before)); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	old.Close()

	db, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if m := mode(t, path); m != 0o600 {
		t.Errorf("database mode %04o after opening, want 0600", m)
	}
	// Every stored value is now sealed, not the key itself.
	for _, q := range []string{`SELECT name, sealed FROM secrets`, `SELECT id, sealed FROM signing_keys`} {
		rows, err := db.read.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for rows.Next() {
			var name string
			var v []byte
			rows.Scan(&name, &v)
			n++
			if bytes.Contains(v, token) || bytes.Contains(v, consentKey) || bytes.Contains(v, ed25519.PrivateKey(sk.Private).Seed()) || v[0] != 1 {
				t.Errorf("%s is stored in the clear", name)
			}
		}
		rows.Close()
		if n == 0 {
			t.Errorf("%s: no rows", q)
		}
	}
	if got, err := db.Secret(ctx, store.VisitorTokenSecret, 64); err != nil || !bytes.Equal(got, token) {
		t.Errorf("visitor token key after the migration: %x, %v", got, err)
	}
	if got, err := db.Secret(ctx, store.ConsentIDSecret, 16); err != nil || !bytes.Equal(got, consentKey) {
		t.Errorf("consent ID key after the migration: %x, %v", got, err)
	}
	keys, err := db.Keys(ctx)
	if err != nil || len(keys) != 1 || !bytes.Equal(keys[0].Private, sk.Private) {
		t.Errorf("signing key after the migration: %v", err)
	}
	// A sealed value moved into another secret's row does not open.
	if _, err := db.write.Exec(`UPDATE secrets SET sealed = (SELECT sealed FROM secrets WHERE name = ?) WHERE name = 'visitor-token-key'`, store.ConsentIDSecret); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Secret(ctx, store.VisitorTokenSecret, 64); !errors.Is(err, keyfile.ErrWrongKey) {
		t.Errorf("a secret swapped between rows opened: %v", err)
	}
}
