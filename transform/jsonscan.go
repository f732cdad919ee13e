package transform

import (
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// This file is a validating JSON scanner over raw bytes. It finds where
// values start and end without building them, so an item is read once and
// its fields are copied byte for byte. It accepts exactly RFC 8259 JSON in
// UTF-8, as encoding/json does, up to maxDepth levels of nesting.

// maxDepth is the deepest nesting accepted, the same as encoding/json's.
const maxDepth = 10000

// syntaxError is a JSON error at a byte offset.
type syntaxError struct {
	off int
	msg string
}

func (e *syntaxError) Error() string { return "offset " + strconv.Itoa(e.off) + ": " + e.msg }

// plainStringByte[c] is true for the bytes that need no attention inside a
// string: printable ASCII other than '"' and '\'.
var plainStringByte = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(d []byte, i int) int {
	for i < len(d) && isSpace(d[i]) {
		i++
	}
	return i
}

// scanString scans the string starting at d[i] == '"' and returns the offset
// after its closing quote and whether it contains escapes.
func scanString(d []byte, i int) (int, bool, error) {
	escaped := false
	i++
	for {
		for i < len(d) && plainStringByte[d[i]] {
			i++
		}
		if i >= len(d) {
			return 0, false, &syntaxError{i, "unterminated string"}
		}
		switch c := d[i]; {
		case c == '"':
			return i + 1, escaped, nil
		case c == '\\':
			escaped = true
			if i+1 >= len(d) {
				return 0, false, &syntaxError{i, "unterminated string"}
			}
			switch d[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(d) || !isHex(d[i+2]) || !isHex(d[i+3]) || !isHex(d[i+4]) || !isHex(d[i+5]) {
					return 0, false, &syntaxError{i, `invalid \u escape`}
				}
				i += 6
			default:
				return 0, false, &syntaxError{i, "invalid escape"}
			}
		case c < 0x20:
			return 0, false, &syntaxError{i, "control character in string"}
		default:
			r, size := utf8.DecodeRune(d[i:])
			if r == utf8.RuneError && size == 1 {
				return 0, false, &syntaxError{i, "invalid UTF-8"}
			}
			i += size
		}
	}
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// scanNumber scans the number starting at d[i].
func scanNumber(d []byte, i int) (int, error) {
	start := i
	if i < len(d) && d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case i < len(d) && '1' <= d[i] && d[i] <= '9':
		for i < len(d) && isDigit(d[i]) {
			i++
		}
	default:
		return 0, &syntaxError{start, "invalid number"}
	}
	if i < len(d) && d[i] == '.' {
		i++
		if i >= len(d) || !isDigit(d[i]) {
			return 0, &syntaxError{start, "invalid number"}
		}
		for i < len(d) && isDigit(d[i]) {
			i++
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if i >= len(d) || !isDigit(d[i]) {
			return 0, &syntaxError{start, "invalid number"}
		}
		for i < len(d) && isDigit(d[i]) {
			i++
		}
	}
	return i, nil
}

// scanLiteral checks that d[i:] starts with lit.
func scanLiteral(d []byte, i int, lit string) (int, error) {
	if len(d)-i < len(lit) || string(d[i:i+len(lit)]) != lit {
		return 0, &syntaxError{i, "invalid literal"}
	}
	return i + len(lit), nil
}

// skipValue validates the value starting at d[i] (no leading space), which
// is nested in depth containers, and returns the offset after it. stack is
// scratch space for nesting, reused across calls.
func skipValue(d []byte, i int, stack *[]byte, depth int) (int, error) {
	if i < len(d) && d[i] != '{' && d[i] != '[' {
		return skipScalar(d, i)
	}
	end, st, err := skipNested(d, i, (*stack)[:0], maxDepth-depth)
	*stack = st[:0]
	return end, err
}

// skipScalar validates the string, number or literal at d[i].
func skipScalar(d []byte, i int) (int, error) {
	switch d[i] {
	case '"':
		end, _, err := scanString(d, i)
		return end, err
	case 't':
		return scanLiteral(d, i, "true")
	case 'f':
		return scanLiteral(d, i, "false")
	case 'n':
		return scanLiteral(d, i, "null")
	}
	return scanNumber(d, i)
}

// skipNested is skipValue for any value, with st as the stack of closers,
// allowing at most limit levels of nesting.
func skipNested(d []byte, i int, st []byte, limit int) (int, []byte, error) {
	var err error
	for {
		// A value starts at i.
		if i >= len(d) {
			return 0, st, &syntaxError{i, "unexpected end of JSON"}
		}
		switch c := d[i]; c {
		case '{', '[':
			if len(st) >= limit {
				return 0, st, &syntaxError{i, "nesting too deep"}
			}
			closer := byte('}')
			if c == '[' {
				closer = ']'
			}
			i = skipSpace(d, i+1)
			if i < len(d) && d[i] == closer {
				i++
				break
			}
			st = append(st, closer)
			if c == '{' {
				if i, err = scanMemberName(d, i); err != nil {
					return 0, st, err
				}
			}
			continue
		default:
			i, err = skipScalar(d, i)
		}
		if err != nil {
			return 0, st, err
		}
		// After a value: close containers or move to the next element.
		for {
			if len(st) == 0 {
				return i, st, nil
			}
			i = skipSpace(d, i)
			if i >= len(d) {
				return 0, st, &syntaxError{i, "unexpected end of JSON"}
			}
			closer := st[len(st)-1]
			if d[i] == closer {
				st = st[:len(st)-1]
				i++
				continue
			}
			if d[i] != ',' {
				return 0, st, &syntaxError{i, "expected ',' or '" + string(closer) + "'"}
			}
			i = skipSpace(d, i+1)
			if closer == '}' {
				if i, err = scanMemberName(d, i); err != nil {
					return 0, st, err
				}
			}
			break
		}
	}
}

// scanMemberName scans `"name" :` and the space after it, returning the
// offset of the member's value.
func scanMemberName(d []byte, i int) (int, error) {
	if i >= len(d) || d[i] != '"' {
		return 0, &syntaxError{i, "expected a string for an object key"}
	}
	i, _, err := scanString(d, i)
	if err != nil {
		return 0, err
	}
	i = skipSpace(d, i)
	if i >= len(d) || d[i] != ':' {
		return 0, &syntaxError{i, "expected ':' after an object key"}
	}
	return skipSpace(d, i+1), nil
}

// appendUnquoted appends the decoded content of a valid JSON string whose
// bytes between the quotes are raw. Unpaired surrogates become U+FFFD, as in
// encoding/json.
func appendUnquoted(dst, raw []byte) []byte {
	for i := 0; i < len(raw); {
		c := raw[i]
		if c != '\\' {
			j := i + 1
			for j < len(raw) && raw[j] != '\\' {
				j++
			}
			dst = append(dst, raw[i:j]...)
			i = j
			continue
		}
		switch raw[i+1] {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r := hex4(raw[i+2:])
			i += 6
			if utf16.IsSurrogate(r) {
				if i+6 <= len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
					if r2 := hex4(raw[i+2:]); utf16.DecodeRune(r, r2) != utf8.RuneError {
						dst = utf8.AppendRune(dst, utf16.DecodeRune(r, r2))
						i += 6
						continue
					}
				}
				r = utf8.RuneError
			}
			dst = utf8.AppendRune(dst, r)
			continue
		default: // '"', '\\', '/'
			dst = append(dst, raw[i+1])
		}
		i += 2
	}
	return dst
}

func hex4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		switch {
		case c <= '9':
			c -= '0'
		case c <= 'F':
			c -= 'A' - 10
		default:
			c -= 'a' - 10
		}
		r = r<<4 | rune(c)
	}
	return r
}

const hexDigits = "0123456789abcdef"

// appendQuoted appends s as a JSON string. Invalid UTF-8 (possible only in
// text from a spec; decoded item strings are valid) is written as U+FFFD, so
// the output is always valid JSON.
func appendQuoted[T ~string | ~[]byte](dst []byte, s T) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if plainStringByte[c] {
				i++
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
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(string(s[i:min(i+utf8.UTFMax, len(s))]))
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, "\ufffd"...)
			i++
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
