package server

import (
	"fmt"
	"html/template"
	"strings"

	"github.com/koekje/koekje/server/consent"
)

// series is one line of a chart, told apart by colour and by dash pattern,
// so it reads without colour too.
type series struct {
	Name   string
	Color  string
	Dash   string
	Values []float64
}

// chartSVG draws lines over days as an inline SVG with a title and a
// description; the page puts the same numbers in a table beside it.
func chartSVG(title, desc string, days []string, lines []series, top float64, unit string) template.HTML {
	const w, h, left, right, padTop, bottom = 720.0, 260.0, 48.0, 16.0, 16.0, 56.0
	var b strings.Builder
	id := strings.ToLower(strings.NewReplacer(" ", "-", "/", "-").Replace(title))
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %.0f %.0f" role="img" aria-labelledby="%s-t %s-d" class="chart">`, w, h, id, id)
	fmt.Fprintf(&b, `<title id="%s-t">%s</title><desc id="%s-d">%s</desc>`, id, template.HTMLEscapeString(title), id, template.HTMLEscapeString(desc))
	if top <= 0 {
		top = 1
	}
	x := func(i int) float64 {
		if len(days) < 2 {
			return left + (w-left-right)/2
		}
		return left + float64(i)*(w-left-right)/float64(len(days)-1)
	}
	y := func(v float64) float64 { return padTop + (h-padTop-bottom)*(1-v/top) }
	for i := 0; i <= 4; i++ {
		v := top * float64(i) / 4
		fmt.Fprintf(&b, `<line x1="%.0f" x2="%.0f" y1="%.1f" y2="%.1f" class="grid"/>`, left, w-right, y(v), y(v))
		fmt.Fprintf(&b, `<text x="%.0f" y="%.1f" class="axis" text-anchor="end">%s</text>`, left-6, y(v)+4, axisLabel(v, unit))
	}
	step := max(1, len(days)/8)
	for i, d := range days {
		if i%step == 0 || i == len(days)-1 {
			fmt.Fprintf(&b, `<text x="%.1f" y="%.0f" class="axis" text-anchor="middle">%s</text>`, x(i), h-bottom+18, d[5:])
		}
	}
	for _, s := range lines {
		pts := make([]string, len(s.Values))
		for i, v := range s.Values {
			pts[i] = fmt.Sprintf("%.1f,%.1f", x(i), y(v))
		}
		fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2.5" stroke-dasharray="%s"/>`, strings.Join(pts, " "), s.Color, s.Dash)
		for i, v := range s.Values {
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>`, x(i), y(v), s.Color)
		}
	}
	lx := left
	for _, s := range lines {
		fmt.Fprintf(&b, `<line x1="%.0f" x2="%.0f" y1="%.0f" y2="%.0f" stroke="%s" stroke-width="2.5" stroke-dasharray="%s"/>`, lx, lx+24, h-14, h-14, s.Color, s.Dash)
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" class="legend">%s</text>`, lx+30, h-10, template.HTMLEscapeString(s.Name))
		lx += 48 + 8*float64(len(s.Name))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

func axisLabel(v float64, unit string) string {
	if unit == "%" {
		return fmt.Sprintf("%.0f%%", v)
	}
	if v != float64(int64(v)) {
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.0f", v)
}

// Colours keep 3:1 against white and each other's dash pattern.
var palette = []struct{ color, dash string }{
	{"#1d4ed8", ""}, {"#b91c1c", "8 4"}, {"#047857", "2 3"}, {"#7c2d12", "10 3 2 3"}, {"#6d28d9", "4 4"}, {"#374151", "1 2"},
}

// consentCharts draws the choices per day and the share granted per category.
func consentCharts(days []consent.DayStats, categories []string, titles map[string]string) (choices, shares template.HTML) {
	labels := make([]string, len(days))
	acts := []struct{ key, name string }{{"accept_all", "Accept all"}, {"reject_all", "Reject all"}, {"custom", "Custom"}, {"gpc", "GPC"}}
	lines := make([]series, len(acts))
	top := 0.0
	for i, a := range acts {
		lines[i] = series{Name: a.name, Color: palette[i].color, Dash: palette[i].dash, Values: make([]float64, len(days))}
	}
	for d, day := range days {
		labels[d] = day.Day
		for i, a := range acts {
			v := float64(day.Actions[a.key])
			if a.key == "gpc" {
				v = float64(day.GPC)
			}
			lines[i].Values[d] = v
			top = max(top, v)
		}
	}
	choices = chartSVG("Choices per day", "Accept all, reject all, custom choices and Global Privacy Control refusals, per day; the table below has the numbers.", labels, lines, niceMax(top), "")
	var sl []series
	for i, c := range categories {
		s := series{Name: titles[c], Color: palette[i%len(palette)].color, Dash: palette[i%len(palette)].dash, Values: make([]float64, len(days))}
		for d, day := range days {
			if day.Total > 0 {
				s.Values[d] = 100 * float64(day.Granted[c]) / float64(day.Total)
			}
		}
		sl = append(sl, s)
	}
	shares = chartSVG("Share granted per category", "Per day, the percentage of choices that granted each category; the table below has the numbers.", labels, sl, 100, "%")
	return choices, shares
}

// niceMax rounds an axis maximum up to 1, 2 or 5 times a power of ten.
func niceMax(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := 1.0
	for p*10 <= v {
		p *= 10
	}
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}
