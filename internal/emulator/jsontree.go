package emulator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
)

// node is a JSON value that keeps object key order and scalars' original
// text, so a patched item is re-serialized byte-for-byte where untouched.
type node struct {
	kind byte   // '{', '[', or 's' for any scalar
	obj  []kv   // kind '{'
	arr  []node // kind '['
	raw  []byte // kind 's': the scalar's JSON text
}

type kv struct {
	rawKey []byte
	key    string
	val    node
}

// parseNode decodes valid JSON.
func parseNode(data []byte) (node, error) {
	if !json.Valid(data) {
		return node{}, fmt.Errorf("not valid JSON")
	}
	s := scanner{data: data}
	s.skipSpace()
	return s.node()
}

func (s *scanner) node() (node, error) {
	switch s.data[s.pos] {
	case '{':
		s.pos++
		n := node{kind: '{'}
		for {
			s.skipSpace()
			if s.data[s.pos] == '}' {
				s.pos++
				return n, nil
			}
			if s.data[s.pos] == ',' {
				s.pos++
				s.skipSpace()
			}
			start := s.pos
			s.skipString()
			rawKey := s.data[start:s.pos]
			key, err := decodeKey(rawKey)
			if err != nil {
				return node{}, err
			}
			s.skipSpace()
			s.pos++ // ':'
			s.skipSpace()
			v, err := s.node()
			if err != nil {
				return node{}, err
			}
			n.obj = append(n.obj, kv{rawKey: rawKey, key: key, val: v})
		}
	case '[':
		s.pos++
		n := node{kind: '[', arr: []node{}}
		for {
			s.skipSpace()
			if s.data[s.pos] == ']' {
				s.pos++
				return n, nil
			}
			if s.data[s.pos] == ',' {
				s.pos++
				s.skipSpace()
			}
			v, err := s.node()
			if err != nil {
				return node{}, err
			}
			n.arr = append(n.arr, v)
		}
	default:
		start := s.pos
		s.skipValue()
		return node{kind: 's', raw: s.data[start:s.pos]}, nil
	}
}

// appendJSON serializes n.
func (n node) appendJSON(b []byte) []byte {
	switch n.kind {
	case '{':
		b = append(b, '{')
		for i, m := range n.obj {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, m.rawKey...)
			b = append(b, ':')
			b = m.val.appendJSON(b)
		}
		return append(b, '}')
	case '[':
		b = append(b, '[')
		for i, v := range n.arr {
			if i > 0 {
				b = append(b, ',')
			}
			b = v.appendJSON(b)
		}
		return append(b, ']')
	default:
		return append(b, n.raw...)
	}
}

// field returns the index of key in an object node, or -1.
func (n *node) field(key string) int {
	for i, m := range n.obj {
		if m.key == key {
			return i
		}
	}
	return -1
}

// setField adds or replaces key.
func (n *node) setField(key string, v node) {
	if i := n.field(key); i >= 0 {
		n.obj[i].val = v
		return
	}
	n.obj = append(n.obj, kv{rawKey: jsonQuote(key), key: key, val: v})
}

// number returns a scalar node's numeric value.
func (n node) number() (float64, bool) {
	if n.kind != 's' || len(n.raw) == 0 {
		return 0, false
	}
	c := n.raw[0]
	if c != '-' && (c < '0' || c > '9') {
		return 0, false
	}
	f, err := strconv.ParseFloat(string(n.raw), 64)
	return f, err == nil
}

// isInteger reports whether a numeric scalar is written without fraction or exponent.
func (n node) isInteger() bool {
	return n.kind == 's' && !bytes.ContainsAny(n.raw, ".eE")
}

// members converts an object node to the top-level member form.
func (n node) members() []member {
	out := make([]member, 0, len(n.obj))
	for _, m := range n.obj {
		out = append(out, member{key: m.key, rawKey: m.rawKey, raw: m.val.appendJSON(nil)})
	}
	return out
}
