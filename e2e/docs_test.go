package e2e

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

// Every relative link in the project's Markdown resolves: to a file or
// folder that exists and, with a #fragment, to a heading of that file (as
// GitHub names headings: lower case, spaces to hyphens, punctuation gone).
func TestMarkdownLinksResolve(t *testing.T) {
	t.Parallel()
	files := markdownFiles(t)
	if len(files) < 2 {
		t.Fatalf("found %d Markdown files", len(files))
	}
	links := regexp.MustCompile(`\]\(([^)\s]+)(?:\s+"[^"]*")?\)`)
	checked := 0
	for _, file := range files {
		body, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range links.FindAllStringSubmatch(stripCode(string(body)), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			path, frag, _ := strings.Cut(target, "#")
			dest := file
			if path != "" {
				dest = filepath.Join(filepath.Dir(file), filepath.FromSlash(path))
				if _, err := os.Stat(dest); err != nil {
					t.Errorf("%s: link %q: no such file", file, target)
					continue
				}
			}
			checked++
			if frag == "" {
				continue
			}
			if !strings.HasSuffix(dest, ".md") {
				t.Errorf("%s: link %q: a fragment of a file that is not Markdown", file, target)
				continue
			}
			text, err := os.ReadFile(dest)
			if err != nil {
				t.Errorf("%s: link %q: %v", file, target, err)
				continue
			}
			if !headingSlugs(string(text))[frag] {
				t.Errorf("%s: link %q: %s has no such heading", file, target, dest)
			}
		}
	}
	if checked == 0 {
		t.Error("no relative link found: the pattern is wrong")
	}
}

// stripCode drops fenced code blocks, whose text is not links.
func stripCode(md string) string {
	var out []string
	in := false
	for _, line := range strings.Split(md, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			in = !in
			continue
		}
		if !in {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// headingSlugs are the anchors GitHub gives a file's headings, with -1, -2
// for repeats.
func headingSlugs(md string) map[string]bool {
	slugs := map[string]bool{}
	seen := map[string]int{}
	for _, line := range strings.Split(stripCode(md), "\n") {
		if !strings.HasPrefix(line, "#") {
			continue
		}
		title := strings.TrimSpace(strings.TrimLeft(line, "#"))
		var b strings.Builder
		for _, r := range strings.ToLower(title) {
			switch {
			case r == ' ':
				b.WriteRune('-')
			case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
				b.WriteRune(r)
			}
		}
		s := b.String()
		if n := seen[s]; n > 0 {
			slugs[s+"-"+strconv.Itoa(n)] = true
		} else {
			slugs[s] = true
		}
		seen[s]++
	}
	return slugs
}

// markdownFiles are the project's Markdown files, dependencies left out.
func markdownFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "node_modules" || d.Name() == ".git") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(d.Name(), ".md") {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// The README is the front door: at most 500 lines, a table of contents
// that lists every section, and the sections a new owner looks for.
func TestReadmeFrontDoor(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	if n := strings.Count(readme, "\n"); n > 500 {
		t.Errorf("README.md has %d lines, more than 500: move reference material beside its code", n)
	}
	_, toc, ok := strings.Cut(readme, "\n## Contents\n")
	toc, _, _ = strings.Cut(toc, "\n## ")
	if !ok {
		t.Fatal("README.md has no Contents section")
	}
	var sections []string
	for _, line := range strings.Split(stripCode(readme), "\n") {
		if title, ok := strings.CutPrefix(line, "## "); ok && title != "Contents" {
			sections = append(sections, title)
		}
	}
	for _, title := range sections {
		if !strings.Contains(toc, "["+title+"](#") {
			t.Errorf("the table of contents does not list %q", title)
		}
	}
	for _, want := range []string{"Put it on your site in five minutes", "Google Tag Manager and Consent Mode",
		"Configure", "Deploy", "Back up and restore", "Upgrade", "Operate", "Audit", "Troubleshooting", "Licence"} {
		if !slices.Contains(sections, want) {
			t.Errorf("README.md has no section %q", want)
		}
	}
	if !regexp.MustCompile(`!\[[^\]]+\]\([^)]+\.png\)`).MatchString(readme) {
		t.Error("README.md shows no screenshot")
	}
	goMod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	version := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(goMod)
	if version == nil || !strings.Contains(readme, "Go "+string(version[1])) {
		t.Errorf("README.md does not name the Go version of go.mod (%s)", version)
	}
	if lic, err := os.ReadFile("../LICENSE"); err != nil || !bytes.Contains(lic, []byte("Apache License\n                           Version 2.0")) {
		t.Errorf("LICENSE is not the Apache License 2.0: %v", err)
	}
}

// The documentation describes the project as it is, never how it got
// there: no changelog phrases.
func TestDocsSpeakOfThePresent(t *testing.T) {
	t.Parallel()
	changelog := regexp.MustCompile(`(?i)\b(no longer|used to|made before this|before this change|previously|formerly|any ?more|is now|are now|has been replaced|was replaced)\b`)
	for _, file := range markdownFiles(t) {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(b), "\n") {
			if m := changelog.FindString(line); m != "" {
				t.Errorf("%s:%d: %q tells a history: %s", file, i+1, m, strings.TrimSpace(line))
			}
		}
	}
}
