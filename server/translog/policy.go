package translog

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// A Policy says which checkpoints a verifier accepts (C2SP tlog-policy):
// signed by one of its logs and cosigned by a quorum of its witnesses. A
// log publishes its own beside its key, and verifiers pin it as they pin
// the key, so that a log cannot quietly stop asking witnesses.
type Policy struct {
	Logs      []string        // the logs' verifier keys
	Witnesses []PolicyWitness // by name
	groups    []*policyGroup  // in the order defined
	quorum    *policyGroup    // nil: "quorum none"
	named     map[string]*policyGroup
}

// PolicyWitness is one witness of a policy.
type PolicyWitness struct {
	Name string
	Key  string // its cosignature verifier key
	URL  string // optional
}

// policyGroup is a witness (key set, no members) or a group of k members.
type policyGroup struct {
	name    string
	key     string // a witness's key
	k       int
	members []*policyGroup
	spec    string // how the group line said k: all, any or a number
}

// maxPolicyWitnesses bounds a policy; tlog-policy asks implementations to
// take at least 32 logs, witnesses and groups.
const maxPolicyWitnesses = 32

// NewPolicy is the policy of a log with the given witnesses, k of which
// must cosign (no witnesses and k = 0: "quorum none").
func NewPolicy(logKey string, witnessKeys []string, k int) (*Policy, error) {
	var b strings.Builder
	b.WriteString("log " + logKey + "\n")
	var names []string
	for _, key := range witnessKeys {
		name, _, _ := strings.Cut(key, "+")
		for base, i := name, 2; name == "none" || slices.Contains(names, name); i++ {
			name = base + "-" + strconv.Itoa(i)
		}
		names = append(names, name)
		b.WriteString("witness " + name + " " + key + "\n")
	}
	switch {
	case len(witnessKeys) == 0 && k == 0:
		b.WriteString("quorum none\n")
	case k < 1 || k > len(witnessKeys):
		return nil, fmt.Errorf("policy: %d of %d witnesses", k, len(witnessKeys))
	case len(witnessKeys) == 1:
		b.WriteString("quorum " + names[0] + "\n")
	default:
		group := "witnesses"
		for slices.Contains(names, group) {
			group += "-group"
		}
		b.WriteString("group " + group + " " + strconv.Itoa(k) + " " + strings.Join(names, " ") + "\n")
		b.WriteString("quorum " + group + "\n")
	}
	return ParsePolicy([]byte(b.String()))
}

// ParsePolicy reads a policy file.
func ParsePolicy(text []byte) (*Policy, error) {
	p := &Policy{named: map[string]*policyGroup{}}
	sc := bufio.NewScanner(bytes.NewReader(text))
	line, quorums := 0, 0
	keys := map[string]bool{}
	for sc.Scan() {
		line++
		t := sc.Text()
		for _, r := range t {
			if r < 0x20 && r != '\t' || r == 0x7f {
				return nil, fmt.Errorf("policy line %d: a control character", line)
			}
		}
		f := strings.FieldsFunc(t, func(r rune) bool { return r == ' ' || r == '\t' })
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		fail := func(format string, args ...any) error {
			return fmt.Errorf("policy line %d: "+format, append([]any{line}, args...)...)
		}
		switch f[0] {
		case "log":
			if len(f) < 2 || len(f) > 3 {
				return nil, fail("want log <vkey> [<url>]")
			}
			if _, err := note.NewVerifier(f[1]); err != nil {
				return nil, fail("%v", err)
			}
			if keys[f[1]] {
				return nil, fail("a log listed twice")
			}
			keys[f[1]] = true
			p.Logs = append(p.Logs, f[1])
		case "witness":
			if len(f) < 3 || len(f) > 4 {
				return nil, fail("want witness <name> <vkey> [<url>]")
			}
			if _, err := NewCosignatureVerifier(f[2]); err != nil {
				return nil, fail("%v", err)
			}
			if p.named[f[1]] != nil || f[1] == "none" {
				return nil, fail("the name %q is taken", f[1])
			}
			if keys[f[2]] {
				return nil, fail("a witness listed twice")
			}
			keys[f[2]] = true
			w := PolicyWitness{Name: f[1], Key: f[2]}
			if len(f) == 4 {
				w.URL = f[3]
			}
			p.Witnesses = append(p.Witnesses, w)
			p.named[f[1]] = &policyGroup{name: f[1], key: f[2]}
			if len(p.Witnesses) > maxPolicyWitnesses {
				return nil, fail("more than %d witnesses", maxPolicyWitnesses)
			}
		case "group":
			if len(f) < 4 {
				return nil, fail("want group <name> all|any|<k> <name>...")
			}
			if p.named[f[1]] != nil || f[1] == "none" {
				return nil, fail("the name %q is taken", f[1])
			}
			g := &policyGroup{name: f[1], spec: f[2]}
			for _, m := range f[3:] {
				member := p.named[m]
				if member == nil {
					return nil, fail("%q is not defined above", m)
				}
				if slices.Contains(g.members, member) {
					return nil, fail("%q listed twice", m)
				}
				g.members = append(g.members, member)
			}
			switch f[2] {
			case "all":
				g.k = len(g.members)
			case "any":
				g.k = 1
			default:
				k, err := strconv.Atoi(f[2])
				if err != nil || k < 1 || k > len(g.members) || strconv.Itoa(k) != f[2] {
					return nil, fail("threshold %q: want all, any or 1 to %d", f[2], len(g.members))
				}
				g.k = k
			}
			p.named[f[1]] = g
			p.groups = append(p.groups, g)
			if len(p.groups) > maxPolicyWitnesses {
				return nil, fail("more than %d groups", maxPolicyWitnesses)
			}
		case "quorum":
			if len(f) != 2 {
				return nil, fail("want quorum <name>")
			}
			if quorums++; quorums > 1 {
				return nil, fail("a second quorum")
			}
			if f[1] != "none" {
				if p.quorum = p.named[f[1]]; p.quorum == nil {
					return nil, fail("%q is not defined above", f[1])
				}
			}
		default:
			return nil, fail("unknown keyword %q", f[0])
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	if quorums != 1 {
		return nil, errors.New("policy: no quorum line")
	}
	if len(p.Logs) == 0 {
		return nil, errors.New("policy: no log line")
	}
	return p, nil
}

// Encode writes the policy in the tlog-policy format.
func (p *Policy) Encode() []byte {
	var b strings.Builder
	for _, l := range p.Logs {
		b.WriteString("log " + l + "\n")
	}
	for _, w := range p.Witnesses {
		b.WriteString("witness " + w.Name + " " + w.Key)
		if w.URL != "" {
			b.WriteString(" " + w.URL)
		}
		b.WriteString("\n")
	}
	for _, g := range p.groups {
		b.WriteString("group " + g.name + " " + g.spec)
		for _, m := range g.members {
			b.WriteString(" " + m.name)
		}
		b.WriteString("\n")
	}
	if p.quorum == nil {
		b.WriteString("quorum none\n")
	} else {
		b.WriteString("quorum " + p.quorum.name + "\n")
	}
	return []byte(b.String())
}

// Unwitnessed reports whether the policy asks for no cosignature at all
// ("quorum none"): a log that has no witnesses.
func (p *Policy) Unwitnessed() bool { return p.quorum == nil }

// HasLog reports whether the policy accepts checkpoints signed by logKey.
func (p *Policy) HasLog(logKey string) bool { return slices.Contains(p.Logs, logKey) }

// satisfied reports whether witnesses with the given keys meet g.
func (g *policyGroup) satisfied(cosigned map[string]bool) bool {
	if g == nil {
		return true
	}
	if g.key != "" {
		return cosigned[g.key]
	}
	n := 0
	for _, m := range g.members {
		if m.satisfied(cosigned) {
			n++
		}
	}
	return n >= g.k
}

// Open verifies a checkpoint under the policy: signed by one of its logs
// and cosigned by a quorum of its witnesses. It returns the checkpoint, the
// names of the witnesses whose cosignatures verified, and the note
// re-encoded with only the signatures that verified (what a log should
// publish and a verifier keep).
func (p *Policy) Open(signed []byte) (Checkpoint, []string, []byte, error) {
	cp, names, clean, met, err := p.open(signed)
	if err == nil && !met {
		err = fmt.Errorf("checkpoint %d is cosigned by %d witnesses of the policy (%s), fewer than its quorum %s asks",
			cp.Size, len(names), strings.Join(names, ", "), p.quorum.name)
	}
	return cp, names, clean, err
}

// Clean re-encodes a checkpoint signed by one of the policy's logs with
// only the signatures that verify under the policy's keys, whether or not
// they meet its quorum.
func (p *Policy) Clean(signed []byte) (Checkpoint, []byte, error) {
	cp, _, clean, _, err := p.open(signed)
	return cp, clean, err
}

func (p *Policy) open(signed []byte) (cp Checkpoint, names []string, clean []byte, met bool, err error) {
	var vs []note.Verifier
	for _, l := range p.Logs {
		v, err := note.NewVerifier(l)
		if err != nil {
			return cp, nil, nil, false, err
		}
		vs = append(vs, v)
	}
	byName := map[string]string{}
	for _, w := range p.Witnesses {
		v, err := NewCosignatureVerifier(w.Key)
		if err != nil {
			return cp, nil, nil, false, err
		}
		vs = append(vs, v)
		byName[v.Name()+"+"+strconv.FormatUint(uint64(v.KeyHash()), 16)] = w.Key
	}
	n, err := note.Open(signed, note.VerifierList(vs...))
	if err != nil {
		return cp, nil, nil, false, fmt.Errorf("checkpoint: %w", err)
	}
	if cp, err = ParseCheckpoint(n.Text); err != nil {
		return cp, nil, nil, false, err
	}
	logSigned := false
	cosigned := map[string]bool{}
	for _, s := range n.Sigs {
		if key, ok := byName[s.Name+"+"+strconv.FormatUint(uint64(s.Hash), 16)]; ok {
			cosigned[key] = true
			names = append(names, s.Name)
			continue
		}
		logSigned = logSigned || s.Name == cp.Origin
	}
	if !logSigned {
		return cp, nil, nil, false, errors.New("checkpoint: not signed by a log of the policy under its origin")
	}
	clean, err = note.Sign(&note.Note{Text: n.Text, Sigs: n.Sigs})
	return cp, names, clean, p.quorum.satisfied(cosigned), err
}

// WeakerThan says how p accepts a checkpoint that old does not: a log old
// does not list, or a set of witnesses that meets p's quorum and not old's.
// It returns nil when p is at least as strict as old. Witnesses are the
// same when their keys are.
func (p *Policy) WeakerThan(old *Policy) error {
	for _, l := range p.Logs {
		if !old.HasLog(l) {
			return fmt.Errorf("it accepts the log %s, which the earlier policy does not", l)
		}
	}
	var keys []string
	for _, pol := range []*Policy{p, old} {
		for _, w := range pol.Witnesses {
			if !slices.Contains(keys, w.Key) {
				keys = append(keys, w.Key)
			}
		}
	}
	if len(keys) > 20 {
		return fmt.Errorf("the two policies name %d witnesses, too many to compare", len(keys))
	}
	for set := 0; set < 1<<len(keys); set++ {
		cosigned := map[string]bool{}
		var names []string
		for i, k := range keys {
			if set&(1<<i) != 0 {
				cosigned[k] = true
				name, _, _ := strings.Cut(k, "+")
				names = append(names, name)
			}
		}
		if p.quorum.satisfied(cosigned) && !old.quorum.satisfied(cosigned) {
			if len(names) == 0 {
				return errors.New("it accepts checkpoints no witness cosigned, which the earlier policy does not")
			}
			return fmt.Errorf("it accepts checkpoints cosigned by %s alone, which the earlier policy does not", strings.Join(names, ", "))
		}
	}
	return nil
}
