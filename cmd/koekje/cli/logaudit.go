package cli

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/koekje/koekje/server/translog"
)

// logAudit is what koekje log-audit found.
type logAudit struct {
	OK     bool   `json:"ok"`
	Origin string `json:"origin"`
	Size   int64  `json:"size"`
	// Since is the size of the newest checkpoint the log was proven to
	// extend: the one this auditor verified before, or the one --since kept.
	Since int64 `json:"since,omitempty"`
	// Witnesses are those of the pinned policy that cosigned the checkpoint.
	Witnesses []string `json:"witnesses,omitempty"`
	// Unwitnessed says the log's policy asks for no cosignature.
	Unwitnessed bool `json:"unwitnessed,omitempty"`
	// State is the directory that keeps what this auditor pinned and saw.
	State string `json:"state"`
	// Site and its leaves, found with the site's audit key.
	Site   string  `json:"site,omitempty"`
	Leaves []int64 `json:"leaves,omitempty"`
	Error  string  `json:"error,omitempty"`
}

// logAuditCmd checks a log from its public tiles alone: the published
// checkpoint's signature and cosignatures under the log's witness policy,
// that the tiles rebuild its root, that it extends every checkpoint this
// auditor verified before (and one kept with --since), and, with a site's
// audit key, which leaves are that site's.
//
// Like Go's checksum-database client, it keeps a state directory per log:
// the log's key and policy, pinned on first use, the newest checkpoint it
// verified, and the entry bundles it verified. A later run fails on another
// key, on a weaker policy (unless --accept-policy), and on a log smaller
// than, or not extending, what it saw before: a rollback needs no --since.
func logAuditCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("log-audit", flag.ContinueOnError)
	fs.SetOutput(stderr)
	base := fs.String("url", "", "the consent server's public URL (its /log/… is read), required")
	logKey := fs.String("log-key", "", "the log's verifier key you pinned (required the first time; then kept in the state)")
	policyFile := fs.String("policy", "", "the log's witness policy you pinned (default: its /log/policy, pinned on first use)")
	acceptPolicy := fs.Bool("accept-policy", false, "pin the log's policy even if it accepts what the pinned one did not")
	allowUnwitnessed := fs.Bool("allow-unwitnessed", false, "accept a policy without witnesses (\"quorum none\")")
	state := fs.String("state", defaultAuditState(getenv), "the directory that keeps each log's pinned key and policy, its newest verified checkpoint and tiles (KOEKJE_LOG_AUDIT_STATE)")
	since := fs.String("since", "", "a checkpoint you kept: the log must extend it")
	site := fs.String("site", "", "a site whose leaves to list (with --audit-key)")
	auditKey := fs.String("audit-key", "", "the site's audit key, hex (koekje keys audit-key --site S)")
	if err := parseAnywhere(fs, args); err != nil {
		return err
	}
	if *base == "" || (*site == "") != (*auditKey == "") {
		return errors.New("usage: koekje log-audit --url URL [--log-key KEY] [--policy FILE] [--state DIR] [--since FILE] [--site S --audit-key HEX]")
	}
	if *state == "" {
		return errors.New("log-audit: no state directory: give --state or KOEKJE_LOG_AUDIT_STATE")
	}
	tiles := &translog.Remote{Base: strings.TrimSuffix(*base, "/") + "/log/", Client: &http.Client{Timeout: 30 * time.Second}, Ctx: ctx}
	res := &logAudit{Site: *site}
	prog := newProgress(stderr)
	defer prog.close()
	prog.Phase("log leaves checked")
	a := &auditor{tiles: tiles, stateDir: *state, logKey: *logKey, policyFile: *policyFile, acceptPolicy: *acceptPolicy,
		allowUnwitnessed: *allowUnwitnessed, since: *since, auditKey: *auditKey, prog: prog}
	err := a.audit(res)
	prog.close()
	if err != nil {
		res.Error = err.Error()
	}
	res.OK = err == nil
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	enc.Encode(res)
	verdict := "ok"
	if err != nil {
		verdict = "FAILED"
	}
	prog.end("koekje log-audit: %d of %d leaves checked, %s", prog.n.Load(), res.Size, verdict)
	if err != nil {
		fmt.Fprintln(stderr, "koekje:", err)
		return ErrFailed
	}
	return nil
}

// defaultAuditState is where log-audit keeps its state unless told.
func defaultAuditState(getenv func(string) string) string {
	if d := getenv("KOEKJE_LOG_AUDIT_STATE"); d != "" {
		return d
	}
	if d := getenv("XDG_CONFIG_HOME"); d != "" {
		return filepath.Join(d, "koekje", "log-audit")
	}
	if d := getenv("HOME"); d != "" {
		return filepath.Join(d, ".config", "koekje", "log-audit")
	}
	return ""
}

// auditor is one run of log-audit.
type auditor struct {
	tiles                          *translog.Remote
	stateDir, logKey, policyFile   string
	acceptPolicy, allowUnwitnessed bool
	since, auditKey                string
	dir                            string // this log's state
	prog                           *progress
}

// file names in a log's state directory
const (
	stateKey        = "key"
	statePolicy     = "policy"
	stateCheckpoint = "checkpoint"
)

func (a *auditor) audit(res *logAudit) error {
	signed, err := a.tiles.Get("checkpoint")
	if err != nil {
		return err
	}
	origin, _, _ := strings.Cut(string(signed), "\n")
	if origin == "" || strings.ContainsAny(origin, "\x00") {
		return errors.New("the log's checkpoint names no origin")
	}
	a.dir = filepath.Join(a.stateDir, url.PathEscape(origin))
	res.State = a.dir
	if err := a.pinKey(origin); err != nil {
		return err
	}
	policy, err := a.pinPolicy()
	if err != nil {
		return err
	}
	res.Unwitnessed = policy.Unwitnessed()
	cp, names, clean, err := policy.Open(signed)
	res.Origin, res.Size, res.Witnesses = cp.Origin, cp.Size, names
	if err != nil {
		return err
	}
	tree := tlog.Tree{N: cp.Size, Hash: cp.Hash}
	hashes := tlog.TileHashReader(tree, a.tiles)
	var refs []string // where each reference comes from
	var olds []translog.Checkpoint
	if b, err := os.ReadFile(filepath.Join(a.dir, stateCheckpoint)); err == nil {
		old, _, err := translog.OpenCheckpoint(b, a.logKey)
		if err != nil {
			return fmt.Errorf("the checkpoint kept in %s: %w", a.dir, err)
		}
		refs, olds = append(refs, "the checkpoint this auditor verified before"), append(olds, old)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if a.since != "" {
		kept, err := os.ReadFile(a.since)
		if err != nil {
			return err
		}
		old, _, err := translog.OpenCheckpoint(kept, a.logKey)
		if err != nil {
			return fmt.Errorf("--since: %w", err)
		}
		refs, olds = append(refs, "the kept checkpoint"), append(olds, old)
	}
	for i, old := range olds {
		if old.Size > cp.Size {
			return fmt.Errorf("the log has %d leaves, fewer than the %d of %s: it was rolled back or forked", cp.Size, old.Size, refs[i])
		}
		p, err := tlog.ProveTree(cp.Size, old.Size, hashes)
		if err == nil {
			err = tlog.CheckTree(p, cp.Size, cp.Hash, old.Size, old.Hash)
		}
		if err != nil {
			return fmt.Errorf("the log does not extend %s of size %d: %w", refs[i], old.Size, err)
		}
		res.Since = max(res.Since, old.Size)
	}
	bundles, err := a.checkEntries(cp, res)
	if err != nil {
		return err
	}
	// All checked: keep the new tiles and the checkpoint, which extends
	// every one seen before.
	for path, data := range bundles {
		file := filepath.Join(a.dir, filepath.FromSlash(path))
		if partial := filepath.Dir(file); strings.HasSuffix(partial, ".p") {
			os.RemoveAll(partial) // only the newest partial bundle is kept
		}
		if err := writeState(file, data); err != nil {
			return err
		}
	}
	return writeState(filepath.Join(a.dir, stateCheckpoint), clean)
}

// pinKey holds the log's key against the one pinned in the state, pinning
// it on first use. A log has one key for life: another one fails.
func (a *auditor) pinKey(origin string) error {
	b, err := os.ReadFile(filepath.Join(a.dir, stateKey))
	pinned := strings.TrimSpace(string(b))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if a.logKey == "" {
			return fmt.Errorf("no key pinned for %s in %s: give --log-key the first time", origin, a.stateDir)
		}
		if v, err := note.NewVerifier(a.logKey); err != nil || v.Name() != origin {
			return fmt.Errorf("--log-key is not a key of the log %s", origin)
		}
		return writeState(filepath.Join(a.dir, stateKey), []byte(a.logKey+"\n"))
	case err != nil:
		return err
	case a.logKey != "" && a.logKey != pinned:
		return fmt.Errorf("--log-key is not the key pinned for %s in %s (%s): a log keeps its key for life", origin, a.dir, pinned)
	}
	a.logKey = pinned
	return nil
}

// pinPolicy reads the log's witness policy (--policy, or the log's own) and
// holds it against the one pinned in the state: a weaker one fails unless
// --accept-policy re-pins it; one at least as strict is pinned.
func (a *auditor) pinPolicy() (*translog.Policy, error) {
	var (
		text []byte
		err  error
	)
	if a.policyFile != "" {
		text, err = os.ReadFile(a.policyFile)
	} else {
		text, err = a.tiles.Get("policy")
	}
	if err != nil {
		return nil, fmt.Errorf("the log's witness policy: %w", err)
	}
	policy, err := translog.ParsePolicy(text)
	if err != nil {
		return nil, err
	}
	if !policy.HasLog(a.logKey) {
		return nil, fmt.Errorf("the witness policy does not name the pinned key %s", a.logKey)
	}
	path := filepath.Join(a.dir, statePolicy)
	if b, err := os.ReadFile(path); err == nil {
		pinned, err := translog.ParsePolicy(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if werr := policy.WeakerThan(pinned); werr != nil && !a.acceptPolicy {
			return nil, fmt.Errorf("the log's witness policy is weaker than the one pinned in %s: %w (give --accept-policy to pin it if you trust the change)", path, werr)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if policy.Unwitnessed() && !a.allowUnwitnessed {
		return nil, errors.New("the log has no witnesses (quorum none): its checkpoints rest on its own signature alone; give --allow-unwitnessed to accept that")
	}
	return policy, writeState(path, policy.Encode())
}

// writeState writes a state file atomically (0600 in a 0700 directory).
func writeState(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}

// checkEntries rebuilds the checkpoint's root from every entry bundle and
// lists the site's leaves; it returns the bundles by tile path.
func (a *auditor) checkEntries(cp translog.Checkpoint, res *logAudit) (map[string][]byte, error) {
	bundles := map[string][]byte{}
	// Every entry, rebuilt into the tree, must give the checkpoint's root.
	var (
		b      translog.TreeBuilder
		tagger *translog.SiteTagger
	)
	if a.auditKey != "" {
		k, err := hex.DecodeString(a.auditKey)
		if err != nil || len(k) != 32 {
			return nil, errors.New("--audit-key: want 64 hex digits")
		}
		tagger = translog.NewSiteTagger(k)
	}
	for n := int64(0); n < cp.Size; n += 1 << translog.TileHeight {
		w := min(cp.Size-n, 1<<translog.TileHeight)
		path := translog.TilePath(tlog.Tile{H: translog.TileHeight, L: -1, N: n >> translog.TileHeight, W: int(w)})
		// A full bundle verified before is read from the state; it is
		// checked again with the rest, against today's root.
		data, err := os.ReadFile(filepath.Join(a.dir, filepath.FromSlash(path)))
		if err != nil || w < 1<<translog.TileHeight {
			if data, err = a.tiles.Get(path); err != nil {
				return nil, err
			}
			bundles[path] = data
		}
		entries, err := translog.ParseEntryBundle(data)
		if err != nil || int64(len(entries)) != w {
			return nil, fmt.Errorf("entry bundle at %d: %d entries, %v", n, len(entries), err)
		}
		a.prog.Add(int64(len(entries)))
		for i, e := range entries {
			b.Add(e)
			if tagger == nil {
				continue
			}
			l, err := translog.ParseLeaf(e)
			if err != nil {
				return nil, fmt.Errorf("leaf %d: %w", n+int64(i), err)
			}
			if l.SiteTag == tagger.Tag(n+int64(i)) {
				res.Leaves = append(res.Leaves, n+int64(i))
			}
		}
	}
	if b.Root() != cp.Hash {
		return nil, errors.New("the entries do not rebuild the checkpoint's root")
	}
	return bundles, nil
}
