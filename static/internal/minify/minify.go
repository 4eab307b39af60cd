// Package minify turns the banner's sources into the minified files in
// static/min. Only `go generate ./static` and the test that holds those
// files current use it, so the server does not link esbuild.
package minify

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/evanw/esbuild/pkg/api"
)

// Sources are the files minified into static/min under the same name.
var Sources = []string{"banner.js", "banner.css", "box.css", "bar.css", "button.css", "declaration.css"}

// Placeholders are the names in banner.js that a site's bundle replaces
// with its configuration, hash and style; each must survive minification
// exactly once.
var Placeholders = []string{"KOEKJE_CONFIG", "KOEKJE_HASH", "KOEKJE_CSS", "KOEKJE_DCSS"}

// All minifies every source in fsys and returns the results by name.
func All(fsys fs.FS) (map[string][]byte, error) {
	out := map[string][]byte{}
	for _, name := range Sources {
		src, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		opts := api.TransformOptions{
			Loader: api.LoaderCSS, MinifyWhitespace: true, MinifySyntax: true,
			Target: api.ES2020, Charset: api.CharsetUTF8, Sourcefile: name,
		}
		if strings.HasSuffix(name, ".js") {
			opts.Loader, opts.Format, opts.MinifyIdentifiers = api.LoaderJS, api.FormatIIFE, true
		}
		res := api.Transform(string(src), opts)
		if err := buildError(res.Errors); err != nil {
			return nil, err
		}
		code := bytes.TrimSpace(res.Code)
		if opts.Loader == api.LoaderJS {
			for _, p := range Placeholders {
				if n := bytes.Count(code, []byte(p)); n != 1 {
					return nil, fmt.Errorf("%s: %s occurs %d times after minifying, want once", name, p, n)
				}
			}
		}
		out[name] = append(code, '\n')
	}
	return out, nil
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
