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
	"slices"
	"strings"

	"github.com/andybalholm/brotli"
	"github.com/evanw/esbuild/pkg/api"

	"github.com/koekje/koekje/config"
)

//go:embed banner.js banner.css declaration.css texts.json
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
	parties := ThirdParties(s)
	for _, l := range s.Languages {
		t, ok := all[l]
		if !ok {
			return nil, fmt.Errorf("no banner texts for language %q", l)
		}
		if v.Texts[l], err = siteTexts(t, parties); err != nil {
			return nil, fmt.Errorf("texts for %q: %w", l, err)
		}
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
	dcss, err := minify("declaration.css", api.LoaderCSS)
	if err != nil {
		return nil, err
	}
	cssJSON, _ := json.Marshal(strings.TrimSpace(string(css)))
	dcssJSON, _ := json.Marshal(strings.TrimSpace(string(dcss)))
	hashJSON, _ := json.Marshal(b.Hash)
	src, err := files.ReadFile("banner.js")
	if err != nil {
		return nil, err
	}
	var in bytes.Buffer
	fmt.Fprintf(&in, "const CONFIG=%s,HASH=%s,CSS=%s,DCSS=%s;\n", body, hashJSON, cssJSON, dcssJSON)
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

// siteTexts makes one language's texts for a site: the first layer's intro
// names the site's third parties (intro0 is for a site without any), and
// what only the build needs is left out, so the stored version holds the
// sentences exactly as a visitor reads them.
func siteTexts(raw json.RawMessage, parties []string) (json.RawMessage, error) {
	var t map[string]any
	if err := json.Unmarshal(raw, &t); err != nil {
		return nil, err
	}
	and, _ := t["and"].(string)
	intro, _ := t["intro"].(string)
	if len(parties) == 0 {
		t["intro"] = t["intro0"]
	} else {
		t["intro"] = strings.ReplaceAll(intro, "{p}", joinList(parties, and))
	}
	delete(t, "intro0")
	delete(t, "and")
	return json.Marshal(t)
}

// joinList writes "A", "A and B", "A, B and C".
func joinList(items []string, and string) string {
	if len(items) < 2 {
		return strings.Join(items, "")
	}
	return strings.Join(items[:len(items)-1], ", ") + " " + and + " " + items[len(items)-1]
}

// legalWords are the trailing words of a company's legal name that a
// visitor does not need: legal forms, and the country or role of the entity.
var legalWords = map[string]bool{
	"ltd": true, "limited": true, "unlimited": true, "company": true, "inc": true, "llc": true,
	"corp": true, "corporation": true, "co": true, "plc": true, "uc": true, "bv": true, "nv": true,
	"gmbh": true, "ag": true, "kg": true, "sa": true, "sas": true, "sarl": true, "se": true,
	"ireland": true, "platforms": true, "operations": true, "europe": true, "emea": true,
	"international": true, "holdings": true, "&": true,
}

// ThirdParties names the companies other than the controller behind the
// site's optional services, as a visitor knows them: "Google Ireland Ltd."
// becomes "Google", "Meta Platforms Ireland Ltd." becomes "Meta".
func ThirdParties(s *config.Site) []string {
	var out []string
	for _, sv := range s.Services {
		if c := s.Category(sv.Category); c == nil || c.Required || sv.Provider == s.Controller.Organisation {
			continue
		}
		name := sv.Provider
		if i := strings.Index(name, " ("); i > 0 {
			name = name[:i]
		}
		words := strings.Fields(name)
		for len(words) > 1 && legalWords[strings.ToLower(strings.ReplaceAll(words[len(words)-1], ".", ""))] {
			words = words[:len(words)-1]
		}
		if name = strings.Join(words, " "); !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return out
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
