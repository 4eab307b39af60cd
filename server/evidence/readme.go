package evidence

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/koekje/koekje/config"
)

// README.txt is written from one outline (readmeOutline) and one file of
// messages per language (readme/LANG.json), so every language says the
// same things, holds the same technical names (file names, commands, JSON
// fields are never translated) and is wrapped the same way. A message may
// name a placeholder, {name}, which the pack fills in.

//go:embed readme/*.json
var readmeFS embed.FS

// readmeTexts holds the messages of each language that has a file.
var readmeTexts = func() map[string]map[string]string {
	out := map[string]map[string]string{}
	for _, l := range config.Languages {
		b, err := readmeFS.ReadFile("readme/" + l + ".json")
		if err != nil {
			continue // TestReadmeEveryLanguage names it
		}
		m := map[string]string{}
		if err := json.Unmarshal(b, &m); err != nil {
			panic(fmt.Sprintf("readme/%s.json: %v", l, err)) // compiled in and tested
		}
		out[l] = m
	}
	return out
}()

// readmeWidth is where README.txt's lines are wrapped.
const readmeWidth = 76

// readmePart is one paragraph of the outline: a heading, plain text, a
// file ("- name: text") or a numbered step ("N. text"), optionally followed
// by a command line, written as is. When is the condition it is written
// under; Key names its message.
type readmePart struct {
	kind    byte // 'h' heading, 'p' paragraph, 'f' file, 'n' step, 'i' indented paragraph
	label   string
	key     string
	when    func(*readmeData) bool
	command func(*readmeData) string
}

// readmeData is what the outline's conditions and placeholders read.
type readmeData struct {
	V      *Verification
	Count  int
	HasLog bool
	// Scans is how many scans the pack holds, of the days From to To
	// (dates, both included).
	Scans    int
	From, To string
}

func hasLog(d *readmeData) bool      { return d.HasLog }
func hasScans(d *readmeData) bool    { return d.Scans > 0 }
func unwitnessed(d *readmeData) bool { return d.HasLog && d.V.CheckedAgainst.Unwitnessed }

// readmeOutline is README.txt, in order.
var readmeOutline = []readmePart{
	{kind: 'h', key: "what_heading"},
	{kind: 'p', key: "what"},
	{kind: 'h', key: "files_heading"},
	{kind: 'f', label: "records.ndjson", key: "file_records"},
	{kind: 'f', label: "receipts/NNNNNN-RECORD.jwt", key: "file_receipts"},
	{kind: 'f', label: "keys.json", key: "file_keys"},
	{kind: 'f', label: "proofs/NNNNNN-RECORD.tlog-proof", key: "file_proofs", when: hasLog},
	{kind: 'f', label: "checkpoint.txt", key: "file_checkpoint", when: hasLog},
	{kind: 'f', label: "log-key.txt", key: "file_log_key", when: hasLog},
	{kind: 'f', label: "policy.txt", key: "file_policy", when: hasLog},
	{kind: 'i', key: "unwitnessed", when: unwitnessed},
	{kind: 'f', label: "banner/HASH.json", key: "file_banner"},
	{kind: 'f', label: "scans/TIME-ID.scan.json, scans/TIME-ID.report.json", key: "file_scans", when: hasScans},
	{kind: 'f', label: "scans/TIME-ID.tlog-proof", key: "file_scan_proofs", when: func(d *readmeData) bool { return d.HasLog && d.Scans > 0 }},
	{kind: 'f', label: "scans/", key: "file_scans_none", when: func(d *readmeData) bool { return d.Scans == 0 }},
	{kind: 'f', label: "verification.json", key: "file_verification"},
	{kind: 'h', key: "check_heading"},
	{kind: 'n', key: "check_keys", when: func(d *readmeData) bool { return !d.HasLog }},
	{kind: 'n', key: "check_keys_log", when: hasLog},
	{kind: 'n', key: "check_receipts", command: func(d *readmeData) string {
		if d.HasLog {
			return "koekje verify-receipt --keys keys.json --proof proofs/FILE.tlog-proof --policy policy.txt receipts/FILE.jwt"
		}
		return "koekje verify-receipt --keys keys.json receipts/FILE.jwt"
	}},
	{kind: 'n', key: "check_log", when: hasLog},
	{kind: 'n', key: "check_banner"},
	{kind: 'n', key: "check_scans", when: func(d *readmeData) bool { return d.HasLog && d.Scans > 0 }},
	{kind: 'p', key: "reference"},
}

// readmeKeys are the keys every language's messages must have: the
// outline's and those the header and placeholders use.
func readmeKeys() []string {
	keys := []string{"title", "consent_id", "site", "made", "verified_all", "verified_not"}
	for _, p := range readmeOutline {
		keys = append(keys, p.key)
	}
	return keys
}

// readmeIn writes README.txt's text in one language.
func readmeIn(b *bytes.Buffer, lang string, d *readmeData) {
	m := readmeTexts[lang]
	result := m["verified_all"]
	if !d.V.OK {
		result = m["verified_not"]
	}
	fill := strings.NewReplacer("{made_at}", d.V.MadeAt, "{count}", strconv.Itoa(d.Count), "{result}", result,
		"{scans}", strconv.Itoa(d.Scans), "{from}", d.From, "{to}", d.To)
	t := func(key string) string { return fill.Replace(m[key]) }
	fmt.Fprintf(b, "%s — %s %s, %s %s\n", t("title"), t("consent_id"), d.V.ConsentID, t("site"), d.V.Site)
	wrap(b, t("made"), "", "")
	step := 0
	for _, p := range readmeOutline {
		if p.when != nil && !p.when(d) {
			continue
		}
		text := t(p.key)
		switch p.kind {
		case 'h':
			b.WriteString("\n" + text + "\n")
		case 'p':
			wrap(b, text, "", "")
		case 'i':
			wrap(b, text, "  ", "  ")
		case 'f':
			wrap(b, p.label+": "+text, "- ", "  ")
		case 'n':
			step++
			n := strconv.Itoa(step) + ". "
			wrap(b, text, n, strings.Repeat(" ", len(n)))
		}
		if p.command != nil {
			b.WriteString("     " + p.command(d) + "\n")
		}
	}
}

// wrap writes text wrapped at readmeWidth, its first line after first and
// the others after indent. Lines break at ASCII spaces only: a no-break
// space (French puts a narrow one before a colon) keeps its words
// together. A word longer than a line is not broken.
func wrap(b *bytes.Buffer, text, first, indent string) {
	line, n := first, utf8.RuneCountInString(first)
	empty := true
	for _, w := range strings.Split(text, " ") {
		if w == "" {
			continue
		}
		wn := utf8.RuneCountInString(w)
		if !empty && n+1+wn > readmeWidth {
			b.WriteString(line + "\n")
			line, n, empty = indent, utf8.RuneCountInString(indent), true
		}
		if !empty {
			line, n = line+" ", n+1
		}
		line, n, empty = line+w, n+wn, false
	}
	b.WriteString(line + "\n")
}

// placeholder matches a message's placeholders.
var placeholder = regexp.MustCompile(`\{[a-z_]+\}`)
