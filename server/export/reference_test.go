package export

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/koekje/koekje/config"
	"github.com/koekje/koekje/server/consent"
	"github.com/koekje/koekje/server/translog"
)

// The worked example of README.md is what the code does: the record line
// reads back to a record whose canonical encoding is the hex dump, whose
// hash is the line's, and whose leaf is the one shown. The CSV escaping
// table is what the writer writes.
func TestReferenceExample(t *testing.T) {
	doc, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	block := func(lang, after string) string {
		t.Helper()
		i := bytes.Index(doc, []byte(after))
		m := regexp.MustCompile("(?s)```" + lang + "\n(.*?)```").FindSubmatch(doc[i:])
		if i < 0 || m == nil {
			t.Fatalf("no %s block after %q", lang, after)
		}
		return string(m[1])
	}
	line := block("json", "## Worked example")
	rd, err := NewReader(strings.NewReader(line + `{"koekje_export":{"format":"koekje-export-v1","record_encoding":"koekje-record-v1","site":"demo","records":1}}` + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := rd.Next()
	if err != nil {
		t.Fatal(err)
	}
	var dump []byte
	for _, l := range strings.Split(block("text", "encodes as these"), "\n") {
		hexPart, _, _ := strings.Cut(l, "|")
		b, err := hex.DecodeString(strings.ReplaceAll(hexPart, " ", ""))
		if err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		dump = append(dump, b...)
	}
	if enc := consent.RecordEncoding(r); !bytes.Equal(enc, dump) {
		t.Errorf("the dump is not the record's encoding:\n got  %x\n want %x", dump, enc)
	}
	if !strings.Contains(string(doc), "encodes as these "+strconv.Itoa(len(dump))+" bytes") {
		t.Errorf("the text does not give the encoding's length, %d", len(dump))
	}
	values := func(b string) map[string]string {
		out := map[string]string{}
		sc := bufio.NewScanner(strings.NewReader(b))
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), "  "); ok {
				out[k] = strings.TrimSpace(v)
			}
		}
		return out
	}
	if got := values(block("text", "whose SHA-256 is"))["hash"]; got != hex.EncodeToString(consent.RecordHash(r)) || got != hex.EncodeToString(r.Hash) {
		t.Errorf("hash %s, the record's is %x", got, consent.RecordHash(r))
	}
	leaf := values(block("text", "With the site audit key"))
	key := bytes.Repeat([]byte{0xa5}, 32)
	l := translog.NewLeaf(r.LogSalt, r.Hash, key, *r.LogIndex)
	entry := l.Encode()
	leafHash := sha256.Sum256(append([]byte{0}, entry...))
	for name, want := range map[string][]byte{"commitment": l.Commitment[:], "site tag": l.SiteTag[:], "entry": entry, "leaf hash": leafHash[:]} {
		if leaf[name] != hex.EncodeToString(want) {
			t.Errorf("%s %s, want %x", name, leaf[name], want)
		}
	}

	// The koekje-record-v2 example: its line rehashes to its hash, and the
	// bytes shown are those its signals encode as.
	rd, err = NewReader(strings.NewReader(block("json", "### `koekje-record-v2`") + `{"koekje_export":{"format":"koekje-export-v1","record_encoding":"koekje-record-v1","site":"demo","records":1}}` + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	v2, err := rd.Next()
	if err != nil {
		t.Fatal(err)
	}
	if consent.EncodingOf(v2) != consent.EncodingV2 || !bytes.Equal(consent.RecordHash(v2), v2.Hash) {
		t.Errorf("the koekje-record-v2 example does not rehash to its hash %x", v2.Hash)
	}
	var signals []byte
	for _, l := range strings.Split(block("text", "in what follows `ip`"), "\n") {
		hexPart, _, _ := strings.Cut(l, "|")
		hexPart = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(hexPart), "…"))
		b, err := hex.DecodeString(strings.ReplaceAll(hexPart, " ", ""))
		if err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		signals = append(signals, b...)
	}
	if enc := consent.RecordEncoding(v2); !bytes.Contains(enc, signals) || !bytes.HasPrefix(enc, append([]byte{0x20}, consent.RecordEncodingV2...)) {
		t.Errorf("the v2 bytes shown are not the record's encoding:\n shown %x\n encoding %x", signals, enc)
	}

	// The escaping table: value → cell, and back.
	escaping := doc[bytes.Index(doc, []byte("| recorded value | CSV cell |")):]
	escaping = escaping[:bytes.Index(escaping, []byte("\n\n"))]
	table := regexp.MustCompile("(?m)^\\| `([^`]*)` \\| `([^`]*)` \\|$").FindAllStringSubmatch(string(escaping), -1)
	if len(table) < 4 {
		t.Fatalf("the escaping table has %d rows", len(table))
	}
	site := config.Demo().Site("demo")
	for _, row := range table {
		var out bytes.Buffer
		w, _ := New("csv", site, &out)
		rec := *r
		rec.UserAgent = row[1]
		w.Write(&rec)
		w.End(NewSummary(consent.Filter{Site: "demo"}, nil))
		if !bytes.Contains(out.Bytes(), []byte(","+row[2]+",")) {
			t.Errorf("%s is not written as %s", row[1], row[2])
		}
		rd, err := NewReader(&out)
		if err != nil {
			t.Fatal(err)
		}
		if back, err := rd.Next(); err != nil || back.UserAgent != row[1] {
			t.Errorf("%s read back as %v %v", row[2], back, err)
		}
		if _, err := rd.Next(); err != io.EOF {
			t.Errorf("after the record: %v", err)
		}
	}
}
