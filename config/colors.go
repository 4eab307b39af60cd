package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// MinContrast is WCAG 2 AA's least contrast for normal text.
const MinContrast = 4.5

// RGB is a colour in sRGB, 0–255 a channel.
type RGB [3]float64

// ParseColor reads "#rgb" or "#rrggbb".
func ParseColor(s string) (RGB, error) {
	h, ok := strings.CutPrefix(s, "#")
	if ok && len(h) == 3 {
		h = string([]byte{h[0], h[0], h[1], h[1], h[2], h[2]})
	}
	n, err := strconv.ParseUint(h, 16, 32)
	if !ok || len(h) != 6 || err != nil {
		return RGB{}, fmt.Errorf(`must be a colour like "#1d4ed8" or "#fff", got %q`, s)
	}
	return RGB{float64(n >> 16), float64(n >> 8 & 255), float64(n & 255)}, nil
}

// Hex writes c as "#rrggbb".
func (c RGB) Hex() string {
	return fmt.Sprintf("#%02x%02x%02x", int(math.Round(c[0])), int(math.Round(c[1])), int(math.Round(c[2])))
}

// Mix is c with the share t (0–1) of d mixed in.
func (c RGB) Mix(d RGB, t float64) RGB {
	var m RGB
	for i := range m {
		m[i] = math.Round(c[i]*(1-t) + d[i]*t)
	}
	return m
}

func (c RGB) luminance() float64 {
	var l [3]float64
	for i, v := range c {
		v /= 255
		if v <= 0.03928 {
			l[i] = v / 12.92
		} else {
			l[i] = math.Pow((v+0.055)/1.055, 2.4)
		}
	}
	return 0.2126*l[0] + 0.7152*l[1] + 0.0722*l[2]
}

// Contrast is the WCAG 2 contrast ratio of two colours, 1 to 21.
func Contrast(a, b RGB) float64 {
	x, y := a.luminance(), b.luminance()
	if x < y {
		x, y = y, x
	}
	return (x + 0.05) / (y + 0.05)
}

// Resolve fills what p leaves out from def.
func (p Palette) Resolve(def Palette) Palette {
	if p.Accent == "" {
		p.Accent = def.Accent
	}
	if p.Text == "" {
		p.Text = def.Text
	}
	if p.Background == "" {
		p.Background = def.Background
	}
	return p
}

// palette reports each colour of p that is not a colour, and each text
// colour (text, and accent for links) below 4.5:1 on the background.
func (v *validator) palette(path string, p, def Palette) {
	r := p.Resolve(def)
	cs := map[string]RGB{}
	for _, field := range []string{"accent", "text", "background"} {
		c, err := ParseColor(r.get(field))
		if err != nil {
			v.add(path+"."+field, "%v", err)
			return
		}
		cs[field] = c
	}
	for _, field := range []string{"text", "accent"} {
		if c := Contrast(cs[field], cs["background"]); c < MinContrast {
			// The line of the pair's field that the file sets.
			at := field
			if (field == "text" && p.Text == "" || field == "accent" && p.Accent == "") && p.Background != "" {
				at = "background"
			}
			v.cross("contrast", path+"."+at, "%s %s on background %s has a contrast of %.2f:1, below WCAG AA's %.1f:1", field, r.get(field), r.Background, math.Floor(c*100)/100, MinContrast)
		}
	}
}

func (p Palette) get(field string) string {
	switch field {
	case "text":
		return p.Text
	case "background":
		return p.Background
	}
	return p.Accent
}
