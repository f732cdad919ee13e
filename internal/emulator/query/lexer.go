package query

import (
	"strings"
	"unicode/utf8"
)

type tokKind uint8

const (
	tEOF tokKind = iota
	tIdent
	tKeyword
	tParam
	tNumber
	tString
	tPunct
	tInvalid
)

// token is one lexeme; start and end are byte offsets into the query text.
type token struct {
	kind  tokKind
	text  string  // source text (keywords upper-cased)
	str   string  // decoded value of a string literal
	num   float64 // value of a number literal
	start int
	end   int
}

// keywords are reserved words: they cannot name a property after a dot or
// an alias (use c["value"]). The set is the one of the grammar the SDKs
// share with the service (azure-cosmos-dotnet-v3 sql.g4). ALL, FIRST and
// LAST are keywords there too but remain usable as identifiers, so they are
// left out. true, false, null, undefined and udf are case-sensitive there
// and are handled as identifiers spelled in lower case.
var keywords = map[string]bool{
	"AND": true, "ARRAY": true, "AS": true, "ASC": true, "BETWEEN": true,
	"BY": true, "DESC": true, "DISTINCT": true, "ESCAPE": true, "EXISTS": true,
	"FROM": true, "GROUP": true, "IN": true, "JOIN": true, "LEFT": true,
	"LIKE": true, "LIMIT": true, "NOT": true, "OFFSET": true, "OR": true,
	"ORDER": true, "RANK": true, "RIGHT": true, "SELECT": true, "TOP": true,
	"VALUE": true, "WHERE": true,
}

// punctuation, longest first so that the lexer munches maximally.
var puncts = []string{
	">>>", "??", "||", "<=", ">=", "!=", "<>", "<<", ">>",
	"*", ",", ".", "[", "]", "(", ")", "{", "}", ":", "?", "=", "<", ">",
	"+", "-", "/", "%", "&", "|", "^", "~",
}

type lexer struct {
	src string
	pos int
}

func isIdentStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_'
}

func isIdentPart(c byte) bool { return isIdentStart(c) || c >= '0' && c <= '9' }

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// next returns the next token. Lexical errors come back as tInvalid tokens
// (text says what is wrong) so that the parser reports them with positions.
func (l *lexer) next() token {
	l.skipSpace()
	s := l.src
	start := l.pos
	if start >= len(s) {
		return token{kind: tEOF, start: start, end: start}
	}
	c := s[start]
	switch {
	case isIdentStart(c):
		end := start + 1
		for end < len(s) && isIdentPart(s[end]) {
			end++
		}
		l.pos = end
		word := s[start:end]
		if up := strings.ToUpper(word); keywords[up] {
			return token{kind: tKeyword, text: up, start: start, end: end}
		}
		return token{kind: tIdent, text: word, start: start, end: end}
	case c == '@':
		end := start + 1
		for end < len(s) && isIdentPart(s[end]) {
			end++
		}
		l.pos = end
		if end == start+1 {
			return token{kind: tInvalid, text: "@", start: start, end: end}
		}
		return token{kind: tParam, text: s[start:end], start: start, end: end}
	case isDigit(c) || c == '.' && start+1 < len(s) && isDigit(s[start+1]):
		return l.number()
	case c == '"' || c == '\'':
		return l.stringLit(c)
	}
	for _, p := range puncts {
		if strings.HasPrefix(s[start:], p) {
			l.pos = start + len(p)
			return token{kind: tPunct, text: p, start: start, end: l.pos}
		}
	}
	l.pos = start + 1
	return token{kind: tInvalid, text: s[start : start+1], start: start, end: start + 1}
}

// skipSpace skips whitespace and "--" line comments.
func (l *lexer) skipSpace() {
	s := l.src
	for l.pos < len(s) {
		switch c := s[l.pos]; {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			l.pos++
		case c == '-' && l.pos+1 < len(s) && s[l.pos+1] == '-':
			for l.pos < len(s) && s[l.pos] != '\n' {
				l.pos++
			}
		default:
			return
		}
	}
}

// number lexes DIGIT+ ('.' DIGIT*)? (E [-+]? DIGIT+)? | '.' DIGIT+ (E ...)?
func (l *lexer) number() token {
	s := l.src
	start := l.pos
	i := start
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	if i < len(s) && s[i] == '.' {
		i++
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		j := i + 1
		if j < len(s) && (s[j] == '+' || s[j] == '-') {
			j++
		}
		if j < len(s) && isDigit(s[j]) {
			for j < len(s) && isDigit(s[j]) {
				j++
			}
			i = j
		}
	}
	l.pos = i
	text := s[start:i]
	f, ok := parseNumber([]byte(text))
	if !ok {
		return token{kind: tInvalid, text: text, start: start, end: i}
	}
	return token{kind: tNumber, text: text, num: f, start: start, end: i}
}

// stringLit lexes a '...' or "..." literal with JSON escapes (\' is
// accepted too). Control characters must be escaped, as in JSON.
func (l *lexer) stringLit(quote byte) token {
	s := l.src
	start := l.pos
	var b strings.Builder
	i := start + 1
	for i < len(s) {
		c := s[i]
		switch {
		case c == quote:
			l.pos = i + 1
			return token{kind: tString, text: s[start:l.pos], str: b.String(), start: start, end: l.pos}
		case c < 0x20:
			l.pos = i
			return token{kind: tInvalid, text: s[start:i], start: start, end: i}
		case c == '\\':
			if i+1 >= len(s) {
				l.pos = len(s)
				return token{kind: tEOF, start: start, end: len(s)}
			}
			switch e := s[i+1]; e {
			case '"', '\\', '/', '\'':
				b.WriteByte(e)
				i += 2
			case 'b', 'f', 'n', 'r', 't':
				b.WriteByte("\b\f\n\r\t"[strings.IndexByte("bfnrt", e)])
				i += 2
			case 'u':
				j := i + 2
				for j < len(s) && j < i+6 && strings.IndexByte("0123456789abcdefABCDEF", s[j]) >= 0 {
					j++
				}
				if j != i+6 {
					l.pos = j
					return token{kind: tInvalid, text: s[i:j], start: i, end: j}
				}
				// Decode the escape (and a following low surrogate) with the
				// JSON decoder so that pairs combine.
				k := j
				if k+6 <= len(s) && s[k] == '\\' && s[k+1] == 'u' {
					k += 6
				}
				seq := s[i:k]
				dec := unescape([]byte(seq))
				if k > j && !strings.ContainsRune(dec, 0xFFFD) && utf8.RuneCountInString(dec) == 1 {
					b.WriteString(dec)
					i = k
				} else {
					b.WriteString(unescape([]byte(s[i:j])))
					i = j
				}
			default:
				l.pos = i + 2
				return token{kind: tInvalid, text: s[i : i+2], start: i, end: i + 2}
			}
		default:
			b.WriteByte(c)
			i++
		}
	}
	l.pos = len(s)
	return token{kind: tEOF, start: start, end: len(s)}
}
