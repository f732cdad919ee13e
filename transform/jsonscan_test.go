package transform

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestSkipValueAgreesWithEncodingJSON checks the scanner against
// encoding/json on valid and invalid documents.
func TestSkipValueAgreesWithEncodingJSON(t *testing.T) {
	docs := []string{
		`0`, `-0`, `1.5`, `-1.5e10`, `1E+2`, `1e-2`, `01`, `1.`, `.5`, `-`, `1e`, `1e+`, `+1`, `0x10`, `NaN`, `Infinity`,
		`""`, `"a"`, `"\u00e9\n\t\"\\\/\b\f\r"`, `"\ud83d\ude00"`, `"\ud800"`, `"\u12"`, `"\x"`, `"a`, "\"\x01\"", "\"\x7f\"",
		`true`, `false`, `null`, `tru`, `nul`, `True`, `truex`,
		`{}`, `[]`, `{ }`, `[ ]`, `{"a":1}`, `{"a":[1,{"b":null}]}`, `[1,2,3]`, `[1,]`, `{"a":1,}`, `{"a"}`, `{"a":}`,
		`{a:1}`, `{"a" 1}`, `[1 2]`, `{"a":1 "b":2}`, `[`, `{`, `]`, `}`, `[[[[]]]]`, `{"a":{"b":{"c":{}}}}`,
		" \t\n\r[1] ", `[1]x`, `1 2`, ``, ` `,
		strings.Repeat("[", 10000) + strings.Repeat("]", 10000),
		strings.Repeat("[", 10001) + strings.Repeat("]", 10001),
		"\"\xff\"", "\"\xc3\xa9\"", "\"\xed\xa0\x80\"", // invalid UTF-8, é, an encoded surrogate
	}
	var stack []byte
	for _, doc := range docs {
		d := []byte(doc)
		i := skipSpace(d, 0)
		end, err := skipValue(d, i, &stack, 0)
		ok := err == nil && skipSpace(d, end) == len(d)
		want := json.Valid(d) && utf8.Valid(d)
		if ok != want {
			name := doc
			if len(name) > 40 {
				name = name[:40] + "..."
			}
			t.Errorf("scanner says valid=%v, encoding/json says %v for %q (err %v)", ok, want, name, err)
		}
	}
}

func TestAppendUnquoted(t *testing.T) {
	for _, s := range []string{
		`plain`, `\"\\\/\b\f\n\r\t`, `\u00e9\u4e2d`, `\ud83d\ude00`, `\ud800`, `\udc00x`, `\ud800\u0041`,
		`\ud83d\ud83d\ude00`, `mixed \u0041 text é`, ``,
	} {
		var want string
		if err := json.Unmarshal([]byte(`"`+s+`"`), &want); err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		if got := string(appendUnquoted(nil, []byte(s))); got != want {
			t.Errorf("appendUnquoted(%q) = %q, want %q", s, got, want)
		}
	}
}

func TestAppendQuoted(t *testing.T) {
	for _, s := range []string{"", "plain", "q\"b\\s", "\x00\x01\x1f\x7f", "\n\r\t", "é中😀", "\u2028\u2029", "<&>", "bad\xffutf8"} {
		q := appendQuoted(nil, s)
		var got string
		if err := json.Unmarshal(q, &got); err != nil {
			t.Fatalf("appendQuoted(%q) = %s is not JSON: %v", s, q, err)
		}
		want := strings.ToValidUTF8(s, "\ufffd")
		if got != want {
			t.Errorf("appendQuoted(%q) decodes to %q", s, got)
		}
		if b := appendQuoted(nil, []byte(s)); string(b) != string(q) {
			t.Errorf("[]byte and string versions differ: %s and %s", b, q)
		}
	}
}

// TestDepthLimit checks that the item's own braces count towards the
// nesting limit, as they do for encoding/json.
func TestDepthLimit(t *testing.T) {
	tr := mustTransformer(t, []string{"/id"})
	for _, n := range []int{maxDepth - 1, maxDepth} {
		item := `{"id":"1","a":` + strings.Repeat("[", n) + strings.Repeat("]", n) + `}`
		_, err := tr.Apply([]byte(item))
		if valid := json.Valid([]byte(item)); (err == nil) != valid {
			t.Errorf("depth %d: Apply error %v, json.Valid %v", n+1, err, valid)
		}
	}
}
