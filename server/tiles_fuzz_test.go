package server_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/koekje/koekje/server/translog"
)

// Any path under /log/tile/ is a tile the tree of 300 leaves holds, served
// whole, or a JSON 404 (414 when the URI is too long): never a panic, never
// a 500, never a tile under a path other than its own.
func FuzzTilePath(f *testing.F) {
	s, db, key := newLoggedServerWith(f, nil)
	postMany(f, s, 300)
	waitForCheckpoint(f, db, key, 300)
	for _, seed := range []string{
		"0/000", "0/001.p/44", "1/000.p/1", "entries/000", "entries/001.p/44", "0/001.p/45", "2/000.p/1",
		"entries/x072/x057/x594/x037/x927/936", "0/x036/x028/x797/x018/x963/968", "1/x281/x474/x976/x710/656.p/1",
		"63/000.p/255", "entries/x999/x999/x999/x999/x999/x999/999", "entries/x009/x223/x372/x036/x854/x775/807",
		"0/000.p/0", "0/000.p/256", "0/000.p/07", "00/000", "-1/000", "entries/", "0/x/000", "0/000/", "0//000",
		"entries/000.p/1.p/1", "0/+00", "0/-01", "0/0x1", "0/1e3", "0/x000/000", "0/ 00", "entries/000\x00",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, path string) {
		req := httptest.NewRequest("GET", "/", nil)
		req.URL.Path = "/log/tile/" + path
		req.RequestURI = req.URL.EscapedPath()
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK:
			tile, err := translog.ParseTilePath("tile/" + path)
			if err != nil || translog.TilePath(tile) != "tile/"+path {
				t.Fatalf("%.200q served, but it is not a tile's path (%v)", path, err)
			}
			size := tile.W * tlog.HashSize
			if tile.L == -1 {
				size = tile.W * (2 + translog.LeafSize)
			}
			// A tree of 300 holds tile 0 and 44 hashes of tile 1 at level 0
			// (and in entry bundles), and one hash at level 1.
			holds := tile.L <= 0 && (tile.N == 0 || tile.N == 1 && tile.W <= 44) || tile.L == 1 && tile.N == 0 && tile.W == 1
			if rec.Body.Len() != size || !holds {
				t.Fatalf("%.200q: %d bytes of a tile the tree does not hold", path, rec.Body.Len())
			}
		case http.StatusNotFound, http.StatusRequestURITooLong:
			if !strings.HasPrefix(rec.Body.String(), `{"error":{"code":"`) {
				t.Fatalf("%.200q: %d without the JSON error: %q", path, rec.Code, rec.Body)
			}
		default:
			t.Fatalf("%.200q: %d %q", path, rec.Code, rec.Body)
		}
	})
}
