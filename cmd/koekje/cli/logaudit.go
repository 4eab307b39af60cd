package cli

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/koekje/koekje/server/translog"
)

// logAudit is what koekje log-audit found.
type logAudit struct {
	OK     bool   `json:"ok"`
	Origin string `json:"origin"`
	Size   int64  `json:"size"`
	// Since is the size of the kept checkpoint the log was proven to extend.
	Since int64 `json:"since,omitempty"`
	// Site and its leaves, found with the site's audit key.
	Site   string  `json:"site,omitempty"`
	Leaves []int64 `json:"leaves,omitempty"`
	Error  string  `json:"error,omitempty"`
}

// logAuditCmd checks a log from its public tiles alone: the published
// checkpoint's signature, that the tiles rebuild its root, that it extends a
// checkpoint kept earlier, and, with a site's audit key, which leaves are
// that site's.
func logAuditCmd(ctx context.Context, args []string, _ func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("log-audit", flag.ContinueOnError)
	fs.SetOutput(stderr)
	base := fs.String("url", "", "the consent server's public URL (its /log/… is read), required")
	logKey := fs.String("log-key", "", "the log's verifier key you pinned, required")
	since := fs.String("since", "", "a checkpoint you kept: the log must extend it")
	site := fs.String("site", "", "a site whose leaves to list (with --audit-key)")
	auditKey := fs.String("audit-key", "", "the site's audit key, hex (koekje keys audit-key --site S)")
	if err := parseAnywhere(fs, args); err != nil {
		return err
	}
	if *base == "" || *logKey == "" || (*site == "") != (*auditKey == "") {
		return errors.New("usage: koekje log-audit --url URL --log-key KEY [--since FILE] [--site S --audit-key HEX]")
	}
	tiles := &translog.Remote{Base: strings.TrimSuffix(*base, "/") + "/log/", Client: &http.Client{Timeout: 30 * time.Second}, Ctx: ctx}
	res := &logAudit{Site: *site}
	err := auditLog(tiles, *logKey, *since, *auditKey, res)
	if err != nil {
		res.Error = err.Error()
	}
	res.OK = err == nil
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	enc.Encode(res)
	if err != nil {
		fmt.Fprintln(stderr, "koekje:", err)
		return ErrFailed
	}
	return nil
}

func auditLog(tiles *translog.Remote, logKey, since, auditKey string, res *logAudit) error {
	signed, err := tiles.Get("checkpoint")
	if err != nil {
		return err
	}
	cp, _, err := translog.OpenCheckpoint(signed, logKey)
	if err != nil {
		return err
	}
	res.Origin, res.Size = cp.Origin, cp.Size
	tree := tlog.Tree{N: cp.Size, Hash: cp.Hash}
	hashes := tlog.TileHashReader(tree, tiles)
	if since != "" {
		kept, err := os.ReadFile(since)
		if err != nil {
			return err
		}
		old, _, err := translog.OpenCheckpoint(kept, logKey)
		if err != nil {
			return fmt.Errorf("--since: %w", err)
		}
		if old.Size > cp.Size {
			return fmt.Errorf("the log has %d leaves, fewer than the %d of the kept checkpoint", cp.Size, old.Size)
		}
		p, err := tlog.ProveTree(cp.Size, old.Size, hashes)
		if err == nil {
			err = tlog.CheckTree(p, cp.Size, cp.Hash, old.Size, old.Hash)
		}
		if err != nil {
			return fmt.Errorf("the log does not extend the kept checkpoint of size %d: %w", old.Size, err)
		}
		res.Since = old.Size
	}
	// Every entry, rebuilt into the tree, must give the checkpoint's root.
	var (
		b      translog.TreeBuilder
		tagger *translog.SiteTagger
	)
	if auditKey != "" {
		k, err := hex.DecodeString(auditKey)
		if err != nil || len(k) != 32 {
			return errors.New("--audit-key: want 64 hex digits")
		}
		tagger = translog.NewSiteTagger(k)
	}
	for n := int64(0); n < cp.Size; n += 1 << translog.TileHeight {
		w := min(cp.Size-n, 1<<translog.TileHeight)
		data, err := tiles.Get(translog.TilePath(tlog.Tile{H: translog.TileHeight, L: -1, N: n >> translog.TileHeight, W: int(w)}))
		if err != nil {
			return err
		}
		entries, err := translog.ParseEntryBundle(data)
		if err != nil || int64(len(entries)) != w {
			return fmt.Errorf("entry bundle at %d: %d entries, %v", n, len(entries), err)
		}
		for i, e := range entries {
			b.Add(e)
			if tagger == nil {
				continue
			}
			l, err := translog.ParseLeaf(e)
			if err != nil {
				return fmt.Errorf("leaf %d: %w", n+int64(i), err)
			}
			if l.SiteTag == tagger.Tag(n+int64(i)) {
				res.Leaves = append(res.Leaves, n+int64(i))
			}
		}
	}
	if b.Root() != cp.Hash {
		return errors.New("the entries do not rebuild the checkpoint's root")
	}
	return nil
}
