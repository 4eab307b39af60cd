package server

import (
	"context"
	"sync"
	"time"

	"github.com/koekje/koekje/static"
)

// earlierParts serves the second parts of a site's earlier banner
// versions. A first part names its second part, and a browser caches the
// first part for 5 minutes, a page left open for as long as it is open: so
// after a configuration change (a reload, a restart, or another instance
// still on the old configuration) pages ask for a second part the server
// no longer builds. Every version is in the store (Versions), and its
// second part is made again from it (static.MoreOf), byte for byte: the
// index from second part to version is built once per site and grows
// with the versions stored since, at most every indexEvery, so that
// requests for made-up parts cost a map lookup.
type earlierParts struct {
	mu      sync.Mutex
	index   map[string]map[string]string // site → second part's ETag → version hash
	seen    map[string]map[string]bool   // site → versions indexed
	indexed map[string]time.Time         // site → when its index was last grown
	parts   map[string]*servedBundle     // "site.etag" → the part, as served
}

const (
	indexEvery = 10 * time.Second
	// maxEarlier bounds the earlier parts kept made, over all sites.
	maxEarlier = 64
)

// part returns the served second part of site named etag, made from a
// stored version; nil when no version of the site has it.
func (e *earlierParts) part(ctx context.Context, s *Server, site, etag string) *servedBundle {
	e.mu.Lock()
	defer e.mu.Unlock()
	key := site + "." + etag
	if p := e.parts[key]; p != nil {
		return p
	}
	hash, ok := e.index[site][etag]
	if !ok && time.Since(e.indexed[site]) >= indexEvery {
		e.grow(ctx, s, site)
		hash, ok = e.index[site][etag]
	}
	if !ok {
		return nil
	}
	body, err := s.store.Version(ctx, site, hash)
	if err != nil {
		s.log.Warn("an earlier banner version", "site", site, "version", hash, "err", err.Error())
		return nil
	}
	p, err := static.MoreOf(body)
	if err != nil || p.ETag != etag {
		return nil
	}
	if len(e.parts) >= maxEarlier {
		clear(e.parts)
	}
	if e.parts == nil {
		e.parts = map[string]*servedBundle{}
	}
	sb := newServedBundle(&static.Bundle{Site: site, More: *p})
	e.parts[key] = sb
	return sb
}

// grow indexes the versions of site stored since its index was last grown.
func (e *earlierParts) grow(ctx context.Context, s *Server, site string) {
	if e.index == nil {
		e.index, e.seen, e.indexed = map[string]map[string]string{}, map[string]map[string]bool{}, map[string]time.Time{}
	}
	e.indexed[site] = time.Now()
	hashes, err := s.store.Versions(ctx, site)
	if err != nil {
		s.log.Warn("listing the earlier banner versions", "site", site, "err", err.Error())
		return
	}
	if e.index[site] == nil {
		e.index[site], e.seen[site] = map[string]string{}, map[string]bool{}
	}
	for _, h := range hashes {
		if e.seen[site][h] {
			continue
		}
		e.seen[site][h] = true
		body, err := s.store.Version(ctx, site, h)
		if err != nil {
			continue
		}
		if p, err := static.MoreOf(body); err == nil {
			e.index[site][p.ETag] = h
		}
	}
}
