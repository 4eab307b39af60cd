package store

// The names of the secrets a store seals under its key file. Every store
// uses these names, so a copy between stores (Copy) carries each secret
// to the same use. A name must never change: what is already stored was
// made with its secret.
const (
	// ConsentIDSecret is the key of the permutation that mints consent IDs
	// from their index keys (consent.IDs).
	ConsentIDSecret = "consent-id-key"
	// RequestIDSecret is the key of the keyed hashes stored request IDs
	// are kept as (consent.RequestIDs).
	RequestIDSecret = "request-id-key"
	// LogKeySecret is the seed of the transparency log's signing key. It
	// goes only with its log: a new log signed with it would contradict
	// the checkpoints the old one published.
	LogKeySecret = "log-signing-key"
	// LogEarlierKeysSecret holds the verifier keys of the log's earlier
	// names, one a line, oldest first: a successor log keeps them, sealed
	// as the log's own key is, so that checkpoints and receipts of the old
	// name still verify, and nobody with the database alone can add a key
	// that verify would trust.
	LogEarlierKeysSecret = "log-earlier-keys"
	// LogAuditRootSecret is the root every site's audit key is derived
	// from (translog.AuditKey).
	LogAuditRootSecret = "log-audit-root"
	// LogQueueMACSecret is the key of the MACs that let a queued record
	// into the log on a store that logs after the commit: the database
	// alone cannot make one, so a record inserted behind the store's back
	// gets no leaf.
	LogQueueMACSecret = "log-queue-mac-key"
	// VisitorTokenSecret is the key of the visitor tokens the banner holds
	// (securecookie).
	VisitorTokenSecret = "visitor-token-key"
)
