package proof

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/koekje/koekje/config"
	"github.com/koekje/koekje/server/consent"
)

// ReceiptVersion is the Kantara Consent Receipt specification the claims follow.
const ReceiptVersion = "KI-CR-v1.1.0"

// Receipt is the claim set of a signed consent receipt: the Kantara Consent
// Receipt v1.1 fields, and the ISO/IEC TS 27560 record fields that tie it to
// the stored record and its place in the hash chain.
type Receipt struct {
	Issuer           string              `json:"iss"`
	Subject          string              `json:"sub"`
	IssuedAt         int64               `json:"iat"`
	JWTID            string              `json:"jti"`
	Version          string              `json:"version"`
	Jurisdiction     string              `json:"jurisdiction"`
	ConsentTimestamp int64               `json:"consentTimestamp"`
	CollectionMethod string              `json:"collectionMethod"`
	ConsentReceiptID string              `json:"consentReceiptID"`
	Language         string              `json:"language"`
	PiiPrincipalID   string              `json:"piiPrincipalId"`
	PiiControllers   []ReceiptController `json:"piiControllers"`
	PolicyURL        string              `json:"policyUrl"`
	Services         []ReceiptService    `json:"services"`
	Sensitive        bool                `json:"sensitive"`
	SpiCat           []string            `json:"spiCat"`

	Site            string   `json:"site"`
	RecordID        string   `json:"record_id"`
	RecordedAt      string   `json:"recorded_at"`
	Action          string   `json:"action"`
	GrantedServices []string `json:"granted_services,omitempty"`
	PolicyRevision  int      `json:"policy_revision"`
	ConfigHash      string   `json:"config_hash"`
	GPC             bool     `json:"gpc"`
	// The browser's signals and the record's encoding, for records of
	// koekje-record-v2 only (consent.Record).
	GPCHeader      *bool  `json:"gpc_header,omitempty"`
	ADPC           string `json:"adpc,omitempty"`
	Signal         string `json:"signal,omitempty"`
	RecordEncoding string `json:"record_encoding,omitempty"`
	Sequence       int64  `json:"sequence"`
	RecordHash     string `json:"record_hash"`
	PrevHash       string `json:"prev_hash"`
	// LogIndex is the record's leaf in the transparency log, when one is kept.
	LogIndex *int64 `json:"log_index,omitempty"`
	// Record is the record's canonical encoding (consent.RecordEncoding,
	// base64url without padding): its SHA-256 is RecordHash, so anyone
	// recomputes the hash, and checks the claims above, from the receipt
	// alone.
	Record string `json:"record"`
}

// ReceiptController is the data controller as the receipt names it.
type ReceiptController struct {
	Name    string `json:"piiController"`
	Address string `json:"address,omitempty"`
	Email   string `json:"email"`
	URL     string `json:"url"`
}

// ReceiptService is the website, with one purpose per category.
type ReceiptService struct {
	Service  string           `json:"service"`
	Purposes []ReceiptPurpose `json:"purposes"`
}

// ReceiptPurpose is a category and the visitor's decision on it.
type ReceiptPurpose struct {
	Purpose              string   `json:"purpose"`
	PurposeCategory      []string `json:"purposeCategory"`
	ConsentType          string   `json:"consentType"`
	PiiCategory          []string `json:"piiCategory"`
	PrimaryPurpose       bool     `json:"primaryPurpose"`
	Termination          string   `json:"termination"`
	ThirdPartyDisclosure bool     `json:"thirdPartyDisclosure"`
	ThirdPartyName       []string `json:"thirdPartyName,omitempty"`
	State                string   `json:"state"` // "granted" or "refused"
}

// NewReceipt builds the claims for record r of site. issuer is the consent
// server's origin; now and id make each receipt distinct.
func NewReceipt(r *consent.Record, site *config.Site, issuer string, now time.Time, id string) *Receipt {
	c := site.Controller
	jur := c.Jurisdiction
	if jur == "" {
		jur = "EU"
	}
	rc := &Receipt{
		Issuer: issuer, Subject: r.ConsentID.String(), IssuedAt: now.Unix(), JWTID: id,
		Version: ReceiptVersion, Jurisdiction: jur, ConsentTimestamp: r.RecordedAt.Unix(),
		CollectionMethod: consent.CollectionMethod(r), ConsentReceiptID: id, Language: r.Language,
		PiiPrincipalID: r.ConsentID.String(),
		PiiControllers: []ReceiptController{{Name: c.Organisation, Address: c.Address, Email: c.Email, URL: c.PrivacyPolicy}},
		PolicyURL:      c.PrivacyPolicy, SpiCat: []string{},
		Site: site.ID, RecordID: r.RecordID.String(), RecordedAt: r.RecordedAt.Format(time.RFC3339Nano),
		Action: r.Action, GrantedServices: r.Services, PolicyRevision: r.Revision, ConfigHash: r.ConfigHash,
		GPC: r.GPC, Sequence: r.Seq, RecordHash: hex.EncodeToString(r.Hash), PrevHash: hex.EncodeToString(r.PrevHash),
		Record: base64.RawURLEncoding.EncodeToString(consent.RecordEncoding(r)),
	}
	if consent.EncodingOf(r) == consent.EncodingV2 {
		rc.GPCHeader, rc.ADPC, rc.Signal, rc.RecordEncoding = &r.GPCHeader, r.ADPC, r.Signal, consent.RecordEncodingV2
	}
	svc := ReceiptService{Service: site.Name}
	for _, cat := range site.Categories {
		p := ReceiptPurpose{
			Purpose: text(cat.Title, r.Language, site.DefaultLanguage), PurposeCategory: []string{cat.ID},
			ConsentType: "EXPLICIT", PiiCategory: []string{"online identifiers (cookies)"},
			PrimaryPurpose: cat.Required, Termination: fmt.Sprintf("%d months after the choice, or on withdrawal", site.ChoiceMonths),
			State: "refused",
		}
		if cat.Required {
			p.ConsentType = "NOT REQUIRED"
		}
		if r.Choices[cat.ID] {
			p.State = "granted"
		}
		for _, s := range site.Services {
			if s.Category == cat.ID && s.Provider != c.Organisation {
				p.ThirdPartyDisclosure = true
				p.ThirdPartyName = append(p.ThirdPartyName, s.Provider)
			}
		}
		svc.Purposes = append(svc.Purposes, p)
	}
	rc.Services = []ReceiptService{svc}
	return rc
}

func text(t config.Text, lang, def string) string {
	if s, ok := t[lang]; ok {
		return s
	}
	return t[def]
}
