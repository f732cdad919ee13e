package query

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf16"
)

// Error codes the service puts in the "code" field of a query error, where
// the evidence for them is good (errors quoted in SDK issues).
const (
	CodeSyntax        = "SC1001" // Syntax error, incorrect syntax near '...'.
	CodeEOF           = "SC1002" // Syntax error, unexpected end-of-file.
	CodeUnresolved    = "SC2001" // Identifier '...' could not be resolved.
	CodeUnknownFunc   = "SC2005" // '...' is not a recognized built-in function name.
	CodeOrderByNoPath = "2206"   // Unsupported ORDER BY clause. ...
)

// SyntaxError is a query the service would reject with 400 Bad Request:
// a syntax error or a semantic one (an unknown identifier, function or
// parameter, a wrong argument count, an unsupported clause combination).
// Parse returns it for everything it finds in the text; Bind returns it for
// a parameter that is referenced but not supplied or has an unusable value.
//
// Start and End locate the offending text in UTF-16 code units, as the
// service counts them (equal to byte offsets for ASCII text); both are -1
// when the service reports no location. Code is the service's error code,
// empty where it is not known. The emulator renders it as the service does:
//
//	{"errors":[{"severity":"Error","location":{"start":S,"end":E},"code":"SC1001","message":"..."}]}
type SyntaxError struct {
	Start, End int
	Code       string
	Message    string
}

func (e *SyntaxError) Error() string {
	if e.Start < 0 {
		return e.Message
	}
	return fmt.Sprintf("%s (at %d..%d)", e.Message, e.Start, e.End)
}

// ServiceJSON returns the error document the service puts in the message
// of its 400 response, e.g.
//
//	{"errors":[{"severity":"Error","location":{"start":22,"end":27},"code":"SC1001","message":"Syntax error, incorrect syntax near 'value'."}]}
//
// The location is omitted when unknown, the code when Code is empty; a
// numeric code is written as a number, as the service writes 2206.
func (e *SyntaxError) ServiceJSON() string {
	b := []byte(`{"errors":[{"severity":"Error",`)
	if e.Start >= 0 {
		b = fmt.Appendf(b, `"location":{"start":%d,"end":%d},`, e.Start, e.End)
	}
	if e.Code != "" {
		b = append(b, `"code":`...)
		if strings.Trim(e.Code, "0123456789") == "" {
			b = append(b, e.Code...) // the service writes numeric codes (2206) as numbers
		} else {
			b = appendString(b, e.Code)
		}
		b = append(b, ',')
	}
	b = append(b, `"message":`...)
	b = appendString(b, e.Message)
	return string(append(b, "}]}"...))
}

// ErrJoin is returned by Match for queries with a JOIN or a FROM x IN path
// clause, which can produce several results per document; use MatchAppend.
var ErrJoin = errors.New("query: a JOIN or FROM ... IN query can produce several results per document; use MatchAppend")

// ErrNotStreamable is returned by Match and MatchAppend for queries that
// need every document before they can emit a result (ORDER BY, aggregates,
// GROUP BY, DISTINCT) or need none (no FROM clause); use Run.
var ErrNotStreamable = errors.New("query: ORDER BY, aggregate, GROUP BY, DISTINCT and FROM-less queries need Run")

// errAt builds a SyntaxError for src[start:end] (byte offsets).
func errAt(src string, start, end int, code, format string, args ...any) *SyntaxError {
	return &SyntaxError{
		Start:   utf16Offset(src, start),
		End:     utf16Offset(src, end),
		Code:    code,
		Message: fmt.Sprintf(format, args...),
	}
}

// errNoLoc builds a SyntaxError without a location.
func errNoLoc(code, format string, args ...any) *SyntaxError {
	return &SyntaxError{Start: -1, End: -1, Code: code, Message: fmt.Sprintf(format, args...)}
}

// utf16Offset converts a byte offset in s to UTF-16 code units.
func utf16Offset(s string, byteOff int) int {
	if byteOff > len(s) {
		byteOff = len(s)
	}
	n := 0
	for _, r := range s[:byteOff] {
		n += utf16.RuneLen(r)
	}
	return n
}
