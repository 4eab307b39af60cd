package config

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

//go:embed demo.yaml
var demoYAML []byte

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
// Errors name the file, the line and the field.
func Load(name string, r io.Reader) (*Config, error) {
	src, err := io.ReadAll(io.LimitReader(r, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read config %s: %w", name, err)
	}
	if len(src) > maxFileSize {
		return nil, fmt.Errorf("%s: larger than %d bytes", name, maxFileSize)
	}
	var c Config
	if err := unmarshal(src, &c); err != nil {
		var ye yaml.Error
		if errors.As(err, &ye) && ye.GetToken() != nil {
			pos := ye.GetToken().Position
			return nil, fmt.Errorf("%s:%d:%d: %s", name, pos.Line, pos.Column, ye.GetMessage())
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	c.setDefaults()
	if errs := c.validate(); len(errs) > 0 {
		file := parse(src)
		msgs := make([]string, len(errs))
		for i, e := range errs {
			msgs[i] = fmt.Sprintf("%s:%d: %s: %s", name, lineOf(file, e.path), e.path, e.msg)
		}
		return nil, errors.New(strings.Join(msgs, "\n"))
	}
	return &c, nil
}

// unmarshal decodes YAML strictly. The YAML library has been seen to panic
// on some malformed input (found by FuzzLoad); that is turned into an error.
func unmarshal(src []byte, c *Config) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("the YAML parser failed on this file (%v)", r)
		}
	}()
	return yaml.UnmarshalWithOptions(src, c, yaml.DisallowUnknownField())
}

// parse reads the file's syntax tree for line numbers; nil if it cannot.
func parse(src []byte) (f *ast.File) {
	defer func() {
		if recover() != nil {
			f = nil
		}
	}()
	f, _ = parser.ParseBytes(src, 0)
	return f
}

// lineOf finds the line of the node at path ("sites[0].categories[1].title"),
// or of its nearest ancestor present in the file when the field is missing.
func lineOf(file *ast.File, path string) (line int) {
	if file == nil {
		return 0
	}
	defer func() {
		if recover() != nil {
			line = 0
		}
	}()
	for p := path; ; {
		yp, err := yaml.PathString("$." + p)
		if err == nil {
			if n, err := yp.FilterFile(file); err == nil && n != nil && n.GetToken() != nil {
				return n.GetToken().Position.Line
			}
		}
		i := strings.LastIndexAny(p, ".[")
		if i <= 0 {
			return 1
		}
		p = p[:i]
	}
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
		j := strings.ToUpper(s.Controller.Jurisdiction)
		if j == "" && s.DefaultLanguage == "nl" {
			j = "NL"
		}
		if a, ok := Authorities[j]; ok && s.Authority == nil {
			s.Authority = &a
		}
	}
}
