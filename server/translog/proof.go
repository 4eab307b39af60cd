package translog

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/tlog"
)

// proofHeader opens a C2SP tlog-proof.
const proofHeader = "c2sp.org/tlog-proof@v1"

// Proof is a C2SP tlog-proof of one record: the leaf's index, its inclusion
// path, and the signed checkpoint it leads to. The extra line carries what
// the leaf needs beside the receipt's record hash: the salt and the site tag.
type Proof struct {
	Index      int64
	Salt       []byte
	SiteTag    [SiteTagSize]byte
	Path       tlog.RecordProof
	Checkpoint []byte // signed note
}

// Encode writes the proof in the tlog-proof text format.
func (p *Proof) Encode() []byte {
	var b bytes.Buffer
	b.WriteString(proofHeader + "\n")
	b.WriteString("extra " + base64.StdEncoding.EncodeToString(append(append([]byte{}, p.Salt...), p.SiteTag[:]...)) + "\n")
	b.WriteString("index " + strconv.FormatInt(p.Index, 10) + "\n")
	for _, h := range p.Path {
		b.WriteString(base64.StdEncoding.EncodeToString(h[:]) + "\n")
	}
	b.WriteString("\n")
	b.Write(p.Checkpoint)
	return b.Bytes()
}

// ParseProof reads a tlog-proof that Encode wrote.
func ParseProof(data []byte) (*Proof, error) {
	head, checkpoint, ok := bytes.Cut(data, []byte("\n\n"))
	if !ok {
		return nil, errors.New("tlog-proof: no checkpoint after the proof")
	}
	p := &Proof{Checkpoint: checkpoint}
	sc := bufio.NewScanner(bytes.NewReader(head))
	line := 0
	for sc.Scan() {
		t := sc.Text()
		switch {
		case line == 0:
			if t != proofHeader {
				return nil, fmt.Errorf("tlog-proof: first line %q", t)
			}
		case strings.HasPrefix(t, "extra "):
			x, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(t, "extra "))
			if err != nil || len(x) != SaltSize+SiteTagSize {
				return nil, errors.New("tlog-proof: the extra line is not a salt and a site tag")
			}
			p.Salt = x[:SaltSize]
			copy(p.SiteTag[:], x[SaltSize:])
		case strings.HasPrefix(t, "index "):
			n, err := strconv.ParseInt(strings.TrimPrefix(t, "index "), 10, 64)
			if err != nil || n < 0 {
				return nil, fmt.Errorf("tlog-proof: %q", t)
			}
			p.Index = n
		default:
			h, err := base64.StdEncoding.DecodeString(t)
			if err != nil || len(h) != tlog.HashSize {
				return nil, fmt.Errorf("tlog-proof: %q is not a hash", t)
			}
			p.Path = append(p.Path, tlog.Hash(h))
		}
		line++
	}
	if p.Salt == nil {
		return nil, errors.New("tlog-proof: no extra line")
	}
	return p, sc.Err()
}

// Verify checks that the record with recordHash is the leaf the proof names
// in a checkpoint signed by the log (logKey), and returns the checkpoint.
func (p *Proof) Verify(recordHash []byte, logKey string) (Checkpoint, error) {
	cp, _, err := OpenCheckpoint(p.Checkpoint, logKey)
	if err != nil {
		return cp, err
	}
	return cp, p.Includes(cp, recordHash)
}

// Includes checks that the record with recordHash is the leaf the proof
// names in cp, a checkpoint its caller verified.
func (p *Proof) Includes(cp Checkpoint, recordHash []byte) error {
	if p.Index >= cp.Size {
		return fmt.Errorf("leaf %d is not in a log of %d", p.Index, cp.Size)
	}
	entry := Leaf{Commitment: Commit(p.Salt, recordHash), SiteTag: p.SiteTag}.Encode()
	if err := tlog.CheckRecord(p.Path, cp.Size, cp.Hash, p.Index, tlog.RecordHash(entry)); err != nil {
		return fmt.Errorf("the record is not in the log at %d: %w", p.Index, err)
	}
	return nil
}
