// Package witness is a small C2SP tlog-witness: it remembers the newest
// checkpoint of each log it was told about, in SQLite, and cosigns a new
// checkpoint only when a consistency proof shows that the log merely grew
// (tlog-cosignature). An operator and an auditor can each run one: a log
// that forked or rewrote its history can no longer get their cosignatures.
package witness

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	_ "github.com/mattn/go-sqlite3" // the witness's state
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/koekje/koekje/server/keyfile"
	"github.com/koekje/koekje/server/translog"
)

// Witness cosigns the checkpoints of the logs it knows.
type Witness struct {
	db       *sql.DB
	cosigner *translog.Cosigner
	logs     map[string]string // origin → the log's verifier key
	log      *slog.Logger
}

// Open opens (creating if needed) the witness's state at path, with the
// verifier keys of the logs it witnesses. Its own key is made the first
// time and kept there, sealed under the key file path+".key" (0600), as the
// server keeps its keys: the state file alone yields no usable key.
func Open(path, name string, logKeys []string, log *slog.Logger) (*Witness, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// The state file and its WAL are the witness's own: 0600.
	if f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600); err == nil {
		f.Close()
	}
	os.Chmod(path, 0o600)
	db, err := sql.Open("sqlite3", "file:"+path+"?_journal_mode=WAL&_synchronous=FULL&_busy_timeout=5000&_txlock=immediate")
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(`CREATE TABLE IF NOT EXISTS key (seed BLOB NOT NULL);
		CREATE TABLE IF NOT EXISTS logs (
			origin     TEXT PRIMARY KEY,
			size       INTEGER NOT NULL,
			hash       BLOB NOT NULL,
			checkpoint BLOB NOT NULL -- the log's signed note with this witness's cosignature
		) WITHOUT ROWID;`); err != nil {
		db.Close()
		return nil, fmt.Errorf("witness state %s: %w", path, err)
	}
	seed, err := witnessSeed(db, path+".key")
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("witness key: %w", err)
	}
	cs, err := translog.NewCosigner(name, seed)
	if err != nil {
		db.Close()
		return nil, err
	}
	w := &Witness{db: db, cosigner: cs, logs: map[string]string{}, log: log}
	for _, k := range logKeys {
		v, err := note.NewVerifier(k)
		if err != nil {
			db.Close()
			return nil, fmt.Errorf("log key %q: %w", k, err)
		}
		w.logs[v.Name()] = k
	}
	return w, nil
}

// witnessSeed reads the witness's sealed key, or makes it (and its key file)
// the first time. A stored key without its key file is refused.
func witnessSeed(db *sql.DB, keyPath string) ([]byte, error) {
	var sealed []byte
	err := db.QueryRow(`SELECT seed FROM key`).Scan(&sealed)
	if errors.Is(err, sql.ErrNoRows) {
		kek, err := keyfile.Load(keyPath)
		if errors.Is(err, keyfile.ErrNotExist) {
			kek, err = keyfile.Create(keyPath)
		}
		if err != nil {
			return nil, err
		}
		seed := make([]byte, 32)
		if _, err := rand.Read(seed); err != nil {
			return nil, err
		}
		if sealed, err = kek.Seal("witness-key", seed); err != nil {
			return nil, err
		}
		if _, err := db.Exec(`INSERT INTO key (seed) VALUES (?)`, sealed); err != nil {
			return nil, err
		}
		return seed, nil
	}
	if err != nil {
		return nil, err
	}
	kek, err := keyfile.Load(keyPath)
	if err != nil {
		return nil, fmt.Errorf("the witness's key is sealed under %s: %w", keyPath, err)
	}
	return kek.Open("witness-key", sealed)
}

// Close closes the state.
func (w *Witness) Close() error { return w.db.Close() }

// VerifierKey is the witness's public key, for logs and auditors.
func (w *Witness) VerifierKey() string { return w.cosigner.VerifierKey() }

// Handler serves POST /add-checkpoint (tlog-witness) and, for auditors,
// GET /checkpoint?origin=… with the newest checkpoint it cosigned.
func (w *Witness) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /add-checkpoint", w.addCheckpoint)
	mux.HandleFunc("GET /checkpoint", w.checkpoint)
	return mux
}

// maxRequest bounds an add-checkpoint body: a checkpoint, a few
// signatures and at most 63 proof hashes.
const maxRequest = 16 << 10

func (w *Witness) addCheckpoint(rw http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(rw, r.Body, maxRequest))
	if err != nil {
		http.Error(rw, "the request is too large or cut off", http.StatusBadRequest)
		return
	}
	req, err := translog.ParseAddCheckpoint(body)
	if err != nil {
		http.Error(rw, err.Error(), http.StatusBadRequest)
		return
	}
	origin, _, _ := strings.Cut(string(req.Checkpoint), "\n")
	key, ok := w.logs[origin]
	if !ok {
		http.Error(rw, "unknown log", http.StatusNotFound)
		return
	}
	cp, n, err := translog.OpenCheckpoint(req.Checkpoint, key)
	if err != nil {
		http.Error(rw, "the checkpoint's signature does not verify", http.StatusForbidden)
		return
	}
	status, msg, line := w.witness(r.Context(), req, cp, n)
	switch status {
	case http.StatusOK:
		rw.Header().Set("Content-Type", "text/x.tlog.cosignature")
		rw.Write(line)
	case http.StatusConflict:
		rw.Header().Set("Content-Type", "text/x.tlog.size")
		rw.WriteHeader(status)
		io.WriteString(rw, msg+"\n")
	default:
		http.Error(rw, msg, status)
	}
}

// witness checks a checkpoint against what the witness saw of its log and,
// if the log only grew, records and cosigns it, in the order and with the
// status codes of C2SP tlog-witness. A stale old size answers the size the
// witness knows; a checkpoint that does not extend what it saw is a 422.
//
// What it keeps and serves is the note rebuilt from the checkpoint's text,
// the log signatures it verified and its own cosignature: any other line
// of the request (a forged signature, another witness's cosignature it
// cannot check) is dropped, so nobody can poison what auditors read here.
func (w *Witness) witness(ctx context.Context, req *translog.AddCheckpoint, cp translog.Checkpoint, n *note.Note) (int, string, []byte) {
	if req.OldSize > cp.Size {
		return http.StatusBadRequest, "the old size is larger than the checkpoint's", nil
	}
	tx, err := w.db.BeginTx(ctx, nil)
	if err != nil {
		return http.StatusServiceUnavailable, "state unavailable", nil
	}
	defer tx.Rollback()
	var (
		size int64
		hash []byte
	)
	err = tx.QueryRowContext(ctx, `SELECT size, hash FROM logs WHERE origin = ?`, cp.Origin).Scan(&size, &hash)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return http.StatusServiceUnavailable, "state unavailable", nil
	}
	var old tlog.Hash
	copy(old[:], hash)
	empty, _ := tlog.TreeHash(0, nil)
	switch {
	case req.OldSize != size:
		return http.StatusConflict, strconv.FormatInt(size, 10), nil
	case cp.Size == 0 && cp.Hash != empty:
		w.log.Warn("an empty checkpoint without the empty tree's root", "origin", cp.Origin)
		return http.StatusUnprocessableEntity, "a checkpoint of size 0 must carry the empty tree's root hash", nil
	case size == 0 && len(req.Proof) != 0:
		return http.StatusUnprocessableEntity, "a proof from size 0 must be empty", nil
	case size > 0 && cp.Size == size && (cp.Hash != old || len(req.Proof) != 0):
		w.log.Warn("fork", "origin", cp.Origin, "size", size)
		return http.StatusUnprocessableEntity, "the checkpoint has the size of the one this witness cosigned, and another root hash", nil
	case size > 0 && cp.Size > size:
		if err := tlog.CheckTree(req.Proof, cp.Size, cp.Hash, size, old); err != nil {
			w.log.Warn("bad consistency proof", "origin", cp.Origin, "from", size, "to", cp.Size)
			return http.StatusUnprocessableEntity, "the consistency proof does not verify", nil
		}
	}
	line := w.cosigner.Cosign(n.Text, time.Now())
	verified, err := note.Sign(&note.Note{Text: n.Text, Sigs: n.Sigs})
	if err != nil {
		return http.StatusServiceUnavailable, "state unavailable", nil
	}
	cosigned := append(verified, line...)
	if _, err := tx.ExecContext(ctx, `INSERT INTO logs (origin, size, hash, checkpoint) VALUES (?, ?, ?, ?)
		ON CONFLICT (origin) DO UPDATE SET size = excluded.size, hash = excluded.hash, checkpoint = excluded.checkpoint`,
		cp.Origin, cp.Size, cp.Hash[:], cosigned); err != nil {
		return http.StatusServiceUnavailable, "state unavailable", nil
	}
	if err := tx.Commit(); err != nil {
		return http.StatusServiceUnavailable, "state unavailable", nil
	}
	return http.StatusOK, "", line
}

// checkpoint serves the newest checkpoint the witness cosigned for a log.
func (w *Witness) checkpoint(rw http.ResponseWriter, r *http.Request) {
	origin := r.URL.Query().Get("origin")
	key, ok := w.logs[origin]
	var cp []byte
	err := w.db.QueryRowContext(r.Context(), `SELECT checkpoint FROM logs WHERE origin = ?`, origin).Scan(&cp)
	if errors.Is(err, sql.ErrNoRows) || !ok {
		http.Error(rw, "no checkpoint of this log", http.StatusNotFound)
		return
	}
	if err != nil {
		http.Error(rw, "state unavailable", http.StatusServiceUnavailable)
		return
	}
	// A row written before the witness rebuilt what it keeps may hold
	// lines nobody verified: only the log's and its own signatures go out.
	clean, err := w.verifiedOnly(cp, key)
	if err != nil {
		w.log.Error("a stored checkpoint does not verify", "origin", origin, "err", err)
		http.Error(rw, "state unavailable", http.StatusServiceUnavailable)
		return
	}
	rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
	rw.Write(clean)
}

// verifiedOnly re-encodes a stored note with only the signatures that
// verify under the log's key and the witness's own.
func (w *Witness) verifiedOnly(signed []byte, logKey string) ([]byte, error) {
	lv, err := note.NewVerifier(logKey)
	if err != nil {
		return nil, err
	}
	own, err := translog.NewCosignatureVerifier(w.cosigner.VerifierKey())
	if err != nil {
		return nil, err
	}
	n, err := note.Open(signed, note.VerifierList(lv, own))
	if err != nil {
		return nil, err
	}
	return note.Sign(&note.Note{Text: n.Text, Sigs: n.Sigs})
}
