// Package consent is Koekje's domain: consent records, the validation of a
// visitor's choice against a site's configuration, the record hash and its
// versioned encoding, and error codes. It knows neither HTTP nor SQL; the
// interfaces to stores are declared by the packages that use them.
//
// # Records and their chain
//
// Each site's records form a chain: record n carries the SHA-256 hash of
// record n−1 and its own hash over a length-prefixed encoding of every
// stored field (koekje-record-v2 since the browser's signals are recorded,
// koekje-record-v1 before; each record is hashed under its own, see
// RecordHash). A store's single writer per
// chain computes it as records commit, and keeps recorded_at non-decreasing
// along a chain, so a store finds a time range by binary search over its
// (site, seq) index. Records are append-only: a withdrawal is a new record.
//
// Every banner version a site served (its config, categories and texts) is
// stored once under its hash; a record names the version its visitor saw,
// and a record naming a version the site never served is refused.
//
// # Consent IDs
//
// A first choice gets its consent ID from the store: a UUIDv4 whose 122
// random-looking bits are a keyed permutation (a four-round Feistel network
// over AES-128, its key sealed in the store) of a fresh, time-ordered UUIDv7.
// Without the key the bits are pseudorandom; with it the store turns any
// consent ID back into its UUIDv7 and indexes that, so every first choice
// lands at the right edge of the index rather than on a random index page,
// and writes keep their speed as the database grows. The permutation is a
// bijection, so minted IDs never collide; a look-up also compares the
// consent ID itself.
package consent
