package query

import (
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// Decode validates one JSON text and returns it as a Value. Arrays and
// objects keep a reference to data and are decoded lazily, so data must not
// be modified afterwards.
func Decode(data []byte) (Value, error) {
	if !json.Valid(data) {
		var probe json.RawMessage
		if err := json.Unmarshal(data, &probe); err != nil {
			return Value{}, fmt.Errorf("decode JSON: %w", err)
		}
		return Value{}, fmt.Errorf("decode JSON: invalid JSON text")
	}
	return Raw(data), nil
}

// Raw wraps JSON text the caller has already validated (a stored document)
// without checking it again. Malformed input never panics: the parts that
// cannot be read evaluate as Undefined. Like Decode, Raw retains data.
func Raw(data []byte) Value {
	i := skipWS(data, 0)
	v, _ := parseValueAt(data, i)
	return v
}

// skipWS returns the index of the first non-space byte at or after i.
func skipWS(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// skipString returns the index just past the string that opens at b[i], or
// -1 when it does not terminate.
func skipString(b []byte, i int) int {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '"':
			return j + 1
		case '\\':
			j++
		}
	}
	return -1
}

// skipValue returns the index just past the value that starts at b[i], or
// -1 when b is malformed there.
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch c := b[i]; {
	case c == '"':
		return skipString(b, i)
	case c == '{' || c == '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				end := skipString(b, j)
				if end < 0 {
					return -1
				}
				j = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return -1
	default:
		j := i
		for j < len(b) && isScalarByte(b[j]) {
			j++
		}
		if j == i {
			return -1
		}
		return j
	}
}

func isScalarByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '+' || c == '.' || c == 'E'
}

// parseValueAt reads the value starting at b[i]. Scalars are decoded;
// arrays and objects are returned as raw slices. It returns the index just
// past the value, or -1 (and Undefined) when b is malformed there.
func parseValueAt(b []byte, i int) (Value, int) {
	if i >= len(b) {
		return Value{}, -1
	}
	switch b[i] {
	case '"':
		s, end := parseString(b, i)
		if end < 0 {
			return Value{}, -1
		}
		return Value{kind: KindString, str: s}, end
	case '{', '[':
		end := skipValue(b, i)
		if end < 0 {
			return Value{}, -1
		}
		k := KindObject
		if b[i] == '[' {
			k = KindArray
		}
		return Value{kind: k, raw: b[i:end:end]}, end
	case 't':
		if hasWord(b, i, "true") {
			return BoolValue(true), i + 4
		}
	case 'f':
		if hasWord(b, i, "false") {
			return BoolValue(false), i + 5
		}
	case 'n':
		if hasWord(b, i, "null") {
			return Null(), i + 4
		}
	default:
		end := skipValue(b, i)
		if end < 0 {
			return Value{}, -1
		}
		f, ok := parseNumber(b[i:end])
		if !ok {
			return Value{}, end
		}
		return NumberValue(f), end
	}
	return Value{}, -1
}

func hasWord(b []byte, i int, w string) bool {
	return len(b)-i >= len(w) && string(b[i:i+len(w)]) == w
}

// parseNumber parses a JSON number; small integers take a fast path.
func parseNumber(t []byte) (float64, bool) {
	if len(t) > 0 && len(t) <= 15 {
		neg := t[0] == '-'
		digits := t
		if neg {
			digits = t[1:]
		}
		n, ok := int64(0), len(digits) > 0
		for _, c := range digits {
			if c < '0' || c > '9' {
				ok = false
				break
			}
			n = n*10 + int64(c-'0')
		}
		if ok {
			if neg {
				return -float64(n), true
			}
			return float64(n), true
		}
	}
	f, err := strconv.ParseFloat(string(t), 64)
	if err != nil {
		return 0, false
	}
	return f, true
}

// parseString decodes the JSON string that opens at b[i] and returns the
// index just past it, or -1.
func parseString(b []byte, i int) (string, int) {
	j := i + 1
	for j < len(b) && b[j] != '"' && b[j] != '\\' {
		j++
	}
	if j < len(b) && b[j] == '"' {
		return string(b[i+1 : j]), j + 1
	}
	end := skipString(b, i)
	if end < 0 {
		return "", -1
	}
	return unescape(b[i+1 : end-1]), end
}

// unescape decodes the body of a JSON string; bad escapes and lone
// surrogates become U+FFFD, as encoding/json does.
func unescape(s []byte) string {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 >= len(s) {
			out = append(out, c)
			continue
		}
		i++
		switch s[i] {
		case '"', '\\', '/':
			out = append(out, s[i])
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, n := hex4(s[i+1:])
			if n == 0 {
				out = utf8.AppendRune(out, utf8.RuneError)
				continue
			}
			i += n
			if utf16.IsSurrogate(r) {
				if i+2 < len(s) && s[i+1] == '\\' && s[i+2] == 'u' {
					if r2, n2 := hex4(s[i+3:]); n2 > 0 {
						if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
							out = utf8.AppendRune(out, dec)
							i += 2 + n2
							continue
						}
					}
				}
				r = utf8.RuneError
			}
			out = utf8.AppendRune(out, r)
		default:
			out = utf8.AppendRune(out, utf8.RuneError)
		}
	}
	return string(out)
}

func hex4(s []byte) (rune, int) {
	if len(s) < 4 {
		return 0, 0
	}
	var r rune
	for _, c := range s[:4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, 0
		}
	}
	return r, 4
}
