package translog

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/tlog"
)

// Recovery brings a log whose database lost its newest leaves (a restored
// backup) back to the tree it published, from that tree's public tiles:
// the entry bundles a mirror serves, that koekje log-audit kept in its
// state directory, or any copy of them. The entries must rebuild the
// reference's root, and the database's own leaves must be their first
// ones; only then are the missing entries handed to the store, which
// appends them as they were and signs the reference's tree again (the same
// size and root: no new history). The records that waited while the log
// was held are appended after it, as new leaves.

// Tiles reads a log's published files by their tlog-tiles path
// ("tile/entries/000.p/37"): Remote over HTTP, or TileDir.
type Tiles interface {
	Get(path string) ([]byte, error)
}

// TileDir reads tiles from a directory: a copy of a log's tile tree, or the
// state directory of koekje log-audit, whose log directory is found by
// the log's origin.
type TileDir struct {
	Dir    string
	Origin string
}

// Get reads the file at path. A partial entry bundle that is not there is
// read from a wider one of the same tile (a later copy), whose first
// entries are the same.
func (d TileDir) Get(path string) ([]byte, error) {
	dir := d.Dir
	if _, err := os.Stat(filepath.Join(dir, "tile")); err != nil && d.Origin != "" {
		if _, err := os.Stat(filepath.Join(dir, url.PathEscape(d.Origin), "tile")); err == nil {
			dir = filepath.Join(dir, url.PathEscape(d.Origin))
		}
	}
	file := filepath.Join(dir, filepath.FromSlash(path))
	b, err := os.ReadFile(file)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return b, err
	}
	full, width, partial := strings.Cut(path, ".p/")
	if !partial {
		return nil, err
	}
	if b, ferr := os.ReadFile(filepath.Join(dir, filepath.FromSlash(full))); ferr == nil {
		return b, nil
	}
	w, _ := strconv.Atoi(width)
	list, _ := os.ReadDir(filepath.Join(dir, filepath.FromSlash(full)+".p"))
	for _, e := range list {
		if n, cerr := strconv.Atoi(e.Name()); cerr == nil && n > w {
			return os.ReadFile(filepath.Join(dir, filepath.FromSlash(full)+".p", e.Name()))
		}
	}
	return nil, err
}

// OpenTiles reads tiles from source: a URL (the log's, ending in /log/,
// or a mirror's) or a directory.
func OpenTiles(ctx context.Context, source, origin string) (Tiles, error) {
	if strings.HasPrefix(source, "http://") || strings.HasPrefix(source, "https://") {
		if !strings.HasSuffix(source, "/") {
			source += "/"
		}
		return &Remote{Base: source, Client: &http.Client{Timeout: time.Minute}, Ctx: ctx}, nil
	}
	if fi, err := os.Stat(source); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("--tiles %s: want a directory or an http(s) URL", source)
	}
	return TileDir{Dir: source, Origin: origin}, nil
}

// LogEntries is what recovery reads of the store's own log.
type LogEntries interface {
	LogEntries(ctx context.Context, from, to int64) ([][]byte, error)
}

// MissingEntries reads the entries of the tree cp from tiles, proves that
// they rebuild its root, that their first ref.Size rebuild ref's (the
// reference, which cp may extend), and that the store's leaves [0, have)
// are their first ones, and returns the entries [have, cp.Size) the store
// lacks.
func MissingEntries(ctx context.Context, tiles Tiles, cp, ref Checkpoint, db LogEntries, have int64) ([][]byte, error) {
	if have > cp.Size {
		return nil, fmt.Errorf("the database holds %d leaves, more than the %d to restore", have, cp.Size)
	}
	if ref.Size > cp.Size {
		return nil, fmt.Errorf("the tiles' checkpoint of %d leaves is older than the reference's %d", cp.Size, ref.Size)
	}
	var (
		b       TreeBuilder
		missing [][]byte
	)
	for n := int64(0); n < cp.Size; n += 1 << TileHeight {
		w := min(cp.Size-n, 1<<TileHeight)
		t := tlog.Tile{H: TileHeight, L: -1, N: n >> TileHeight, W: int(w)}
		data, err := tiles.Get(TilePath(t))
		if err != nil && w < 1<<TileHeight {
			t.W = 1 << TileHeight // a later copy's full bundle
			data, err = tiles.Get(TilePath(t))
		}
		if err != nil {
			return nil, fmt.Errorf("the entries from %d: %w", n, err)
		}
		entries, err := ParseEntryBundle(data)
		if err != nil || int64(len(entries)) < w {
			return nil, fmt.Errorf("entry bundle at %d: %d entries, want %d (%v)", n, len(entries), w, err)
		}
		entries = entries[:w]
		var own [][]byte
		if n < have {
			if own, err = db.LogEntries(ctx, n, min(have, n+w)); err != nil {
				return nil, err
			}
			if int64(len(own)) != min(have, n+w)-n {
				return nil, fmt.Errorf("the database's leaves from %d: %d, want %d", n, len(own), min(have, n+w)-n)
			}
		}
		for i, e := range entries {
			b.Add(e)
			if n+int64(i)+1 == ref.Size && b.Root() != ref.Hash {
				return nil, fmt.Errorf("the tiles' first %d entries do not rebuild the root of the reference: they are another log's, or another history", ref.Size)
			}
			switch idx := n + int64(i); {
			case idx >= have:
				missing = append(missing, e)
			case string(own[i]) != string(e):
				return nil, fmt.Errorf("leaf %d of the database is not the published one: its log was rewritten, not only cut; restore a backup made before leaf %d, or make a successor log (koekje successor-log)", idx, idx)
			}
		}
	}
	if b.Root() != cp.Hash {
		return nil, fmt.Errorf("the tiles' %d entries do not rebuild the root of the checkpoint to restore", cp.Size)
	}
	return missing, nil
}
