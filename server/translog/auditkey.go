package translog

import (
	"crypto/hmac"
	"crypto/sha256"
)

// AuditKey is the key whose holder can find a site's leaves in the log,
// derived from the audit root; every store derives it alike.
func AuditKey(root []byte, site string) []byte {
	m := hmac.New(sha256.New, root)
	m.Write([]byte("koekje-site-audit-key-v1\x00" + site))
	return m.Sum(nil)
}
