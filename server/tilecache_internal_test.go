package server

import (
	"context"
	"errors"
	"math"
	"testing"

	"golang.org/x/mod/sumdb/tlog"
)

// The smallest tree that holds a tile, or a refusal where it would pass
// 2^63-1 leaves.
func TestParseTile(t *testing.T) {
	for _, tt := range []struct {
		path string
		end  int64
	}{
		{"tile/0/000", 256},
		{"tile/entries/001.p/44", 300},
		{"tile/1/000.p/1", 256},
		{"tile/2/000.p/1", 65536},
		{"tile/0/x001/x234/067", 1234068 * 256},
		{"tile/entries/x036/x028/x797/x018/x963/967.p/255", math.MaxInt64}, // 2^55-1: the last bundle a log can have
		{"tile/entries/x036/x028/x797/x018/x963/967", -1},                  // full, it would need 2^63 leaves
		{"tile/7/000.p/127", 127 << 56},
		{"tile/entries/x036/x028/x797/x018/x963/968", -1}, // 2^55
		{"tile/entries/x072/x057/x594/x037/x927/936", -1}, // 2^56
		{"tile/6/000.p/128", 128 << 48},
		{"tile/7/000.p/128", -1},
		{"tile/8/000.p/1", -1},
		{"tile/63/000.p/1", -1},
		{"tile/1/x140/x737/x488/x355/327.p/255", math.MaxInt64 - 255}, // 2^47-1
		{"tile/1/x140/x737/x488/x355/327", -1},
		{"tile/1/x281/x474/x976/x710/656.p/1", -1}, // 2^48
	} {
		_, end, err := parseTile(tt.path)
		if tt.end == -1 && !errors.Is(err, errTileTooFar) || tt.end != -1 && (err != nil || end != tt.end) {
			t.Errorf("%s: %d, %v; want %d", tt.path, end, err, tt.end)
		}
	}
}

// The cache keeps the tiles used last within its bound.
func TestTileCacheBound(t *testing.T) {
	tile := func(n int64) tlog.Tile { return tlog.Tile{H: 8, L: 0, N: n, W: 256} }
	reads := 0
	read := func(_ context.Context, t tlog.Tile) (*servedTile, error) {
		reads++
		return newServedTile(t, make([]byte, 8192))
	}
	c := newTileCache(3 * (8192 + 256))
	ctx := context.Background()
	for _, n := range []int64{0, 1, 2, 0, 3, 4} { // 0 is used again before 3 and 4 come
		if _, err := c.get(ctx, tile(n), read); err != nil {
			t.Fatal(err)
		}
	}
	if n, used := c.len(); n != 3 || used != 3*(8192+256) || reads != 5 {
		t.Fatalf("%d tiles, %d bytes, %d reads", n, used, reads)
	}
	for _, n := range []int64{0, 3, 4} {
		c.get(ctx, tile(n), read)
	}
	if reads != 5 {
		t.Errorf("a kept tile was read again (%d reads)", reads)
	}
	c.get(ctx, tile(1), read)
	if reads != 6 {
		t.Errorf("a forgotten tile was not read again (%d reads)", reads)
	}
}
