// Package evidence makes the evidence pack of one complaint: for one
// visitor (a consent ID), one ZIP that a company hands to a regulator,
// holding the visitor's records, a signed receipt and an inclusion proof per
// record, every banner version the visitor was shown (its stored body, and
// the body rendered as offline HTML in the visitor's language), the keys
// and the checkpoint to check them against, what the server found when it
// checked them, and a plain explanation of how to check it all offline.
package evidence

import (
	"archive/zip"
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/koekje/koekje/config"
	"github.com/koekje/koekje/server/consent"
	"github.com/koekje/koekje/server/proof"
	"github.com/koekje/koekje/server/translog"
	"github.com/koekje/koekje/static"
)

// Pack is everything one pack holds, gathered by the server.
type Pack struct {
	Site      *config.Site
	ConsentID uuid.UUID
	MadeAt    time.Time
	// Records in chain order, and Export: the same records as an NDJSON
	// export of this one visitor, with its summary.
	Records []*consent.Record
	Export  []byte
	// Per record, in the same order: its receipt (a JWT) and its C2SP
	// tlog-proof (nil without a log).
	Receipts []string
	Proofs   [][]byte
	// Versions holds the stored body of every banner version the records
	// name, by config_hash, each checked against its hash when read.
	Versions map[string][]byte
	JWKS     []byte // the receipt keys (GET /api/v1/keys)
	LogKey   string // the log's verifier key; "" without a log
	// Policy is the log's witness policy (C2SP tlog-policy, GET
	// /log/policy) every proof was checked under; nil without a log.
	Policy []byte
	// Checkpoint is the signed checkpoint the proofs lead to, with every
	// cosignature it carries.
	Checkpoint []byte
	// Checks holds the server's own check of each receipt and proof, made
	// with the pack's files alone (proof.CheckReceipt).
	Checks []*proof.ReceiptCheck
	// ScanFrom and ScanTo bound the complaint's period (ScanPeriod); Scans
	// are the site's scans recorded in it, oldest first, each with its
	// report, and ScanProofs their entries' proofs, under Checkpoint (nil
	// for a scan without an entry).
	ScanFrom, ScanTo time.Time
	Scans            []*consent.Scan
	ScanProofs       [][]byte
}

// File names inside the pack.
const (
	fileReadme       = "README.txt"
	fileRecords      = "records.ndjson"
	fileKeys         = "keys.json"
	fileLogKey       = "log-key.txt"
	fileCheckpoint   = "checkpoint.txt"
	filePolicy       = "policy.txt"
	fileVerification = "verification.json"
)

// receiptName and friends name a record's files: its sequence number first,
// so they sort in chain order.
func recordFile(dir string, r *consent.Record, ext string) string {
	return fmt.Sprintf("%s/%06d-%s.%s", dir, r.Seq, r.RecordID, ext)
}

// versionFile names a banner version's files by the hex of its hash.
func versionFile(hash, ext string) string {
	return "banner/" + strings.TrimPrefix(hash, "sha256:") + "." + ext
}

// Verification is verification.json: what the server checked, against what.
type Verification struct {
	ConsentID string `json:"consent_id"`
	Site      string `json:"site"`
	MadeAt    string `json:"made_at"`
	OK        bool   `json:"ok"`
	// CheckedAgainst names the keys and checkpoint every check used; they
	// are in the pack, so that anyone repeats the checks.
	CheckedAgainst struct {
		ReceiptKeys []string `json:"receipt_keys"` // key IDs of keys.json
		LogKey      string   `json:"log_key,omitempty"`
		Checkpoint  string   `json:"checkpoint,omitempty"` // its first three lines
		Cosigners   []string `json:"cosigned_by"`
		// WitnessPolicy is the policy every proof was checked under
		// (policy.txt): the log and the quorum of witnesses its checkpoint
		// needs.
		WitnessPolicy string `json:"witness_policy,omitempty"`
		// Unwitnessed says plainly that the policy asks for no
		// cosignature ("quorum none"): the checkpoint is signed by the
		// company alone.
		Unwitnessed bool `json:"unwitnessed,omitempty"`
	} `json:"checked_against"`
	Records  []RecordCheck  `json:"records"`
	Versions []VersionCheck `json:"banner_versions"`
	Scans    ScanChecks     `json:"scans"`
}

// ScanChecks is what was found of the scans of the complaint's period.
type ScanChecks struct {
	From  string       `json:"from"` // the period's start, inclusive
	To    string       `json:"to"`   // its end, exclusive
	Scans []*ScanCheck `json:"scans"`
}

// RecordCheck is what was found of one record.
type RecordCheck struct {
	Sequence int64               `json:"sequence"`
	RecordID string              `json:"record_id"`
	Action   string              `json:"action"`
	Rehashed bool                `json:"rehashed"` // its fields hash to its hash
	Receipt  *proof.ReceiptCheck `json:"receipt"`
}

// VersionCheck is what was found of one banner version.
type VersionCheck struct {
	Hash     string `json:"config_hash"`
	Verified bool   `json:"body_hashes_to_name"`
}

// Write writes the pack as a ZIP.
func (p *Pack) Write(w io.Writer) error {
	z := zip.NewWriter(w)
	add := func(name string, b []byte) error {
		f, err := z.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Deflate, Modified: p.MadeAt})
		if err != nil {
			return err
		}
		_, err = f.Write(b)
		return err
	}
	v := p.verification()
	vb, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	lang := p.Site.DefaultLanguage
	if len(p.Records) > 0 {
		lang = p.Records[len(p.Records)-1].Language
	}
	files := []struct {
		name string
		body []byte
	}{
		{fileReadme, p.readme(v)},
		{fileRecords, p.Export},
		{fileKeys, p.JWKS},
		{fileVerification, append(vb, '\n')},
	}
	if p.LogKey != "" {
		files = append(files, struct {
			name string
			body []byte
		}{fileLogKey, []byte(p.LogKey + "\n")}, struct {
			name string
			body []byte
		}{fileCheckpoint, p.Checkpoint}, struct {
			name string
			body []byte
		}{filePolicy, p.Policy})
	}
	for _, f := range files {
		if err := add(f.name, f.body); err != nil {
			return err
		}
	}
	for i, r := range p.Records {
		if err := add(recordFile("receipts", r, "jwt"), []byte(p.Receipts[i]+"\n")); err != nil {
			return err
		}
		if p.Proofs[i] != nil {
			if err := add(recordFile("proofs", r, "tlog-proof"), p.Proofs[i]); err != nil {
				return err
			}
		}
	}
	for i, sc := range p.Scans {
		meta, err := newScanFile(sc)
		if err != nil {
			return err
		}
		if err := add(scanFile(sc, "scan.json"), meta); err != nil {
			return err
		}
		if err := add(scanFile(sc, "report.json"), sc.Report); err != nil {
			return err
		}
		if p.ScanProofs[i] != nil {
			if err := add(scanFile(sc, "tlog-proof"), p.ScanProofs[i]); err != nil {
				return err
			}
		}
	}
	for _, hash := range p.versionOrder() {
		body := p.Versions[hash]
		html, err := RenderVersion(hash, body, p.languageOf(hash, lang))
		if err != nil {
			return fmt.Errorf("banner version %s: %w", hash, err)
		}
		if err := add(versionFile(hash, "json"), body); err != nil {
			return err
		}
		if err := add(versionFile(hash, "html"), html); err != nil {
			return err
		}
	}
	return z.Close()
}

// versionOrder lists the versions in the order the records first name them.
func (p *Pack) versionOrder() []string {
	var out []string
	seen := map[string]bool{}
	for _, r := range p.Records {
		if !seen[r.ConfigHash] && p.Versions[r.ConfigHash] != nil {
			seen[r.ConfigHash] = true
			out = append(out, r.ConfigHash)
		}
	}
	return out
}

// languageOf is the language the visitor saw a version in: that of the
// first record naming it.
func (p *Pack) languageOf(hash, fallback string) string {
	for _, r := range p.Records {
		if r.ConfigHash == hash {
			return r.Language
		}
	}
	return fallback
}

func (p *Pack) verification() *Verification {
	v := &Verification{ConsentID: p.ConsentID.String(), Site: p.Site.ID, MadeAt: p.MadeAt.UTC().Format(time.RFC3339), OK: true}
	var keys struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	json.Unmarshal(p.JWKS, &keys)
	for _, k := range keys.Keys {
		v.CheckedAgainst.ReceiptKeys = append(v.CheckedAgainst.ReceiptKeys, k.Kid)
	}
	v.CheckedAgainst.LogKey = p.LogKey
	if p.LogKey != "" {
		head, sigs, _ := strings.Cut(string(p.Checkpoint), "\n\n")
		v.CheckedAgainst.Checkpoint = head
		v.CheckedAgainst.Cosigners = []string{}
		logName, _, _ := strings.Cut(p.LogKey, "+")
		for _, line := range strings.Split(sigs, "\n") {
			if name, ok := strings.CutPrefix(line, "— "); ok {
				if name, _, _ = strings.Cut(name, " "); name != logName {
					v.CheckedAgainst.Cosigners = append(v.CheckedAgainst.Cosigners, name)
				}
			}
		}
	}
	v.CheckedAgainst.WitnessPolicy = string(p.Policy)
	if pol, err := translog.ParsePolicy(p.Policy); err == nil {
		v.CheckedAgainst.Unwitnessed = pol.Unwitnessed()
	}
	for i, r := range p.Records {
		rc := RecordCheck{Sequence: r.Seq, RecordID: r.RecordID.String(), Action: r.Action,
			Rehashed: bytes.Equal(consent.RecordHash(r), r.Hash), Receipt: p.Checks[i]}
		v.OK = v.OK && rc.Rehashed && rc.Receipt.OK
		v.Records = append(v.Records, rc)
	}
	for _, hash := range p.versionOrder() {
		ok := config.Hash(p.Versions[hash]) == hash
		v.OK = v.OK && ok
		v.Versions = append(v.Versions, VersionCheck{Hash: hash, Verified: ok})
	}
	// Each scan is checked as a regulator would check it: from the files
	// the pack holds of it, under the policy it carries.
	var policy *translog.Policy
	if p.Policy != nil {
		policy, _ = translog.ParsePolicy(p.Policy)
	}
	v.Scans = ScanChecks{From: p.ScanFrom.UTC().Format(time.RFC3339), To: p.ScanTo.UTC().Format(time.RFC3339), Scans: []*ScanCheck{}}
	for i, sc := range p.Scans {
		meta, err := newScanFile(sc)
		c := CheckScan(meta, sc.Report, p.ScanProofs[i], policy)
		if err != nil {
			c.OK, c.Error = false, err.Error()
		}
		v.OK = v.OK && c.OK
		v.Scans.Scans = append(v.Scans.Scans, c)
	}
	return v
}

//go:embed templates
var templates embed.FS

var versionTmpl = template.Must(template.ParseFS(templates, "templates/version.html"))

// readme is README.txt: in the site's language, then in English.
func (p *Pack) readme(v *Verification) []byte {
	var b bytes.Buffer
	d := &readmeData{V: v, Count: len(p.Records), HasLog: p.LogKey != "", Scans: len(p.Scans),
		From: p.ScanFrom.UTC().Format(time.DateOnly), To: p.ScanTo.UTC().Add(-24 * time.Hour).Format(time.DateOnly)}
	langs := []string{"en"}
	if l := p.Site.DefaultLanguage; l != "en" && readmeTexts[l] != nil {
		langs = []string{l, "en"}
	}
	for i, l := range langs {
		if i > 0 {
			b.WriteString("\n\n")
		}
		readmeIn(&b, l, d)
	}
	return b.Bytes()
}

// Shown is a stored banner version as its visitors saw it in one language.
type Shown struct {
	Site  config.Site
	Lang  string
	Intro string
	Texts map[string]any // the banner's texts in Lang
	Cats  []ShownCategory
}

// ShownCategory is one category of the settings layer, with the services
// in it.
type ShownCategory struct {
	ID, Title, Description string
	Required               bool
	Services               []*config.Service
}

// ShowVersion reads a stored banner version's body in lang, or in the
// version's default language when it has no texts in lang.
func ShowVersion(body []byte, lang string) (*Shown, error) {
	var v struct {
		Site  config.Site               `json:"site"`
		Texts map[string]map[string]any `json:"texts"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return nil, err
	}
	if _, ok := v.Texts[lang]; !ok {
		lang = v.Site.DefaultLanguage
	}
	sh := &Shown{Site: v.Site, Lang: lang, Texts: v.Texts[lang]}
	sh.Intro, _ = sh.Texts["intro"].(string)
	if own := v.Site.Intro[lang]; own != "" && !strings.Contains(own, "{purposes}") {
		// The site's own intro, which a version stored before intros were
		// made at build time holds as written: the banner put the third
		// parties in place of {p} as it showed it, and so does this page.
		and, _ := sh.Texts["and"].(string)
		sh.Intro = strings.ReplaceAll(own, "{p}", static.JoinList(lang, and, static.ThirdParties(&v.Site)))
	}
	for _, ct := range v.Site.Categories {
		sc := ShownCategory{ID: ct.ID, Title: ct.Title[lang], Description: ct.Description[lang], Required: ct.Required}
		for _, sv := range v.Site.Services {
			if sv != nil && sv.Category == ct.ID {
				sc.Services = append(sc.Services, sv)
			}
		}
		sh.Cats = append(sh.Cats, sc)
	}
	return sh, nil
}

// RenderVersion renders a stored banner version as one offline HTML page:
// both layers (the first, with its buttons, and the settings layer with
// every category) in lang, or the version's default language when it has
// no texts in lang. It needs nothing from the network.
func RenderVersion(hash string, body []byte, lang string) ([]byte, error) {
	sh, err := ShowVersion(body, lang)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	err = versionTmpl.Execute(&out, struct {
		*Shown
		Hash string
	}{sh, hash})
	return out.Bytes(), err
}
