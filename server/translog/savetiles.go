package translog

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/tlog"
)

// TileSource is what saving a log's tiles reads of its store.
type TileSource interface {
	LatestCheckpoint(ctx context.Context) ([]byte, error)
	LogEntries(ctx context.Context, from, to int64) ([][]byte, error)
}

// SaveTiles keeps the log's entry bundles and its newest checkpoint in dir,
// in the tlog-tiles layout (dir/tile/entries/…, dir/checkpoint), for
// koekje recover-log: run often, it is the copy of the published log a
// restored database is recovered from. It only adds: a full bundle kept
// before is not written again, a partial one only when wider than every
// one kept of its tile, and the checkpoint only when larger; so a restored
// database's smaller log never takes the place of what was published. It
// returns the size of the tree the tiles hold.
func SaveTiles(ctx context.Context, db TileSource, logKey, dir string) (int64, error) {
	signed, err := db.LatestCheckpoint(ctx)
	if err != nil || signed == nil {
		return 0, err
	}
	cp, _, err := OpenCheckpoint(signed, logKey)
	if err != nil {
		return 0, err
	}
	// Another log's tiles (the one a successor log took over from) are
	// never mixed with these: bundles of the same index differ.
	if kept, err := os.ReadFile(filepath.Join(dir, stateCheckpoint)); err == nil {
		if other, _, _ := strings.Cut(string(kept), "\n"); other != cp.Origin {
			return 0, fmt.Errorf("%s keeps the tiles of the log %s, not of %s (its successor?): keep them, and this log's in another directory", dir, other, cp.Origin)
		}
	}
	for n := int64(0); n < cp.Size; n += 1 << TileHeight {
		w := min(cp.Size-n, 1<<TileHeight)
		t := tlog.Tile{H: TileHeight, L: -1, N: n >> TileHeight, W: int(w)}
		full := filepath.Join(dir, filepath.FromSlash(TilePath(tlog.Tile{H: TileHeight, L: -1, N: t.N, W: 1 << TileHeight})))
		if _, err := os.Stat(full); err == nil {
			continue
		}
		if w < 1<<TileHeight && widestPartial(full) >= w {
			continue
		}
		entries, err := db.LogEntries(ctx, n, n+w)
		if err != nil {
			return 0, err
		}
		if err := writeState(filepath.Join(dir, filepath.FromSlash(TilePath(t))), EntryBundle(entries)); err != nil {
			return 0, err
		}
	}
	if kept, err := os.ReadFile(filepath.Join(dir, stateCheckpoint)); err == nil {
		if old, _, err := OpenCheckpoint(kept, logKey); err == nil && old.Size >= cp.Size {
			return old.Size, nil
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return 0, err
	}
	return cp.Size, writeState(filepath.Join(dir, stateCheckpoint), signed)
}

// widestPartial is the width of the widest partial bundle kept of a tile
// whose full bundle is at full, 0 for none.
func widestPartial(full string) int64 {
	list, _ := os.ReadDir(full + ".p")
	var w int64
	for _, e := range list {
		if n, err := strconv.ParseInt(strings.TrimSpace(e.Name()), 10, 64); err == nil && n > w {
			w = n
		}
	}
	return w
}
