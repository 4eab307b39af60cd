package scan

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Formats the report is written in.
var Formats = []string{"text", "json", "junit"}

// Write writes the report in a format: text, json or junit. strict makes
// undeclared and stale findings failures in junit, as they fail the scan.
func (r *Report) Write(w io.Writer, format string, strict bool) error {
	switch format {
	case "text":
		return r.writeText(w, strict)
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Verdict string `json:"verdict"`
			*Report
		}{r.Verdict(strict), r})
	case "junit":
		return r.writeJUnit(w, strict)
	}
	return fmt.Errorf("unknown format %q: want text, json or junit", format)
}

var profileWords = map[string]string{Before: "before any choice", Rejected: `after "reject all"`, Accepted: `after "accept all"`,
	Withdrawn: "after withdrawing consent", GPC: "with Global Privacy Control"}

// ProfileWords says when a profile looked: "before any choice", …
func ProfileWords(profile string) string { return profileWords[profile] }

// Plural is "1 one" or "n many".
func Plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// cause names what is behind a finding.
func (f Finding) cause() string {
	switch {
	case f.Kind == KindRequest && f.Source != "":
		return "made by " + f.Source
	case f.SetBy == "header":
		return "set by the Set-Cookie header of " + f.Source
	case f.SetBy == "script" && f.Source != "":
		return "set by script " + f.Source
	case f.Kind == KindStorage && f.Source != "":
		return "written by script " + f.Source
	case f.Kind == KindTag && f.Source != "":
		return "run by " + f.Source
	}
	return ""
}

func (r *Report) writeText(w io.Writer, strict bool) error {
	b := &strings.Builder{}
	var words []string
	for _, n := range ProfileNames {
		words = append(words, profileWords[n])
	}
	fmt.Fprintf(b, "koekje scan of site %s: %s, %d profiles (%s), %.1f s\n\n",
		inert(r.Site), Plural(len(r.Pages), "page", "pages"), len(ProfileNames), strings.Join(words, ", "), r.Seconds)
	errs, cut := r.NotScanned(), r.Truncated()
	violations := len(r.Violations) - len(errs) - len(cut)
	verdict := strings.ToUpper(r.Verdict(strict))
	fmt.Fprintf(b, "%s  ", verdict)
	if n := pagesNotScanned(errs); n > 0 {
		fmt.Fprintf(b, "%s · ", Plural(n, "page not scanned", "pages not scanned"))
	}
	if len(cut) > 0 {
		fmt.Fprintf(b, "%s · ", Plural(len(cut), "record cut short", "records cut short"))
	}
	fmt.Fprintf(b, "%s · %s · %s\n", Plural(violations, "violation", "violations"),
		Plural(len(r.Undeclared), "undeclared cookie", "undeclared cookies"), Plural(len(r.Stale), "stale declaration", "stale declarations"))
	for _, sec := range []struct {
		title string
		fs    []Finding
	}{{"Not scanned", errs}, {"Cut short", cut}} {
		if len(sec.fs) == 0 {
			continue
		}
		fmt.Fprintf(b, "\n%s\n", sec.title)
		for i, f := range sec.fs {
			fmt.Fprintf(b, "  %d. %s", i+1, profileWords[f.Profile])
			if f.Page != "" {
				fmt.Fprintf(b, " · %s", inert(f.Page))
			}
			fmt.Fprintf(b, "\n     %s\n", inert(f.Message))
		}
	}
	if violations > 0 {
		fmt.Fprintf(b, "\nViolations\n")
		n := 0
		for _, f := range r.Violations {
			if f.Kind == KindError || f.Kind == KindTruncated {
				continue
			}
			n++
			fmt.Fprintf(b, "  %d. %s · %s\n     %s", n, profileWords[f.Profile], inert(f.Page), inert(f.Message))
			if f.Count > 1 {
				fmt.Fprintf(b, ", %d requests (first: %s)", f.Count, inert(f.URL))
			} else if f.Kind == KindRequest {
				fmt.Fprintf(b, ": %s", inert(f.URL))
			}
			b.WriteString("\n")
			if c := f.cause(); c != "" {
				fmt.Fprintf(b, "     %s\n", inert(c))
			}
		}
	}
	if len(r.Undeclared) > 0 {
		fmt.Fprintf(b, "\nUndeclared cookies (seen after \"accept all\")\n")
		for _, f := range r.Undeclared {
			fmt.Fprintf(b, "  %s on %s, %s, first after %s\n", inert(f.Name), inert(strings.TrimPrefix(f.Domain, ".")), inert(f.Actual), inert(f.Page))
			if c := f.cause(); c != "" {
				fmt.Fprintf(b, "    %s\n", inert(c))
			}
			if sg := f.Suggestion; sg != nil {
				if sg.Known {
					fmt.Fprintf(b, "    looks like %s (%s), category %s; add to the config:\n", inert(sg.Name), inert(sg.Provider), inert(sg.Category))
				} else {
					fmt.Fprintf(b, "    unknown cookie; add to the config, filling in what it is:\n")
				}
				for line := range strings.SplitSeq(strings.TrimRight(sg.YAML, "\n"), "\n") {
					fmt.Fprintf(b, "      %s\n", inert(line))
				}
			}
		}
	}
	if len(r.Stale) > 0 {
		fmt.Fprintf(b, "\nStale declarations\n")
		for _, f := range r.Stale {
			fmt.Fprintf(b, "  %s\n", inert(f.Message))
			if f.Page != "" {
				fmt.Fprintf(b, "    first %s, %s", profileWords[f.Profile], inert(f.Page))
				if c := f.cause(); c != "" {
					fmt.Fprintf(b, ", %s", inert(c))
				}
				b.WriteString("\n")
			}
		}
	}
	if len(r.Notes) > 0 {
		fmt.Fprintf(b, "\nNotes\n")
		for _, n := range r.Notes {
			fmt.Fprintf(b, "  %s\n", inert(n))
		}
	}
	b.WriteString("\n")
	switch {
	case violations > 0:
		b.WriteString("The site does not do what its banner says.\n")
	case len(r.Pages) == 0:
		b.WriteString("Inconclusive: no page could be scanned, so this scan says nothing about the site.\n")
	case len(errs) > 0:
		fmt.Fprintf(b, "Inconclusive: %s, so this scan does not show that the site does what its banner says.\n",
			Plural(pagesNotScanned(errs), "page was not scanned", "pages were not scanned"))
	case len(cut) > 0:
		b.WriteString("Inconclusive: the scan could not read or keep all the pages did, so it does not show that the site does what its banner says.\n")
	case !r.Clean(strict):
		b.WriteString("No violations; the declaration differs from the site (--strict fails on that).\n")
	case len(r.Undeclared)+len(r.Stale) > 0:
		b.WriteString("No violations. The declaration differs from the site: warnings only (--strict fails on them).\n")
	default:
		b.WriteString("No violations; the declaration matches what the site does.\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// inert is a string a page chose, as the text report writes it: a
// terminal shows it as it is. Control characters (C0, DEL, C1, such as
// the escape that starts a terminal's codes, or a newline that would start
// a line of the report), line and paragraph separators and the marks that
// reorder text are written as Go escapes, and so are bytes that are not
// UTF-8.
func inert(s string) string {
	if !strings.ContainsFunc(s, unsafeRune) && utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r < 0x80 && unsafeRune(r):
			fmt.Fprintf(&b, `\x%02x`, r)
		case unsafeRune(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

func unsafeRune(r rune) bool {
	return unicode.IsControl(r) || r == '\u2028' || r == '\u2029' ||
		'\u202a' <= r && r <= '\u202e' || '\u2066' <= r && r <= '\u2069' || r == '\u200e' || r == '\u200f'
}

// pagesNotScanned counts the pages (in any profile) among the findings of
// pages not scanned.
func pagesNotScanned(errs []Finding) int {
	n := 0
	for _, f := range errs {
		if f.Page != "" {
			n++
		}
	}
	return n
}

type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Errors   int         `xml:"errors,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr,omitempty"`
	Failure   *junitFailure `xml:"failure,omitempty"`
	Error     *junitFailure `xml:"error,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

// writeJUnit writes a suite per profile with a test case per page visited
// (failing with that page's violations, or in error when it could not be
// scanned) and a suite for the declaration with a case per undeclared or
// stale cookie (failing only when strict).
func (r *Report) writeJUnit(w io.Writer, strict bool) error {
	out := junitSuites{Name: "koekje scan " + r.Site, Time: fmt.Sprintf("%.3f", r.Seconds)}
	for _, p := range r.Profiles {
		if p == nil {
			continue
		}
		s := junitSuite{Name: profileWords[p.Name]}
		for _, v := range p.Visits {
			c := junitCase{Name: v.Page, Classname: "koekje.scan." + p.Name, Time: fmt.Sprintf("%.3f", v.Seconds)}
			if v.Choice {
				c.Name = "choose on " + v.Page
			}
			var msgs, cuts []string
			for _, f := range r.Violations {
				if f.Profile != p.Name || f.Page != v.Page {
					continue
				}
				if f.Kind == KindTruncated {
					cuts = append(cuts, f.Message)
				}
				if f.Kind != KindError && f.Kind != KindTruncated && !v.Choice {
					m := f.Message
					if cs := f.cause(); cs != "" {
						m += "; " + cs
					}
					msgs = append(msgs, m)
				}
			}
			switch {
			case v.Status != StatusScanned:
				c.Error = &junitFailure{Message: "not scanned", Type: KindError, Text: v.Error}
				s.Errors++
			case len(msgs) > 0:
				c.Failure = &junitFailure{Message: Plural(len(msgs), "violation", "violations"), Type: "violation", Text: strings.Join(msgs, "\n")}
				s.Failures++
			case len(cuts) > 0:
				c.Error = &junitFailure{Message: "not all seen", Type: KindTruncated, Text: strings.Join(cuts, "\n")}
				s.Errors++
			}
			if len(v.Dialogs) > 0 {
				c.SystemOut = "dismissed: " + strings.Join(v.Dialogs, "\n")
			}
			s.Cases = append(s.Cases, c)
		}
		// A scan that scanned nothing, or a profile that could not keep
		// all it saw, says so in a case of its own.
		for _, f := range r.Violations {
			if f.Profile == p.Name && (f.Kind == KindError || f.Kind == KindTruncated) && f.Page == "" {
				s.Cases = append(s.Cases, junitCase{Name: "scan", Classname: "koekje.scan." + p.Name,
					Error: &junitFailure{Message: f.Message, Type: f.Kind, Text: f.Message}})
				s.Errors++
			}
		}
		s.Tests = len(s.Cases)
		out.Suites = append(out.Suites, s)
	}
	decl := junitSuite{Name: "declaration"}
	for _, group := range [][]Finding{r.Undeclared, r.Stale} {
		for _, f := range group {
			c := junitCase{Name: f.Kind + " " + f.Name, Classname: "koekje.scan.declaration"}
			text := f.Message
			if f.Suggestion != nil {
				text += "\n" + f.Suggestion.YAML
			}
			if strict {
				c.Failure = &junitFailure{Message: f.Message, Type: "warning", Text: text}
				decl.Failures++
			} else {
				c.SystemOut = "warning: " + text
			}
			decl.Cases = append(decl.Cases, c)
		}
	}
	decl.Tests = len(decl.Cases)
	out.Suites = append(out.Suites, decl)
	for _, s := range out.Suites {
		out.Tests += s.Tests
		out.Failures += s.Failures
		out.Errors += s.Errors
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(out); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}
