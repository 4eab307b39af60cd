package translog

import (
	"context"
	"fmt"
	"io"
	"net/http"

	"golang.org/x/mod/sumdb/tlog"
)

// Remote reads a log's checkpoint and tiles from its server over HTTP, as
// any client of tlog-tiles does; it is a tlog.TileReader that keeps no
// tiles.
type Remote struct {
	Base   string // the log's URL, ending in "/log/"
	Client *http.Client
	Ctx    context.Context
}

// Get fetches one path under Base: "checkpoint", or a tile's path. A body
// over 1 MiB (no tile or checkpoint is that large) is an error.
func (r *Remote) Get(path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(r.Ctx, "GET", r.Base+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := r.Client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20+1))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", path, resp.Status)
	}
	if len(b) > 1<<20 {
		return nil, fmt.Errorf("%s: larger than 1 MiB", path)
	}
	return b, nil
}

// Height is the tiles' height.
func (r *Remote) Height() int { return TileHeight }

// ReadTiles fetches each tile.
func (r *Remote) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		b, err := r.Get(TilePath(t))
		if err != nil {
			return nil, err
		}
		out[i] = b
	}
	return out, nil
}

// SaveTiles keeps nothing.
func (r *Remote) SaveTiles([]tlog.Tile, [][]byte) {}
