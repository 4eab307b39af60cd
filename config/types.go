package config

import (
	"fmt"
	"math"
	"reflect"
	"strings"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/token"
)

// Problem is one thing wrong with a configuration file.
type Problem struct {
	Line, Col int    // where, from 1; the nearest ancestor's for a missing key
	Path      string // the YAML path, like sites[0].categories[1].title
	Msg       string
	// Rule names a check that sites.schema.json cannot make (a key of
	// CrossFieldRules); empty for the checks the schema makes too.
	Rule string
}

// typeChecker walks the syntax tree beside the Go types the file decodes
// into, so that a value of the wrong type, or an unknown key, is reported
// with its YAML path and line instead of a Go type's name, and every such
// value is reported, not only the first.
type typeChecker struct {
	anchors map[string]ast.Node
	errs    []Problem
	depth   int
}

// maxTypeDepth bounds alias chains; the types themselves are a few levels deep.
const maxTypeDepth = 64

func checkTypes(body ast.Node) []Problem {
	tc := &typeChecker{anchors: map[string]ast.Node{}}
	ast.Walk(anchorCollector(tc.anchors), body)
	tc.check(body, reflect.TypeFor[Config](), "")
	return tc.errs
}

type anchorCollector map[string]ast.Node

func (a anchorCollector) Visit(n ast.Node) ast.Visitor {
	if an, ok := n.(*ast.AnchorNode); ok && an.Name != nil && an.Name.GetToken() != nil {
		a[an.Name.GetToken().Value] = an.Value
	}
	return a
}

func (tc *typeChecker) add(n ast.Node, path, format string, args ...any) {
	p := Problem{Path: path, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		if t := n.GetToken(); t != nil && t.Position != nil {
			p.Line, p.Col = t.Position.Line, t.Position.Column
		}
	}
	tc.errs = append(tc.errs, p)
}

// resolve follows anchors, aliases and tags to the node that holds the value.
func (tc *typeChecker) resolve(n ast.Node) ast.Node {
	for range maxTypeDepth {
		switch v := n.(type) {
		case *ast.AnchorNode:
			n = v.Value
		case *ast.TagNode:
			n = v.Value
		case *ast.AliasNode:
			if v.Value == nil || v.Value.GetToken() == nil {
				return nil
			}
			n = tc.anchors[v.Value.GetToken().Value]
		default:
			return n
		}
	}
	return nil
}

func (tc *typeChecker) check(n ast.Node, t reflect.Type, path string) {
	tc.depth++
	defer func() { tc.depth-- }()
	if tc.depth > maxTypeDepth {
		return
	}
	at := n
	if n = tc.resolve(n); n == nil {
		if a, ok := at.(*ast.AliasNode); ok && a.Value != nil && a.Value.GetToken() != nil {
			tc.add(at, orTop(path), "*%s names no anchor (&%[1]s) above it", a.Value.GetToken().Value)
		}
		return
	}
	if at.GetToken() == nil {
		at = n
	}
	if _, ok := n.(*ast.NullNode); ok {
		return // the zero value: validation says whether it may be left out
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		tc.mapping(at, n, path, func(key string, kn, v ast.Node) {
			f, ok := fieldByKey(t, key)
			if !ok {
				hint := ""
				if k := closest(key, keysOf(t)); k != "" {
					hint = fmt.Sprintf("; did you mean %s?", k)
				}
				tc.add(kn, join(path, key), "unknown key%s (the keys here are %s)", hint, strings.Join(keysOf(t), ", "))
				return
			}
			tc.check(v, f.Type, join(path, key))
		})
	case reflect.Map:
		tc.mapping(at, n, path, func(key string, _, v ast.Node) {
			tc.check(v, t.Elem(), join(path, key))
		})
	case reflect.Slice:
		seq, ok := n.(*ast.SequenceNode)
		if !ok {
			tc.add(at, orTop(path), "must be a list, got %s", describe(n))
			return
		}
		for i, v := range seq.Values {
			tc.check(v, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
		}
	case reflect.String:
		switch n.(type) {
		case *ast.StringNode, *ast.LiteralNode:
		default:
			hint := ""
			if _, ok := n.(ast.ScalarNode); ok {
				hint = fmt.Sprintf(` (put it in quotes: "%s")`, n.GetToken().Value)
			}
			tc.add(at, orTop(path), "must be text, got %s%s", describe(n), hint)
		}
	case reflect.Int:
		switch v := n.(type) {
		case *ast.IntegerNode:
			if u, ok := v.Value.(uint64); ok && u > math.MaxInt64 {
				tc.add(at, path, "must be a whole number, got %s, which is too large", v.GetToken().Value)
			}
		case *ast.FloatNode:
			if v.Value != math.Trunc(v.Value) || math.Abs(v.Value) > 1<<53 {
				tc.add(at, path, "must be a whole number, got %s", describe(n))
			}
		default:
			tc.add(at, path, "must be a whole number, got %s", describe(n))
		}
	case reflect.Bool:
		if _, ok := n.(*ast.BoolNode); !ok {
			tc.add(at, path, "must be true or false, got %s", describe(n))
		}
	}
}

// mapping calls fn for each key of a mapping node, merge keys (<<) included.
func (tc *typeChecker) mapping(at, n ast.Node, path string, fn func(key string, kn, v ast.Node)) {
	var pairs []*ast.MappingValueNode
	switch m := n.(type) {
	case *ast.MappingNode:
		pairs = m.Values
	case *ast.MappingValueNode:
		pairs = []*ast.MappingValueNode{m}
	default:
		tc.add(at, orTop(path), "must be a mapping (key: value), got %s", describe(n))
		return
	}
	for _, mv := range pairs {
		if mv.Key != nil && mv.Key.IsMergeKey() {
			merged := tc.resolve(mv.Value)
			if seq, ok := merged.(*ast.SequenceNode); ok {
				for _, v := range seq.Values {
					tc.mapping(v, tc.resolve(v), path, fn)
				}
			} else if merged != nil {
				tc.mapping(mv.Value, merged, path, fn)
			}
			continue
		}
		key, ok := keyText(mv.Key)
		if !ok {
			tc.add(mv.Key, orTop(path), "a key must be a plain name, got %s", describe(mv.Key))
			continue
		}
		fn(key, mv.Key, mv.Value)
	}
}

func keyText(k ast.MapKeyNode) (string, bool) {
	var n ast.Node = k
	if mk, ok := k.(*ast.MappingKeyNode); ok {
		n = mk.Value
	}
	switch v := n.(type) {
	case *ast.StringNode:
		return v.Value, true
	case ast.ScalarNode:
		if t := v.GetToken(); t != nil {
			return t.Value, true
		}
	}
	return "", false
}

func fieldByKey(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		if yamlName(f) == key {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

func keysOf(t reflect.Type) []string {
	var keys []string
	for i := range t.NumField() {
		if name := yamlName(t.Field(i)); name != "" {
			keys = append(keys, name)
		}
	}
	return keys
}

func yamlName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if name == "-" || !f.IsExported() {
		return ""
	}
	return name
}

// closest is the key nearest to key (at most two letters added, removed or
// changed, case aside), or "".
func closest(key string, keys []string) string {
	if len(key) > 64 {
		return ""
	}
	key = strings.ToLower(key)
	best, bestD := "", 3
	for _, k := range keys {
		if d := editDistance(key, k); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance of a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// describe names a node's value for an error message.
func describe(n ast.Node) string {
	switch v := n.(type) {
	case *ast.MappingNode, *ast.MappingValueNode:
		return "a mapping"
	case *ast.SequenceNode:
		return "a list"
	case *ast.StringNode:
		return fmt.Sprintf("the text %q", v.Value)
	case *ast.LiteralNode:
		return "a block of text"
	case *ast.IntegerNode, *ast.FloatNode, *ast.InfinityNode, *ast.NanNode:
		return "the number " + n.GetToken().Value
	case *ast.BoolNode:
		return n.GetToken().Value
	case nil:
		return "nothing"
	}
	return strings.ToLower(n.Type().String())
}

func join(path, key string) string {
	if !plainKey(key) {
		key = fmt.Sprintf("[%q]", key)
		return path + key
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

func plainKey(k string) bool {
	if k == "" {
		return false
	}
	for _, r := range k {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// topLevel is the path of the whole document.
const topLevel = "(top level)"

func orTop(path string) string {
	if path == "" {
		return topLevel
	}
	return path
}

// pathAt is the YAML path of the node that tok belongs to, for errors that
// come with a token but no path; "" when tok is not found.
func pathAt(body ast.Node, tok *token.Token) string {
	if body == nil || tok == nil || tok.Position == nil {
		return ""
	}
	found, best := false, ""
	var walk func(n ast.Node, path string, depth int)
	walk = func(n ast.Node, path string, depth int) {
		if n == nil || found || depth > maxTypeDepth {
			return
		}
		if mv, ok := n.(*ast.MappingValueNode); ok {
			key, _ := keyText(mv.Key)
			path = join(path, key)
		}
		if t := n.GetToken(); t != nil && t.Position != nil && t.Position.Offset == tok.Position.Offset {
			found, best = true, path
			return
		}
		switch v := n.(type) {
		case *ast.AnchorNode:
			walk(v.Value, path, depth+1)
		case *ast.TagNode:
			walk(v.Value, path, depth+1)
		case *ast.MappingNode:
			for _, mv := range v.Values {
				walk(mv, path, depth+1)
			}
		case *ast.MappingValueNode:
			if v.Key != nil {
				walk(v.Key, path, depth+1)
			}
			walk(v.Value, path, depth+1)
		case *ast.SequenceNode:
			for i, e := range v.Values {
				walk(e, fmt.Sprintf("%s[%d]", path, i), depth+1)
			}
		}
	}
	walk(body, "", 0)
	return best
}
