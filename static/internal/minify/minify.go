// Package minify turns the banner's sources into the minified files in
// static/min. Only `go generate ./static` and the test that holds those
// files current use it, so the server does not link esbuild.
package minify

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/evanw/esbuild/pkg/api"
)

// Sources are the files minified into static/min under the same name.
var Sources = []string{"banner.js", "more.js", "banner.css", "settings.css", "box.css", "bar.css", "button.css", "declaration.css"}

// Placeholders are the names in each script that a site's bundle replaces
// with its configuration, hash, style and the second part's address; each
// must survive minification exactly once.
var Placeholders = map[string][]string{
	"banner.js": {"KOEKJE_CONFIG", "KOEKJE_HASH", "KOEKJE_CSS", "KOEKJE_MORE", "KOEKJE_SRI"},
	"more.js":   {"KOEKJE_REST", "KOEKJE_SCSS", "KOEKJE_DCSS"},
}

// Props are the configuration's keys the minifier shortens in the banner's
// two scripts, alike in both (the second is minified with the first's
// names); a site's bundle renames them in its configuration the same way,
// after props.json. None of them may name a property of the DOM, of the choice
// sent to the server or of the page's API. The interface texts' keys are
// among them.
const Props = "^(consent_mode|required|description|privacy_policy|provider|cookies|duration|retention|purpose|domain|category|controller|organisation|address|email|authority|default_language|choice_months|layout|settings_button|intro|categories|banner|site|texts|" +
	"accept|reject|allow|always|blocked|close|complain|once|privacy|receipt|save|settings|stale|who)$"

// All minifies every source in fsys and returns the results by name, and
// the shortened keys as props.json.
func All(fsys fs.FS) (map[string][]byte, error) {
	out := map[string][]byte{}
	mangled := map[string]any{}
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
			opts.MangleProps, opts.MangleCache = Props, mangled
		}
		res := api.Transform(string(src), opts)
		if err := buildError(res.Errors); err != nil {
			return nil, err
		}
		code := bytes.TrimSpace(res.Code)
		if opts.Loader == api.LoaderJS {
			for _, p := range Placeholders[name] {
				if n := bytes.Count(code, []byte(p)); n != 1 {
					return nil, fmt.Errorf("%s: %s occurs %d times after minifying, want once", name, p, n)
				}
			}
		}
		out[name] = append(code, '\n')
		if res.MangleCache != nil {
			mangled = res.MangleCache
		}
	}
	props, err := json.MarshalIndent(mangled, "", "  ")
	if err != nil {
		return nil, err
	}
	out["props.json"] = append(props, '\n')
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
