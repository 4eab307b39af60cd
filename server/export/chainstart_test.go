package export

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/koekje/koekje/server/consent"
)

// An export of the whole site starts where the site's chain starts: at
// record 1, or after the newest purge, linked to the hash it signed.
func TestChainStart(t *testing.T) {
	h := func(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }
	purges := []Purge{{ThroughSeq: 7, Hash: hex.EncodeToString(h(7))}, {ThroughSeq: 3, Hash: hex.EncodeToString(h(3))}}
	for _, tt := range []struct {
		name   string
		first  *consent.Record
		purges []Purge
		want   string
	}{
		{"record 1", &consent.Record{Seq: 1}, nil, ""},
		{"after the newest purge", &consent.Record{Seq: 8, PrevHash: h(7)}, purges, ""},
		{"records before it gone, no purge", &consent.Record{Seq: 4, PrevHash: h(3)}, nil, "starts at record 4, and no purge removed"},
		{"after an older purge", &consent.Record{Seq: 4, PrevHash: h(3)}, purges, "does not follow the newest purge (through record 7"},
		{"a record after the purge gone", &consent.Record{Seq: 9, PrevHash: h(8)}, purges, "starts at record 9, which does not follow"},
		{"linked elsewhere", &consent.Record{Seq: 8, PrevHash: h(6)}, purges, "does not follow the newest purge"},
	} {
		err := checkChainStart(tt.first, tt.purges)
		if (tt.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
	}
}
