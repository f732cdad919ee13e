package query

import (
	"sort"
	"strings"
	"unicode/utf8"
)

// Compare orders any two values the way ORDER BY and MIN/MAX do and returns
// -1, 0 or +1. Values of different kinds order by kind: undefined, null,
// false, true, numbers, strings, arrays, objects. Numbers compare
// numerically (1 = 1.0); strings compare ordinally by UTF-16 code unit, as
// the service's ordinal comparison does. The service orders arrays and
// objects among themselves by an internal hash; here arrays compare element
// by element and objects by their members sorted by name, which is
// deterministic but not the service's order.
func Compare(a, b Value) int {
	if a.kind != b.kind {
		if a.kind < b.kind {
			return -1
		}
		return 1
	}
	switch a.kind {
	case KindBool, KindNumber:
		switch {
		case a.num < b.num:
			return -1
		case a.num > b.num:
			return 1
		}
		return 0
	case KindString:
		return compareUTF16(a.str, b.str)
	case KindArray:
		ae, be := a.decoded().items, b.decoded().items
		for i := 0; i < len(ae) && i < len(be); i++ {
			if c := Compare(ae[i], be[i]); c != 0 {
				return c
			}
		}
		return cmpInt(len(ae), len(be))
	case KindObject:
		am, bm := sortedMembers(a), sortedMembers(b)
		for i := 0; i < len(am) && i < len(bm); i++ {
			if c := compareUTF16(am[i].Key, bm[i].Key); c != 0 {
				return c
			}
			if c := Compare(am[i].Value, bm[i].Value); c != 0 {
				return c
			}
		}
		return cmpInt(len(am), len(bm))
	}
	return 0
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func sortedMembers(v Value) []Member {
	m := v.Members()
	sort.SliceStable(m, func(i, j int) bool { return m[i].Key < m[j].Key })
	return m
}

// compareUTF16 compares strings by UTF-16 code units. UTF-8 byte order
// equals code point order, which differs from UTF-16 order only where a
// supplementary character (surrogate pair) meets U+E000..U+FFFF.
func compareUTF16(a, b string) int {
	if a == b {
		return 0
	}
	n := min(len(a), len(b))
	i := 0
	for i < n && a[i] == b[i] {
		i++
	}
	if i == n {
		return cmpInt(len(a), len(b))
	}
	// Back up to the start of the differing rune.
	for i > 0 && !utf8.RuneStart(a[i]) {
		i--
	}
	ra, _ := utf8.DecodeRuneInString(a[i:])
	rb, _ := utf8.DecodeRuneInString(b[i:])
	return cmpInt(int(utf16Key(ra)), int(utf16Key(rb)))
}

// utf16Key maps a rune to a key whose order is the order of its first
// UTF-16 code unit (surrogates 0xD800.. sort before 0xE000..0xFFFF).
func utf16Key(r rune) rune {
	if r >= 0x10000 {
		return 0xD800 + (r-0x10000)>>10
	}
	return r
}

// Equal reports whether a and b are equal the way the = operator finds them:
// same kind and same value, numbers numerically, arrays element-wise,
// objects member-wise regardless of member order. Undefined equals nothing.
func Equal(a, b Value) bool {
	if a.kind != b.kind || a.kind == KindUndefined {
		return false
	}
	switch a.kind {
	case KindNull:
		return true
	case KindBool, KindNumber:
		return a.num == b.num
	case KindString:
		return a.str == b.str
	case KindArray:
		ae, be := a.decoded().items, b.decoded().items
		if len(ae) != len(be) {
			return false
		}
		for i := range ae {
			if !Equal(ae[i], be[i]) {
				return false
			}
		}
		return true
	case KindObject:
		al, bl := a.decoded(), b.decoded()
		if len(al.items) != len(bl.items) {
			return false
		}
		for i, k := range al.keys {
			if !Equal(al.items[i], (Value{kind: KindObject, list: bl}).Get(k)) {
				return false
			}
		}
		return true
	}
	return false
}

// canonicalKey returns a string that is equal for two values exactly when
// Equal holds (and for two undefined values): compact JSON with object
// members sorted by name. DISTINCT and GROUP BY key on it.
func canonicalKey(v Value) string {
	var b strings.Builder
	writeCanonical(&b, v)
	return b.String()
}

func writeCanonical(b *strings.Builder, v Value) {
	switch v.kind {
	case KindUndefined:
		b.WriteString("~")
	case KindArray:
		b.WriteByte('[')
		for i, e := range v.decoded().items {
			if i > 0 {
				b.WriteByte(',')
			}
			writeCanonical(b, e)
		}
		b.WriteByte(']')
	case KindObject:
		b.WriteByte('{')
		for i, m := range sortedMembers(v) {
			if i > 0 {
				b.WriteByte(',')
			}
			b.Write(appendString(nil, m.Key))
			b.WriteByte(':')
			writeCanonical(b, m.Value)
		}
		b.WriteByte('}')
	default:
		b.Write(v.AppendJSON(nil))
	}
}
