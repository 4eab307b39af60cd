package server

import (
	"bytes"
	"compress/gzip"
	"container/list"
	"context"
	"errors"
	"math"
	"math/bits"
	"strconv"
	"sync"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/koekje/koekje/server/translog"
)

// tileCacheBytes bounds the memory the tile route keeps: about 2,000 full
// hash tiles, or the tiles of a log of half a million leaves.
const tileCacheBytes = 32 << 20

var (
	errTileTooFar = errors.New("the tile lies beyond the largest tree a log can have")
	errTileRead   = errors.New("reading the tile did not finish")
)

// parseTile reads a tile path (C2SP tlog-tiles: tile/<L>/<N>[.p/<W>] or
// tile/entries/<N>[.p/<W>]) and returns the tile with the size of the
// smallest tree that holds it, (N·256 + W)·256^L leaves. A tile that would
// need more than 2^63-1 leaves is refused rather than computed modulo 2^64,
// where it would wrap around to tile 0.
func parseTile(path string) (tlog.Tile, int64, error) {
	t, err := translog.ParseTilePath(path)
	if err != nil {
		return t, 0, err
	}
	n := uint64(t.N)
	if n >= 1<<(63-translog.TileHeight) {
		return t, 0, errTileTooFar
	}
	end := n<<translog.TileHeight + uint64(t.W) // at most 2^63
	shift := translog.TileHeight * max(t.L, 0)
	if end > math.MaxInt64 || bits.Len64(end)+shift > 63 {
		return t, 0, errTileTooFar
	}
	return t, int64(end << shift), nil
}

// servedTile is a tile as the route serves it, with its headers made once:
// the bytes, and for an entry bundle the same bytes gzipped.
type servedTile struct {
	tile           tlog.Tile
	plain, gzipped []byte
	plainLength    []string
	gzippedLength  []string
}

func newServedTile(t tlog.Tile, body []byte) (*servedTile, error) {
	st := &servedTile{tile: t, plain: body, plainLength: []string{strconv.Itoa(len(body))}}
	if t.L == -1 {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		zw.Write(body)
		if err := zw.Close(); err != nil {
			return nil, err
		}
		st.gzipped, st.gzippedLength = b.Bytes(), []string{strconv.Itoa(b.Len())}
	}
	return st, nil
}

// cost is what the tile counts against the cache's bound: its bodies and
// roughly what holding them costs.
func (st *servedTile) cost() int { return len(st.plain) + len(st.gzipped) + 256 }

// tileCache keeps the tiles most recently served, up to a bound in bytes.
// A tile's bytes never change (a partial tile is a prefix of the full one,
// and has its own path), so nothing in it goes stale. Requests for a tile
// that is being read from the store wait for that read instead of making
// their own.
type tileCache struct {
	max     int
	mu      sync.Mutex
	used    int
	order   list.List // of *servedTile, most recently used first
	items   map[tlog.Tile]*list.Element
	pending map[tlog.Tile]*tileRead
}

type tileRead struct {
	done chan struct{}
	st   *servedTile
	err  error
}

func newTileCache(maxBytes int) *tileCache {
	return &tileCache{max: maxBytes, items: map[tlog.Tile]*list.Element{}, pending: map[tlog.Tile]*tileRead{}}
}

// get returns the tile from memory, or from read, which it then keeps.
func (c *tileCache) get(ctx context.Context, t tlog.Tile, read func(context.Context, tlog.Tile) (*servedTile, error)) (*servedTile, error) {
	c.mu.Lock()
	if e, ok := c.items[t]; ok {
		c.order.MoveToFront(e)
		c.mu.Unlock()
		return e.Value.(*servedTile), nil
	}
	if r, ok := c.pending[t]; ok {
		c.mu.Unlock()
		select {
		case <-r.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if r.err != nil {
			// Perhaps only that request's context ended: try on our own.
			return read(ctx, t)
		}
		return r.st, nil
	}
	// Until read returns, r fails: a panic in it must not hand waiters a nil tile.
	r := &tileRead{done: make(chan struct{}), err: errTileRead}
	c.pending[t] = r
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.pending, t)
		if r.err == nil {
			c.add(r.st)
		}
		c.mu.Unlock()
		close(r.done)
	}()
	r.st, r.err = read(ctx, t)
	return r.st, r.err
}

// add keeps st, forgetting the least recently used tiles beyond the bound.
func (c *tileCache) add(st *servedTile) {
	if _, ok := c.items[st.tile]; ok {
		return
	}
	c.items[st.tile] = c.order.PushFront(st)
	c.used += st.cost()
	for c.used > c.max && c.order.Len() > 1 {
		old := c.order.Remove(c.order.Back()).(*servedTile)
		delete(c.items, old.tile)
		c.used -= old.cost()
	}
}

// len reports how many tiles are kept and their cost.
func (c *tileCache) len() (int, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len(), c.used
}
