package translog

import (
	"os"
	"path/filepath"

	"golang.org/x/mod/sumdb/tlog"
)

// Dir reads a log saved to a directory as its server serves it (the files
// checkpoint and tile/…, as `wget -r` of /log/ leaves them): a
// tlog.TileReader like Remote, for verifying without the network. The
// saved tiles must be those of the saved checkpoint's tree.
type Dir struct{ Root string }

// Get reads one path under Root: "checkpoint", or a tile's path.
func (d Dir) Get(path string) ([]byte, error) {
	return os.ReadFile(filepath.Join(d.Root, filepath.FromSlash(path)))
}

// Height is the tiles' height.
func (d Dir) Height() int { return TileHeight }

// ReadTiles reads each tile.
func (d Dir) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		b, err := d.Get(TilePath(t))
		if err != nil {
			return nil, err
		}
		out[i] = b
	}
	return out, nil
}

// SaveTiles keeps nothing.
func (d Dir) SaveTiles([]tlog.Tile, [][]byte) {}
