package transform

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// fuzzSpecs are the key specs FuzzApply picks from: natural, nested,
// hierarchical and synthetic keys with every function and a default.
var fuzzSpecs = [][]string{
	{"/a"},
	{"/a/b"},
	{"/pk={a}"},
	{"/tenantId", "/pk={a|lower}-{b.c?none}"},
	{"/m/pk={a|hash:16}", "/m/q={id|upper}"},
	{"/x/y/z={a?d}{b}", "/top={id}"},
	{"/pk={d|yyyyMMddHH}"},
	{"/id", "/a", "/b"},
	{"/pk={_ts|yyyyMM}-{a?}"},
}

func fuzzTransformers(t testing.TB) []*Transformer {
	out := make([]*Transformer, len(fuzzSpecs))
	for i, s := range fuzzSpecs {
		out[i] = mustTransformer(t, s, "/a", "/b/c")
	}
	return out
}

// FuzzApply checks, for any input: no panic; an *Error whenever it fails,
// ErrInvalidJSON exactly when the input is not valid JSON; on success a
// valid JSON item, the same result on a second run, and an item that decodes
// to the input minus the system properties plus the key properties.
func FuzzApply(f *testing.F) {
	for _, line := range sampleLines(f) {
		f.Add(uint8(3), line)
	}
	for _, s := range []string{
		`{"id":"1","a":"x"}`, `{"id":"1","a":{"b":1}}`, `{"id":"1","a":"A","b":{"c":"C"},"tenantId":7}`,
		`{"id":"1","a":"x","m":{"pk":"1"}}`, `{"id":"1","a":"é","x":{"y":{}},"b":"\ud800"}`,
		`{"id":"1","d":"2024-03-05T23:30:00-02:00","_ts":1709630146,"a":null}`, `{"id":"1","_rid":"r","_r\u0069d":1}`,
		`[1]`, `{"id":"1","a":1e999}`, `{"id":"1","a":1,"a":2}`, "{\"id\":\"1\",\"a\":\"\xff\"}",
	} {
		for i := range fuzzSpecs {
			f.Add(uint8(i), []byte(s))
		}
	}
	trs := fuzzTransformers(f)
	f.Fuzz(func(t *testing.T, sel uint8, item []byte) {
		tr := trs[int(sel)%len(trs)]
		r, err := tr.Apply(item)
		valid := json.Valid(item) && utf8.Valid(item)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v is not an *Error", err)
			}
			if errors.Is(err, ErrInvalidJSON) == valid {
				t.Fatalf("json.Valid = %v but Apply said %v", valid, err)
			}
			return
		}
		if !valid {
			t.Fatalf("Apply accepted invalid JSON %q", item)
		}
		if !json.Valid(r.Item) || !utf8.Valid(r.Item) {
			t.Fatalf("output is not valid JSON: %q", r.Item)
		}
		r2, err := tr.Apply(item)
		if err != nil || !bytes.Equal(r2.Item, r.Item) || keyJSON(r2.Key) != keyJSON(r.Key) ||
			keyJSON(r2.SourceKey) != keyJSON(r.SourceKey) || r2.ID != r.ID {
			t.Fatalf("second Apply differs: %v", err)
		}
		checkRoundTrip(t, tr, item, r)
	})
}

// checkRoundTrip decodes the input and the output with encoding/json and
// checks that output = input - system properties + key properties, and that
// natural keys are the input's values.
func checkRoundTrip(t *testing.T, tr *Transformer, item []byte, r Result) {
	in, out := decode(t, item), decode(t, r.Item)
	for k := range in {
		if IsSystemProperty(k) {
			delete(in, k)
		}
	}
	for i, k := range tr.spec.keys {
		if !k.Synthetic() {
			got, ok := valueAt(in, k.Path.segs)
			if !ok || string(r.Key[i].AppendJSON(nil)) != jsonText(t, got) {
				t.Fatalf("natural key %s = %s, but the item has %v", k.Path, r.Key[i], got)
			}
			continue
		}
		if r.Key[i].Type != TypeString {
			t.Fatalf("synthetic key %s is a %s", k.Path, r.Key[i].Type)
		}
		m := in
		for _, s := range k.Path.segs[:len(k.Path.segs)-1] {
			next, ok := m[s].(map[string]any)
			if !ok {
				next = map[string]any{}
				m[s] = next
			}
			m = next
		}
		m[k.Path.segs[len(k.Path.segs)-1]] = r.Key[i].Str
	}
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("output does not decode to input - system properties + keys:\n in  %s\n out %s", item, r.Item)
	}
}

func decode(t *testing.T, data []byte) map[string]any {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		t.Fatalf("decode %q: %v", data, err)
	}
	return m
}

func valueAt(m map[string]any, segs []string) (any, bool) {
	var v any = m
	for _, s := range segs {
		o, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = o[s]; !ok {
			return nil, false
		}
	}
	return v, true
}

// jsonText is v as key JSON: strings re-encoded the way AppendJSON does.
func jsonText(t *testing.T, v any) string {
	switch v := v.(type) {
	case string:
		return string(appendQuoted(nil, v))
	case json.Number:
		return v.String()
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// FuzzParseSpec checks that the parser never panics, that every error is a
// *SpecError pointing inside the spec, and that a spec that parses has a
// canonical text that parses to itself and gives a working Transformer.
func FuzzParseSpec(f *testing.F) {
	for _, s := range []string{
		"/customerId", "/a/b", `/"zip code"`, `/'a\'b'`, "/pk={tenantId}-{createdAt|yyyyMM}",
		"/pk={region?unknown}", "/pk={{{a}}}", "/pk={a.b|lower|hash:16}", `/pk={"a.b".c|upper?x y}`,
		"/pk={_ts|yyyyMMddHH}", "/pk={a", "/pk=}", "/pk={a|hash:0}", "/_ts", "/id={x}", "/pk=é{a}",
	} {
		f.Add(s, "/second={id}")
	}
	item := []byte(`{"id":"1","a":"x","b":{"c":2},"tenantId":"t","createdAt":"2024-03-05","_ts":1709630146}`)
	f.Fuzz(func(t *testing.T, a, b string) {
		for _, specs := range [][]string{{a}, {a, b}} {
			spec, err := ParseSpec(specs)
			if err != nil {
				var se *SpecError
				if !errors.As(err, &se) {
					t.Fatalf("error %v is not a *SpecError", err)
				}
				if se.Column < 0 || se.Column > utf8.RuneCountInString(se.Spec)+1 || se.Expected == "" {
					t.Fatalf("bad SpecError %+v", se)
				}
				_ = se.Error() + se.Pointer()
				continue
			}
			canon := spec.Strings()
			again, err := ParseSpec(canon)
			if err != nil {
				t.Fatalf("canonical %q of %q does not parse: %v", canon, specs, err)
			}
			if !reflect.DeepEqual(again.Strings(), canon) {
				t.Fatalf("canonical text is not stable: %q then %q", canon, again.Strings())
			}
			tr, err := New(spec, []string{"/a"})
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			r, err := tr.Apply(item)
			if err != nil {
				var e *Error
				if !errors.As(err, &e) {
					t.Fatalf("Apply error %v is not an *Error", err)
				}
				continue
			}
			if !json.Valid(r.Item) {
				t.Fatalf("output is not valid JSON: %s", r.Item)
			}
		}
	})
}

// sampleLines returns the lines of the sample dataset, as fuzz seeds.
func sampleLines(t testing.TB) [][]byte {
	f, err := os.Open("../testdata/transform/orders.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out [][]byte
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 4<<20)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" {
			out = append(out, []byte(line))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
