// Package static holds the banner's source and its texts, and builds the
// per-site bundle served at /s/{site}.js; the demo site sits apart in demo/.
package static

import (
	"bytes"
	"compress/gzip"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/andybalholm/brotli"
	"github.com/evanw/esbuild/pkg/api"

	"github.com/koekje/koekje/config"
)

//go:embed banner.js banner.css texts.json
var files embed.FS

//go:embed demo
var demo embed.FS

// Demo is the demo site: index.html and its assets. It is no input of any
// bundle.
var Demo, _ = fs.Sub(demo, "demo")

// Bundle is one site's banner: the minified script with its configuration
// and texts, precompressed once.
type Bundle struct {
	Site    string
	Version []byte // what a visitor is shown: the site's configuration and texts, as JSON
	Hash    string // config.Hash(Version): the config_hash a choice refers to
	JS      []byte
	Gzip    []byte
	Brotli  []byte
	ETag    string // strong validator of JS; encodings append a suffix
}

// version is the JSON a bundle's hash covers.
type version struct {
	Site  json.RawMessage            `json:"site"`
	Texts map[string]json.RawMessage `json:"texts"`
}

// Build makes the bundle for one site.
func Build(s *config.Site) (*Bundle, error) {
	pub, err := s.Public()
	if err != nil {
		return nil, fmt.Errorf("encode site %s: %w", s.ID, err)
	}
	all, err := texts()
	if err != nil {
		return nil, err
	}
	v := version{Site: pub, Texts: map[string]json.RawMessage{}}
	for _, l := range s.Languages {
		t, ok := all[l]
		if !ok {
			return nil, fmt.Errorf("no banner texts for language %q", l)
		}
		v.Texts[l] = t
	}
	body, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	b := &Bundle{Site: s.ID, Version: body, Hash: config.Hash(body)}

	css, err := minify("banner.css", api.LoaderCSS)
	if err != nil {
		return nil, err
	}
	cssJSON, _ := json.Marshal(strings.TrimSpace(string(css)))
	hashJSON, _ := json.Marshal(b.Hash)
	src, err := files.ReadFile("banner.js")
	if err != nil {
		return nil, err
	}
	var in bytes.Buffer
	fmt.Fprintf(&in, "const CONFIG=%s,HASH=%s,CSS=%s;\n", body, hashJSON, cssJSON)
	in.Write(src)
	res := api.Transform(in.String(), api.TransformOptions{
		Loader:            api.LoaderJS,
		Format:            api.FormatIIFE,
		Target:            api.ES2020,
		MinifyWhitespace:  true,
		MinifyIdentifiers: true,
		MinifySyntax:      true,
		Charset:           api.CharsetUTF8,
		Sourcefile:        "banner.js",
	})
	if err := buildError(res.Errors); err != nil {
		return nil, err
	}
	b.JS = res.Code
	b.ETag = config.Hash(b.JS)[7:23]
	if b.Gzip, err = gzipBytes(b.JS); err != nil {
		return nil, err
	}
	if b.Brotli, err = brotliBytes(b.JS); err != nil {
		return nil, err
	}
	return b, nil
}

// texts returns the interface texts of every language, keyed by language.
func texts() (map[string]json.RawMessage, error) {
	raw, err := files.ReadFile("texts.json")
	if err != nil {
		return nil, err
	}
	var t map[string]json.RawMessage
	if err := json.Unmarshal(raw, &t); err != nil {
		return nil, fmt.Errorf("texts.json: %w", err)
	}
	for l, v := range t {
		var compact bytes.Buffer
		if err := json.Compact(&compact, v); err != nil {
			return nil, err
		}
		t[l] = compact.Bytes()
	}
	return t, nil
}

func minify(name string, loader api.Loader) ([]byte, error) {
	src, err := files.ReadFile(name)
	if err != nil {
		return nil, err
	}
	res := api.Transform(string(src), api.TransformOptions{
		Loader: loader, MinifyWhitespace: true, MinifySyntax: true, Sourcefile: name,
		Target: api.ES2020,
	})
	if err := buildError(res.Errors); err != nil {
		return nil, err
	}
	return res.Code, nil
}

func buildError(msgs []api.Message) error {
	var errs []error
	for _, m := range msgs {
		if m.Location != nil {
			errs = append(errs, fmt.Errorf("%s:%d:%d: %s", m.Location.File, m.Location.Line, m.Location.Column, m.Text))
		} else {
			errs = append(errs, errors.New(m.Text))
		}
	}
	return errors.Join(errs...)
}

func gzipBytes(b []byte) ([]byte, error) {
	var buf bytes.Buffer
	w, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if _, err := w.Write(b); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func brotliBytes(b []byte) ([]byte, error) {
	var buf bytes.Buffer
	w := brotli.NewWriterLevel(&buf, brotli.BestCompression)
	if _, err := w.Write(b); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
