package config

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
)

//go:embed demo.yaml
var demoYAML []byte

// Schema is sites.schema.json, the JSON Schema (draft-07) of a
// configuration file, for editors: the server publishes it at
// /config/sites.schema.json.
//
//go:embed sites.schema.json
var Schema []byte

// maxFileSize bounds a configuration file; real ones are a few kilobytes.
const maxFileSize = 1 << 20

// Demo returns the embedded demo configuration used when no file is given.
func Demo() *Config {
	c, err := Load("demo.yaml", bytes.NewReader(demoYAML))
	if err != nil {
		panic("embedded demo config is invalid: " + err.Error())
	}
	return c
}

// LoadFile loads and validates the configuration at path.
func LoadFile(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open config: %w", err)
	}
	defer f.Close()
	return Load(path, f)
}

// Load parses a configuration from r, fills in defaults and validates it.
// Every error names the file, the line and column, and the YAML path:
//
//	sites.yaml:12:9: sites[0].categories[1].title: missing text for language "en"
//
// A file may have several; they come one a line.
func Load(name string, r io.Reader) (*Config, error) {
	src, err := io.ReadAll(io.LimitReader(r, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read config %s: %w", name, err)
	}
	if len(src) > maxFileSize {
		return nil, &Error{File: name, Problems: []Problem{{Path: topLevel, Msg: fmt.Sprintf("larger than %d bytes", maxFileSize)}}}
	}
	c, probs := load(src)
	if len(probs) > 0 {
		return nil, &Error{File: name, Problems: probs}
	}
	return c, nil
}

// Error is everything wrong with a configuration file, one problem a line.
type Error struct {
	File     string
	Problems []Problem
}

func (e *Error) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.In(e.File)
	}
	return strings.Join(lines, "\n")
}

// In writes the problem as found in file: "sites.yaml:12:9: path: message".
func (p Problem) In(file string) string {
	return fmt.Sprintf("%s:%d:%d: %s: %s", file, max(p.Line, 1), max(p.Col, 1), orTop(p.Path), p.Msg)
}

func load(src []byte) (*Config, []Problem) {
	body, err := parse(src)
	if err != nil {
		p := Problem{Path: topLevel, Msg: err.Error()}
		var ye yaml.Error
		var sd secondDocument
		if errors.As(err, &sd) {
			p.Rule = "one-document"
			if sd.tok != nil && sd.tok.Position != nil {
				p.Line, p.Col = sd.tok.Position.Line, sd.tok.Position.Column
			}
		} else if errors.As(err, &ye) {
			p.Msg = ye.GetMessage()
			if t := ye.GetToken(); t != nil && t.Position != nil {
				p.Line, p.Col = t.Position.Line, t.Position.Column
				p.Path = orTop(pathBefore(src, p.Line, p.Col))
			}
		}
		return nil, []Problem{p}
	}
	if probs := checkTypes(body); len(probs) > 0 {
		return nil, probs
	}
	var c Config
	if err := decode(body, &c); err != nil {
		// The checks above should leave nothing for the decoder to refuse;
		// should it still, its position is kept and the path found from it.
		p := Problem{Path: topLevel, Msg: err.Error()}
		var ye yaml.Error
		if errors.As(err, &ye) {
			p.Msg = ye.GetMessage()
			if t := ye.GetToken(); t != nil && t.Position != nil {
				p.Line, p.Col = t.Position.Line, t.Position.Column
				p.Path = pathAt(body, t)
				if p.Path == "" {
					p.Path = orTop(pathBefore(src, p.Line, p.Col))
				}
			}
		}
		return nil, []Problem{p}
	}
	c.setDefaults()
	probs, warns := c.validate()
	for i := range probs {
		probs[i].Line, probs[i].Col = position(body, probs[i].Path)
	}
	for i := range warns {
		warns[i].Line, warns[i].Col = position(body, warns[i].Path)
	}
	c.Warnings = warns
	return &c, probs
}

// parse reads the file's single YAML document; its body is nil for an
// empty file. The YAML library has been seen to panic on some malformed
// input (found by FuzzLoad); that is turned into an error.
func parse(src []byte) (body ast.Node, err error) {
	defer func() {
		if r := recover(); r != nil {
			body, err = nil, fmt.Errorf("the YAML parser failed on this file (%v)", r)
		}
	}()
	f, err := parser.ParseBytes(src, 0)
	if err != nil {
		return nil, err
	}
	var docs []*ast.DocumentNode
	for _, d := range f.Docs {
		if d != nil && d.Body != nil {
			docs = append(docs, d)
		}
	}
	switch {
	case len(docs) == 0:
		return nil, nil
	case len(docs) > 1:
		tok := docs[1].Start
		if tok == nil {
			tok = docs[1].Body.GetToken()
		}
		return nil, secondDocument{tok}
	}
	return docs[0].Body, nil
}

// secondDocument is the error of a file with more than one document.
type secondDocument struct{ tok *token.Token }

func (secondDocument) Error() string { return "a second YAML document (---): the file holds one" }

// decode fills c from the syntax tree, refusing unknown keys.
func decode(body ast.Node, c *Config) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("the YAML decoder failed on this file (%v)", r)
		}
	}()
	if body == nil {
		return nil
	}
	return yaml.NodeToValue(body, c, yaml.DisallowUnknownField())
}

// position finds the line and column of the node at path
// ("sites[0].categories[1].title"), or of its nearest ancestor present in
// the file when the field is missing.
func position(body ast.Node, path string) (line, col int) {
	if body == nil {
		return 1, 1
	}
	defer func() {
		if recover() != nil {
			line, col = 1, 1
		}
	}()
	for p := path; ; {
		yp, err := yaml.PathString("$." + p)
		if err == nil {
			if n, err := yp.FilterNode(body); err == nil && n != nil && n.GetToken() != nil && n.GetToken().Position != nil {
				return n.GetToken().Position.Line, n.GetToken().Position.Column
			}
		}
		i := strings.LastIndexAny(p, ".[")
		if i <= 0 {
			if t := body.GetToken(); t != nil && t.Position != nil {
				return t.Position.Line, t.Position.Column
			}
			return 1, 1
		}
		p = p[:i]
	}
}

// pathBefore names the YAML path at a syntax error at line and col: the
// longest part of the file before the error that parses is followed down
// its last values while they stand left of the error line's indentation,
// and the key that line begins with, if any, is added.
func pathBefore(src []byte, line, col int) string {
	lines := bytes.SplitAfter(src, []byte("\n"))
	if line < 1 || line > len(lines) {
		return ""
	}
	start := 0
	for _, l := range lines[:line-1] {
		start += len(l)
	}
	text := string(lines[line-1])
	cut, c := start+len(text), 1
	for i := range text {
		if c == col {
			cut = start + i
			break
		}
		c++
	}
	rest := strings.TrimLeft(text, " ")
	indent := len(text) - len(rest) + 1
	cuts := []int{cut, start}
	for i := line - 2; i >= 0 && len(cuts) < 20; i-- {
		start -= len(lines[i])
		cuts = append(cuts, start)
	}
	for _, c := range cuts {
		if body, err := parse(src[:c]); err == nil {
			path := containerPath(body, indent)
			if m := keyPattern.FindStringSubmatch(rest); m != nil {
				path = join(path, m[1])
			}
			return path
		}
	}
	return ""
}

var keyPattern = regexp.MustCompile(`^([A-Za-z0-9_-]+)[ \t]*:(?:[ \t\r\n]|$)`)

// containerPath follows the last value of each level, from the top, while
// its key or list dash stands left of column col.
func containerPath(n ast.Node, col int) string {
	path := ""
	left := func(t *token.Token) bool { return t != nil && t.Position != nil && t.Position.Column < col }
	for range maxTypeDepth {
		switch v := n.(type) {
		case *ast.AnchorNode:
			n = v.Value
		case *ast.TagNode:
			n = v.Value
		case *ast.MappingNode:
			if len(v.Values) == 0 {
				return path
			}
			n = v.Values[len(v.Values)-1]
		case *ast.MappingValueNode:
			key, _ := keyText(v.Key)
			if v.Key == nil || !left(v.Key.GetToken()) {
				return path
			}
			path, n = join(path, key), v.Value
		case *ast.SequenceNode:
			if len(v.Values) == 0 || !left(v.Start) {
				return path
			}
			path, n = fmt.Sprintf("%s[%d]", path, len(v.Values)-1), v.Values[len(v.Values)-1]
		default:
			return path
		}
	}
	return path
}

func (c *Config) setDefaults() {
	for _, s := range c.Sites {
		if s == nil {
			continue // validate names it
		}
		if s.Revision == 0 {
			s.Revision = 1
		}
		if s.ChoiceMonths == 0 {
			s.ChoiceMonths = 6
		}
		if s.Scan != nil && s.Scan.PagesPerProfile == 0 {
			s.Scan.PagesPerProfile = 10
		}
		if s.DefaultLanguage == "" && len(s.Languages) > 0 {
			s.DefaultLanguage = s.Languages[0]
		}
		b := &s.Banner
		if b.Layout == "" {
			b.Layout = "box"
		}
		if b.Position == "" && Layouts[b.Layout] != nil {
			b.Position = Layouts[b.Layout][0]
		}
		if b.SettingsButton.Show == "" {
			b.SettingsButton.Show = ButtonShows[0]
		}
		if b.SettingsButton.Position == "" {
			b.SettingsButton.Position = ButtonPositions[0]
		}
		for _, o := range []**int{&b.SettingsButton.OffsetX, &b.SettingsButton.OffsetY} {
			if *o == nil {
				n := 16
				*o = &n
			}
		}
		// A cookie's domain reads the same with a leading dot or without, as
		// browsers read it (RFC 6265 5.2.3); the banner and scanner compare it
		// without.
		for _, sv := range s.Services {
			if sv == nil {
				continue
			}
			for _, ck := range sv.Cookies {
				if ck != nil {
					ck.Domain = strings.ToLower(strings.TrimPrefix(ck.Domain, "."))
				}
			}
		}
		j := strings.ToUpper(s.Controller.Jurisdiction)
		if j == "" && s.DefaultLanguage == "nl" {
			j = "NL"
		}
		if a, ok := Authorities[j]; ok && s.Authority == nil {
			s.Authority = &a
		}
	}
}
