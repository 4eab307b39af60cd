// Package keyfile keeps the key-encryption key (KEK) that seals Koekje's
// secrets (the visitor-token MAC key, the signing keys, the consent-ID
// permutation key) before they are stored. The KEK lives in a file of its
// own, mode 0600, apart from the database: a copy of the database alone
// yields no usable key, and every instance given the same key file can open
// keys any other instance stored.
package keyfile

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// Size is the length of the KEK: AES-256.
const Size = 32

// header starts every key file, so a file of the wrong kind is named as such.
const header = "koekje-kek-v1:"

// sealVersion is the first byte of every sealed value: the format (AES-256-GCM,
// 12-byte random nonce, the secret's name as associated data).
const sealVersion = 1

// Key is a loaded key-encryption key.
type Key struct {
	path string
	aead cipher.AEAD
}

// ErrNotExist is returned by Load when the key file is missing.
var ErrNotExist = errors.New("key file does not exist")

// Load reads the key file at path. It refuses a file that group or others
// may read or write: whoever can read it can open every stored secret.
func Load(path string) (*Key, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", path, ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	if err := checkMode(path, fi); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	s := strings.TrimSpace(string(b))
	if !strings.HasPrefix(s, header) {
		return nil, fmt.Errorf("key file %s is not a Koekje key file", path)
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, header))
	if err != nil || len(raw) != Size {
		return nil, fmt.Errorf("key file %s is damaged: it must hold %d base64-encoded bytes after %q", path, Size, header)
	}
	return newKey(path, raw)
}

// Create makes a new key file at path with mode 0600 and returns its key.
// It never replaces an existing file: when another process made one first,
// that one is loaded.
func Create(path string) (*Key, error) {
	raw := make([]byte, Size)
	if _, err := rand.Read(raw); err != nil {
		return nil, err
	}
	// Written in full to a temporary file, then linked into place: a
	// concurrent reader sees no file or a whole one, and an existing key
	// file is never overwritten.
	tmp, err := os.CreateTemp(filepath.Dir(path), ".koekje-key-*")
	if err != nil {
		return nil, fmt.Errorf("create key file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("create key file: %w", err)
	}
	_, err = tmp.WriteString(header + base64.StdEncoding.EncodeToString(raw) + "\n")
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("create key file: %w", err)
	}
	if err := os.Link(tmp.Name(), path); errors.Is(err, fs.ErrExist) {
		return Load(path)
	} else if err != nil {
		return nil, fmt.Errorf("create key file: %w", err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	return newKey(path, raw)
}

// checkMode refuses a key file that group or others may use.
func checkMode(path string, fi fs.FileInfo) error {
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("key file %s is not a regular file", path)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("key file %s may be read by group or others (mode %04o); it guards every stored key: run chmod 600 %s",
			path, fi.Mode().Perm(), path)
	}
	return nil
}

func newKey(path string, raw []byte) (*Key, error) {
	b, err := aes.NewCipher(raw)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(b)
	if err != nil {
		return nil, err
	}
	return &Key{path: path, aead: aead}, nil
}

// Path is the key file's path.
func (k *Key) Path() string { return k.path }

// associated binds a sealed value to the secret's name: a sealed value
// copied into another secret's row does not open.
func associated(name string) []byte { return []byte("koekje-secret-v1\x00" + name) }

// Seal encrypts the secret called name.
func (k *Key) Seal(name string, plain []byte) ([]byte, error) {
	out := make([]byte, 1+k.aead.NonceSize(), 1+k.aead.NonceSize()+len(plain)+k.aead.Overhead())
	out[0] = sealVersion
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, err
	}
	return k.aead.Seal(out, out[1:], plain, associated(name)), nil
}

// ErrWrongKey means a sealed value does not open: another key file sealed
// it, or it was altered.
var ErrWrongKey = errors.New("does not open with this key file (a different key file, or the stored value was altered)")

// Open decrypts the secret called name.
func (k *Key) Open(name string, sealed []byte) ([]byte, error) {
	n := k.aead.NonceSize()
	if len(sealed) < 1+n+k.aead.Overhead() || sealed[0] != sealVersion {
		return nil, fmt.Errorf("secret %s is not sealed: %w", name, ErrWrongKey)
	}
	plain, err := k.aead.Open(nil, sealed[1:1+n], sealed[1+n:], associated(name))
	if err != nil {
		return nil, fmt.Errorf("secret %s %w", name, ErrWrongKey)
	}
	return plain, nil
}
