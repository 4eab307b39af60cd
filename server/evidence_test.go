package server_test

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

// The evidence pack of one visitor, unpacked and checked with none of
// Koekje's code: each receipt with go-jose against the pack's JWKS, each
// record rehashed by an encoder written here from the export reference,
// each proof's inclusion with transparency-dev/merkle under a checkpoint
// whose Ed25519 signature is checked by hand, each banner version against
// its name; the pack holds the visitor's records only, the offline HTML is
// in the visitor's language, and the README is in the site's language and
// English.
func TestEvidencePack(t *testing.T) {
	t.Parallel()
	s, _, logKey := newLoggedServer(t)
	a := post(t, s, `{"site":"demo","action":"accept_all","language":"de"}`).json(t)
	id, token := a["consent_id"].(string), a["token"].(string)
	for _, body := range []string{
		`{"site":"demo","action":"reject_all"}`, // another visitor
		`{"site":"demo","action":"custom","language":"de","choices":{"analytics":true},"services":{"youtube":true},"consent_id":"` + id + `","token":"%s"}`,
		`{"site":"demo","action":"withdraw","language":"de","consent_id":"` + id + `","token":"%s"}`,
	} {
		r := post(t, s, strings.Replace(body, "%s", token, 1))
		if r.status != 201 {
			t.Fatalf("%s: %d %s", body, r.status, r.body)
		}
		if next, ok := r.json(t)["token"].(string); ok && strings.Contains(body, id) {
			token = next // each choice gets the newest token
		}
	}

	files := evidenceFiles(t, s, id)
	names := func(prefix string) []string {
		var out []string
		for n := range files {
			if strings.HasPrefix(n, prefix) {
				out = append(out, n)
			}
		}
		sort.Strings(out)
		return out
	}

	// The records: the visitor's three, each rehashed here.
	var lines []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(files["records.ndjson"]))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l map[string]any
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, l)
	}
	if len(lines) != 4 || lines[3]["koekje_export"] == nil {
		t.Fatalf("records.ndjson: %d lines", len(lines))
	}
	records := lines[:3]
	for i, rec := range records {
		if rec["consent_id"] != id || rec["action"] != []string{"accept_all", "custom", "withdraw"}[i] {
			t.Errorf("record %d: %v", i, rec)
		}
		if got := hex.EncodeToString(independentRecordHash(t, rec)); got != rec["hash"] {
			t.Errorf("record %d rehashes to %s, not %s", i, got, rec["hash"])
		}
	}

	// The receipts, with go-jose and the pack's JWKS.
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(files["keys.json"], &set); err != nil {
		t.Fatal(err)
	}
	receipts := names("receipts/")
	if len(receipts) != 3 {
		t.Fatalf("receipts: %v", receipts)
	}
	for i, name := range receipts {
		sig, err := jose.ParseSigned(strings.TrimSpace(string(files[name])), []jose.SignatureAlgorithm{jose.EdDSA})
		if err != nil {
			t.Fatal(err)
		}
		keys := set.Key(sig.Signatures[0].Header.KeyID)
		if len(keys) != 1 {
			t.Fatalf("%s: no key %s", name, sig.Signatures[0].Header.KeyID)
		}
		payload, err := sig.Verify(keys[0])
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var claims struct {
			Record     string `json:"record"`
			RecordHash string `json:"record_hash"`
			RecordID   string `json:"record_id"`
		}
		json.Unmarshal(payload, &claims)
		enc, err := base64.RawURLEncoding.DecodeString(claims.Record)
		sum := sha256.Sum256(enc)
		if err != nil || hex.EncodeToString(sum[:]) != claims.RecordHash || claims.RecordHash != records[i]["hash"] ||
			!strings.Contains(name, claims.RecordID) {
			t.Errorf("%s: its record does not hash to %s, the record's %s", name, claims.RecordHash, records[i]["hash"])
		}
	}

	// The proofs, with transparency-dev/merkle, under checkpoints signed by
	// the log's key, checked with crypto/ed25519.
	proofs := names("proofs/")
	if len(proofs) != 3 || !bytes.HasPrefix(files["checkpoint.txt"], []byte("koekje.test/log\n")) ||
		strings.TrimSpace(string(files["log-key.txt"])) != logKey {
		t.Fatalf("proofs %v, checkpoint %q", proofs, files["checkpoint.txt"])
	}
	for i, name := range proofs {
		index, salt, tag, path, note := parseTlogProof(t, files[name])
		size, root := checkNote(t, note, logKey)
		recordHash, _ := hex.DecodeString(records[i]["hash"].(string))
		if records[i]["log_index"].(float64) != float64(index) || records[i]["log_salt"] != hex.EncodeToString(salt) {
			t.Errorf("%s: leaf %d salt %x, the record says %v %v", name, index, salt, records[i]["log_index"], records[i]["log_salt"])
		}
		commitment := sha256.Sum256(append(append([]byte("koekje-commitment-v1\x00"), salt...), recordHash...))
		entry := append(append([]byte{0x01}, commitment[:]...), tag...)
		if err := proof.VerifyInclusion(rfc6962.DefaultHasher, index, size, rfc6962.DefaultHasher.HashLeaf(entry), path, root); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}

	// The banner versions: named by their hash, shown offline in the
	// visitor's language.
	versions := names("banner/")
	if len(versions) != 2 || !strings.HasSuffix(versions[0], ".html") || !strings.HasSuffix(versions[1], ".json") {
		t.Fatalf("banner: %v", versions)
	}
	sum := sha256.Sum256(files[versions[1]])
	if "sha256:"+hex.EncodeToString(sum[:]) != records[0]["config_hash"] || !strings.Contains(versions[1], hex.EncodeToString(sum[:])) {
		t.Errorf("%s does not hash to its name", versions[1])
	}
	html := string(files[versions[0]])
	for _, want := range []string{`<html lang="de">`, "Alle akzeptieren", `id="settings-layer"`, "YouTube"} {
		if !strings.Contains(html, want) {
			t.Errorf("the banner page lacks %q", want)
		}
	}
	if strings.Contains(html, "http://") || strings.Contains(html, "src=") {
		t.Error("the banner page loads something")
	}

	var v struct {
		OK             bool `json:"ok"`
		CheckedAgainst struct {
			Unwitnessed bool `json:"unwitnessed"`
		} `json:"checked_against"`
		Records []struct {
			Rehashed bool `json:"rehashed"`
			Receipt  struct {
				OK bool `json:"ok"`
			} `json:"receipt"`
		} `json:"records"`
	}
	if err := json.Unmarshal(files["verification.json"], &v); err != nil || !v.OK || len(v.Records) != 3 || !v.Records[2].Receipt.OK {
		t.Errorf("verification.json: %v %s", err, files["verification.json"])
	}
	// A log without witnesses: the pack says so plainly, in both languages.
	if !v.CheckedAgainst.Unwitnessed {
		t.Errorf("verification.json does not say the log has no witnesses: %s", files["verification.json"])
	}
	readme := string(files["README.txt"])
	for _, want := range []string{"BEWIJSPAKKET", "EVIDENCE PACK", id, "koekje verify-receipt", "(number of records: 3)", "(aantal vastleggingen: 3)",
		"THIS LOG HAS NO WITNESSES", "DIT LOGBOEK HEEFT GEEN GETUIGEN"} {
		if !strings.Contains(readme, want) {
			t.Errorf("README.txt lacks %q", want)
		}
	}

	// Another site's visitor, and a visitor with no records, have no pack.
	if r := do(t, s, "GET", "/api/v1/sites/demo/consents/"+uuid.NewString()+"/evidence", "", "Authorization", "Bearer "+adminToken); r.status != 404 {
		t.Errorf("unknown visitor: %d", r.status)
	}
	if r := do(t, s, "GET", "/api/v1/sites/demo/consents/"+id+"/evidence", ""); r.status != 401 {
		t.Errorf("without a token: %d", r.status)
	}
}

// A site in German or Polish gets the pack's README in its language first,
// then in English: every part written, the facts filled in, no placeholder
// and no English left in the site's part.
func TestEvidencePackInTheSiteLanguage(t *testing.T) {
	t.Parallel()
	for lang, want := range map[string][]string{
		"de": {"BEWEISPAKET — Einwilligungs-ID ", "(Anzahl der Datensätze: 1)", "DIESES PROTOKOLL HAT KEINE ZEUGEN", "Offline selbst prüfen", "alles bestätigt"},
		"pl": {"PAKIET DOWODOWY — identyfikator zgody ", "(liczba zapisów: 1)", "TEN REJESTR NIE MA ŚWIADKÓW", "Jak to sprawdzić bez dostępu do internetu", "wszystko zweryfikowano"},
	} {
		t.Run(lang, func(t *testing.T) {
			t.Parallel()
			s, _, _ := newLoggedServerWith(t, func(d *serverDeps) {
				site := d.Config.Sites[0]
				site.DefaultLanguage = lang
				if !slices.Contains(site.Languages, lang) {
					site.Languages = append(site.Languages, lang)
				}
			})
			id := post(t, s, `{"site":"demo","action":"reject_all","language":"`+lang+`"}`).json(t)["consent_id"].(string)
			b := evidenceFiles(t, s, id)["README.txt"]
			own, english, ok := strings.Cut(string(b), "EVIDENCE PACK — consent ID "+id)
			if !ok || !strings.Contains(english, "THIS LOG HAS NO WITNESSES") {
				t.Fatalf("README.txt has no English part after the site's:\n%s", b)
			}
			flat := strings.Join(strings.Fields(own), " ")
			for _, w := range append(want, id, "records.ndjson", "koekje verify-receipt --keys keys.json --proof") {
				if !strings.Contains(flat, w) {
					t.Errorf("the %s part lacks %q:\n%s", lang, w, own)
				}
			}
			for _, w := range []string{"{", "What this is", "How to check it offline", "everything verified", "the visitor's"} {
				if strings.Contains(own, w) {
					t.Errorf("the %s part holds %q:\n%s", lang, w, own)
				}
			}
		})
	}
}

// independentRecordHash encodes an NDJSON record as the export reference
// specifies koekje-record-v1, without Koekje's code, and hashes it.
func independentRecordHash(t *testing.T, r map[string]any) []byte {
	t.Helper()
	var b []byte
	bs := func(x []byte) { b = binary.AppendVarint(b, int64(len(x))); b = append(b, x...) }
	str := func(k string) { s, _ := r[k].(string); bs([]byte(s)) }
	encoding, v2 := r["encoding"].(string)
	if !v2 {
		encoding = "koekje-record-v1"
	}
	bs([]byte(encoding))
	for _, k := range []string{"record_id", "consent_id"} {
		u := uuid.MustParse(r[k].(string))
		bs(u[:])
	}
	str("site")
	at, err := time.Parse(time.RFC3339Nano, r["recorded_at"].(string))
	if err != nil {
		t.Fatal(err)
	}
	b = binary.AppendVarint(b, at.UnixMicro())
	str("action")
	choices := r["choices"].(map[string]any)
	var cats []string
	for k := range choices {
		cats = append(cats, k)
	}
	sort.Strings(cats)
	b = binary.AppendVarint(b, int64(len(cats)))
	for _, k := range cats {
		bs([]byte(k))
		if choices[k].(bool) {
			b = append(b, 1)
		} else {
			b = append(b, 0)
		}
	}
	services, _ := r["services"].([]any)
	b = binary.AppendVarint(b, int64(len(services)))
	for _, sv := range services {
		bs([]byte(sv.(string)))
	}
	b = binary.AppendVarint(b, int64(r["revision"].(float64)))
	for _, k := range []string{"config_hash", "language", "url", "user_agent", "ip"} {
		str(k)
	}
	flag := func(k string) {
		if r[k].(bool) {
			b = append(b, 1)
		} else {
			b = append(b, 0)
		}
	}
	flag("gpc")
	if v2 {
		flag("gpc_header")
		str("adpc")
		str("signal")
	}
	prev, _ := hex.DecodeString(r["prev_hash"].(string))
	bs(prev)
	sum := sha256.Sum256(b)
	return sum[:]
}

// parseTlogProof reads a C2SP tlog-proof as its spec writes it.
func parseTlogProof(t *testing.T, b []byte) (index uint64, salt, tag []byte, path [][]byte, note []byte) {
	t.Helper()
	head, note, ok := bytes.Cut(b, []byte("\n\n"))
	lines := strings.Split(string(head), "\n")
	if !ok || lines[0] != "c2sp.org/tlog-proof@v1" {
		t.Fatalf("not a tlog-proof: %q", b)
	}
	for _, l := range lines[1:] {
		switch {
		case strings.HasPrefix(l, "extra "):
			x, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(l, "extra "))
			salt, tag = x[:32], x[32:]
		case strings.HasPrefix(l, "index "):
			index, _ = strconv.ParseUint(strings.TrimPrefix(l, "index "), 10, 64)
		default:
			h, _ := base64.StdEncoding.DecodeString(l)
			path = append(path, h)
		}
	}
	return index, salt, tag, path, note
}

// checkNote checks a signed checkpoint's Ed25519 signature by the key
// name+hash+base64(0x01 ‖ key), as C2SP signed-note says, and reads it.
func checkNote(t *testing.T, note []byte, vkey string) (size uint64, root []byte) {
	t.Helper()
	parts := strings.SplitN(vkey, "+", 3)
	raw, _ := base64.StdEncoding.DecodeString(parts[2])
	pub := ed25519.PublicKey(raw[1:])
	text, sigs, _ := strings.Cut(string(note), "\n\n")
	text += "\n"
	signed := false
	for _, l := range strings.Split(sigs, "\n") {
		if rest, ok := strings.CutPrefix(l, "— "+parts[0]+" "); ok {
			sig, _ := base64.StdEncoding.DecodeString(rest)
			signed = signed || (len(sig) == 68 && hex.EncodeToString(sig[:4]) == parts[1] && ed25519.Verify(pub, []byte(text), sig[4:]))
		}
	}
	lines := strings.Split(text, "\n")
	if !signed || len(lines) < 3 {
		t.Fatalf("the checkpoint is not signed by %s: %q", parts[0], note)
	}
	size, _ = strconv.ParseUint(lines[1], 10, 64)
	root, _ = base64.StdEncoding.DecodeString(lines[2])
	return size, root
}
