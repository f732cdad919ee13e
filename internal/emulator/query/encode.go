package query

import (
	"errors"
	"math"
	"strconv"
	"unicode/utf8"
)

// errMarshalUndefined is returned by MarshalJSON for Undefined, which has
// no JSON form; query results never contain it.
var errMarshalUndefined = errors.New("query: cannot marshal undefined value")

// MarshalJSON implements json.Marshaler with AppendJSON.
func (v Value) MarshalJSON() ([]byte, error) {
	if v.kind == KindUndefined {
		return nil, errMarshalUndefined
	}
	return v.AppendJSON(nil), nil
}

// AppendJSON appends v as compact JSON, the way the service writes query
// results: object members in document order, no insignificant whitespace,
// numbers in their shortest round-trip form (4, not 4.0; 1e+21 beyond the
// fixed-point range, as JavaScript prints them), strings with only the
// escapes JSON requires. Undefined appends nothing; it only occurs nested
// in values built by hand, and arrays and objects skip it.
func (v Value) AppendJSON(dst []byte) []byte {
	switch v.kind {
	case KindNull:
		return append(dst, "null"...)
	case KindBool:
		if v.num != 0 {
			return append(dst, "true"...)
		}
		return append(dst, "false"...)
	case KindNumber:
		return appendNumber(dst, v.num)
	case KindString:
		return appendString(dst, v.str)
	case KindArray, KindObject:
		if v.list == nil {
			out, ok := appendRaw(dst, v.raw, 0)
			if ok {
				return out
			}
			// Unreadable raw text: fall back to what the decoder salvages.
			return appendList(dst[:len(dst)], v.kind, decodeComposite(v.raw, v.kind))
		}
		return appendList(dst, v.kind, v.list)
	}
	return dst
}

func appendList(dst []byte, k Kind, l *list) []byte {
	if k == KindArray {
		dst = append(dst, '[')
		first := true
		for _, e := range l.items {
			if e.kind == KindUndefined {
				continue
			}
			if !first {
				dst = append(dst, ',')
			}
			first = false
			dst = e.AppendJSON(dst)
		}
		return append(dst, ']')
	}
	dst = append(dst, '{')
	first := true
	for i, e := range l.items {
		if e.kind == KindUndefined {
			continue
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = appendString(dst, l.keys[i])
		dst = append(dst, ':')
		dst = e.AppendJSON(dst)
	}
	return append(dst, '}')
}

// appendNumber formats f like JavaScript's Number.prototype.toString (and
// encoding/json): fixed notation for 1e-6 <= |f| < 1e21, exponent otherwise.
func appendNumber(dst []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(dst, "null"...)
	}
	if f == math.Trunc(f) && math.Abs(f) < 1e15 {
		return strconv.AppendInt(dst, int64(f), 10)
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		// 1e-07 -> 1e-7, as JavaScript prints it.
		n := len(dst)
		if n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst
}

const hexDigits = "0123456789abcdef"

// appendString writes s as a JSON string, escaping only '"', '\\' and
// control characters; invalid UTF-8 becomes U+FFFD.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				dst = append(dst, s[start:i]...)
				dst = append(dst, "\ufffd"...)
				i++
				start = i
				continue
			}
			i += size
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		case '\b':
			dst = append(dst, '\\', 'b')
		case '\f':
			dst = append(dst, '\\', 'f')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		i++
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// appendRaw re-encodes the raw JSON value at b[i] in the normalized form of
// AppendJSON without building a tree: whitespace dropped, strings and
// numbers rewritten only when their text differs from the normal form.
// It reports false when b is malformed.
func appendRaw(dst []byte, b []byte, i int) ([]byte, bool) {
	out, end := appendRawAt(dst, b, skipWS(b, i))
	return out, end >= 0
}

func appendRawAt(dst []byte, b []byte, i int) ([]byte, int) {
	if i >= len(b) {
		return dst, -1
	}
	switch c := b[i]; c {
	case '{', '[':
		closing := byte('}')
		if c == '[' {
			closing = ']'
		}
		dst = append(dst, c)
		i = skipWS(b, i+1)
		if i < len(b) && b[i] == closing {
			return append(dst, closing), i + 1
		}
		for {
			if c == '{' {
				if i >= len(b) || b[i] != '"' {
					return dst, -1
				}
				dst, i = appendRawString(dst, b, i)
				if i < 0 {
					return dst, -1
				}
				i = skipWS(b, i)
				if i >= len(b) || b[i] != ':' {
					return dst, -1
				}
				dst = append(dst, ':')
				i = skipWS(b, i+1)
			}
			dst, i = appendRawAt(dst, b, i)
			if i < 0 {
				return dst, -1
			}
			i = skipWS(b, i)
			if i >= len(b) {
				return dst, -1
			}
			if b[i] == closing {
				return append(dst, closing), i + 1
			}
			if b[i] != ',' {
				return dst, -1
			}
			dst = append(dst, ',')
			i = skipWS(b, i+1)
		}
	case '"':
		return appendRawString(dst, b, i)
	default:
		v, end := parseValueAt(b, i)
		if end < 0 || v.kind == KindUndefined {
			return dst, -1
		}
		if v.kind == KindNumber && plainInteger(b[i:end]) {
			return append(dst, b[i:end]...), end
		}
		return v.AppendJSON(dst), end
	}
}

// plainInteger reports whether t is an integer literal already in normal
// form (no leading zeros, no "-0", short enough to be exact).
func plainInteger(t []byte) bool {
	if len(t) == 0 || len(t) > 15 {
		return false
	}
	d := t
	if d[0] == '-' {
		d = d[1:]
		if len(d) == 0 || (len(d) == 1 && d[0] == '0') {
			return false
		}
	}
	if len(d) == 0 || (d[0] == '0' && len(d) > 1) {
		return false
	}
	for _, c := range d {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// appendRawString copies the string at b[i] when it needs no rewriting
// (no escapes, no control characters, valid UTF-8) and re-encodes it
// otherwise.
func appendRawString(dst []byte, b []byte, i int) ([]byte, int) {
	for j := i + 1; j < len(b); j++ {
		c := b[j]
		if c == '"' {
			if utf8.Valid(b[i+1 : j]) {
				return append(dst, b[i:j+1]...), j + 1
			}
			break
		}
		if c == '\\' || c < 0x20 {
			break
		}
	}
	s, end := parseString(b, i)
	if end < 0 {
		return dst, -1
	}
	return appendString(dst, s), end
}
