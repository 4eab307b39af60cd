package translog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/tlog"
)

// TileHeight is the height of every tile: 256 hashes or entries a tile,
// as C2SP tlog-tiles fixes it.
const TileHeight = 8

// TilePath is a tile's path under the log's prefix, as C2SP tlog-tiles
// writes it: tile/<L>/<N>[.p/<W>], or tile/entries/<N>[.p/<W>] for the
// entry bundle of level -1.
func TilePath(t tlog.Tile) string {
	level := strconv.Itoa(t.L)
	if t.L == -1 {
		level = "entries"
	}
	p := "tile/" + level + "/" + encodeIndex(t.N)
	if t.W != 1<<TileHeight {
		p += ".p/" + strconv.Itoa(t.W)
	}
	return p
}

// ParseTilePath reads a path that TilePath wrote.
func ParseTilePath(path string) (tlog.Tile, error) {
	t := tlog.Tile{H: TileHeight, W: 1 << TileHeight}
	rest, ok := strings.CutPrefix(path, "tile/")
	if !ok {
		return t, errors.New("not a tile path")
	}
	level, rest, _ := strings.Cut(rest, "/")
	if level == "entries" {
		t.L = -1
	} else {
		l, err := strconv.Atoi(level)
		if err != nil || l < 0 || l > 63 || strconv.Itoa(l) != level {
			return t, fmt.Errorf("tile level %q", level)
		}
		t.L = l
	}
	if index, width, partial := strings.Cut(rest, ".p/"); partial {
		w, err := strconv.Atoi(width)
		if err != nil || w < 1 || w >= 1<<TileHeight || strconv.Itoa(w) != width {
			return t, fmt.Errorf("tile width %q", width)
		}
		t.W, rest = w, index
	}
	n, err := decodeIndex(rest)
	if err != nil {
		return t, err
	}
	t.N = n
	return t, nil
}

// encodeIndex writes n as 3-digit path elements, all but the last with x.
func encodeIndex(n int64) string {
	s := fmt.Sprintf("%03d", n%1000)
	for n /= 1000; n > 0; n /= 1000 {
		s = fmt.Sprintf("x%03d/", n%1000) + s
	}
	return s
}

func decodeIndex(s string) (int64, error) {
	parts := strings.Split(s, "/")
	var n int64
	for i, p := range parts {
		if i < len(parts)-1 {
			var ok bool
			if p, ok = strings.CutPrefix(p, "x"); !ok {
				return 0, fmt.Errorf("tile index %q", s)
			}
		}
		if len(p) != 3 || strings.Trim(p, "0123456789") != "" {
			return 0, fmt.Errorf("tile index %q", s)
		}
		d, _ := strconv.Atoi(p)
		if n > (1<<62)/1000 {
			return 0, fmt.Errorf("tile index %q too large", s)
		}
		n = n*1000 + int64(d)
	}
	if encodeIndex(n) != s {
		return 0, fmt.Errorf("tile index %q is not canonical", s)
	}
	return n, nil
}

// EntryBundle joins entries as C2SP tlog-tiles bundles them: each with its
// length as a big-endian uint16 in front.
func EntryBundle(entries [][]byte) []byte {
	var b []byte
	for _, e := range entries {
		b = binary.BigEndian.AppendUint16(b, uint16(len(e)))
		b = append(b, e...)
	}
	return b
}

// ParseEntryBundle splits a bundle into its entries.
func ParseEntryBundle(b []byte) ([][]byte, error) {
	var out [][]byte
	for len(b) > 0 {
		if len(b) < 2 {
			return nil, errors.New("truncated entry bundle")
		}
		n := int(binary.BigEndian.Uint16(b))
		if len(b) < 2+n {
			return nil, errors.New("truncated entry bundle")
		}
		out, b = append(out, b[2:2+n]), b[2+n:]
	}
	return out, nil
}
