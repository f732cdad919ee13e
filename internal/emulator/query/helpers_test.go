package query

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// mustDecode decodes JSON test input.
func mustDecode(t testing.TB, s string) Value {
	t.Helper()
	v, err := Decode([]byte(s))
	if err != nil {
		t.Fatalf("decode %s: %v", s, err)
	}
	return v
}

// docs decodes a JSON array of documents into Values, one per element,
// each backed by its own raw text as the emulator's stored documents are.
func docs(t testing.TB, arr string) []Value {
	t.Helper()
	var raws []json.RawMessage
	if err := json.Unmarshal([]byte(arr), &raws); err != nil {
		t.Fatalf("docs %s: %v", arr, err)
	}
	out := make([]Value, len(raws))
	for i, r := range raws {
		out[i] = mustDecode(t, string(r))
	}
	return out
}

// params builds parameters from name/JSON pairs.
func params(kv ...string) []Param {
	var ps []Param
	for i := 0; i+1 < len(kv); i += 2 {
		ps = append(ps, Param{Name: kv[i], Value: json.RawMessage(kv[i+1])})
	}
	return ps
}

// run parses, binds and runs text over the documents and returns the
// results as a compact JSON array, or the error text.
func run(t testing.TB, text string, in []Value, ps ...Param) string {
	t.Helper()
	q, err := Parse(text)
	if err != nil {
		return "error: " + err.(*SyntaxError).Message
	}
	b, err := q.Bind(ps)
	if err != nil {
		return "error: " + err.(*SyntaxError).Message
	}
	out, err := b.Run(slices.Values(in))
	if err != nil {
		t.Fatalf("run %q: %v", text, err)
	}
	return resultsJSON(out)
}

func resultsJSON(out []Value) string {
	var sb strings.Builder
	sb.WriteByte('[')
	for i, v := range out {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.Write(v.AppendJSON(nil))
	}
	sb.WriteByte(']')
	return sb.String()
}

// evalOn evaluates one expression against doc (bound to c) and returns its
// JSON, or "undefined".
func evalOn(t testing.TB, exprText, doc string) string {
	t.Helper()
	got := run(t, "SELECT VALUE "+exprText+" FROM c", []Value{mustDecode(t, doc)})
	if strings.HasPrefix(got, "error: ") {
		return got
	}
	if got == "[]" {
		return "undefined"
	}
	return strings.TrimSuffix(strings.TrimPrefix(got, "["), "]")
}
