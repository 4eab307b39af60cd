package translog

import (
	"crypto/hmac"
	"crypto/sha256"
)

// AuditRootSecret names, among a store's secrets, the root every site's
// audit key is derived from.
const AuditRootSecret = "log-audit-root"

// AuditKey is the key whose holder can find a site's leaves in the log,
// derived from the audit root; every store derives it alike.
func AuditKey(root []byte, site string) []byte {
	m := hmac.New(sha256.New, root)
	m.Write([]byte("koekje-site-audit-key-v1\x00" + site))
	return m.Sum(nil)
}
