package query

import (
	"encoding/json"
	"math"
	"testing"
)

func TestDecodeAppendJSONNormalizes(t *testing.T) {
	tests := []struct{ in, want string }{
		{`{"b":1,"a":2}`, `{"b":1,"a":2}`}, // stored member order kept
		{` { "a" : [ 1 , 2 ] , "b" : { } } `, `{"a":[1,2],"b":{}}`},
		{`4.0`, `4`},
		{`-0`, `0`},
		{`1.5`, `1.5`},
		{`1e2`, `100`},
		{`0.1`, `0.1`},
		{`1e21`, `1e+21`},
		{`1.5e-7`, `1.5e-7`},
		{`123456789012345678`, `123456789012345680`},
		{`"a\/b\u00e9\n\"\\"`, `"a/bé\n\"\\"`},
		{`"\ud83d\ude00"`, `"😀"`},
		{`"\ud800"`, "\"\ufffd\""},
		{`"<&>"`, `"<&>"`}, // no HTML escaping
		{`"\u0001"`, `"\u0001"`},
		{`[true,false,null,"x",{"k":[{}]}]`, `[true,false,null,"x",{"k":[{}]}]`},
		{`{"n":007e0}`, `{"n":7}`}, // not valid JSON but tolerated by Raw below
	}
	for _, tt := range tests {
		v := Raw([]byte(tt.in))
		if got := string(v.AppendJSON(nil)); got != tt.want {
			t.Errorf("Raw(%s).AppendJSON = %s, want %s", tt.in, got, tt.want)
		}
		// The decoded form writes the same text.
		if v.kind == KindArray || v.kind == KindObject {
			d := Value{kind: v.kind, list: v.decoded()}
			if got := string(d.AppendJSON(nil)); got != tt.want {
				t.Errorf("decoded(%s).AppendJSON = %s, want %s", tt.in, got, tt.want)
			}
		}
	}
}

func TestDecodeRejectsInvalidJSON(t *testing.T) {
	for _, in := range []string{``, `{`, `{"a":}`, `[1,]`, `tru`, `{"a":1}x`, `'a'`} {
		if _, err := Decode([]byte(in)); err == nil {
			t.Errorf("Decode(%q) succeeded", in)
		}
	}
}

func TestRawNeverPanicsOnGarbage(t *testing.T) {
	for _, in := range []string{`{"a":`, `{"a" 1}`, `[1 2]`, `{"a":"x`, `{"\`, `[{]`, `{"a":[}`, `]`, `{,}`} {
		v := Raw([]byte(in))
		_ = v.Get("a")
		_ = v.Index(1)
		_ = v.Len()
		_ = v.Members()
		_ = v.AppendJSON(nil)
		_ = v.Interface()
	}
}

func TestValueAccessors(t *testing.T) {
	v := mustDecode(t, `{"a":{"b":[10,{"c":"x"}]},"s":"str","e\"k":1,"a":"dup"}`)
	if got := v.Get("a").Get("b").Index(1).Get("c"); got.String() != `"x"` {
		t.Errorf("nested get = %s", got)
	}
	if got := v.Get("e\"k"); got.String() != "1" {
		t.Errorf("escaped key = %s", got)
	}
	if got := v.Get("a").Kind(); got != KindObject {
		t.Errorf("duplicate key: first occurrence should win, got %v", got)
	}
	if got := v.Get("missing"); got.IsDefined() {
		t.Errorf("missing = %s", got)
	}
	if got := v.Get("s").Get("x"); got.IsDefined() {
		t.Errorf("property of string = %s", got)
	}
	if n := v.Len(); n != 4 {
		t.Errorf("Len = %d", n)
	}
	if got := v.Get("a").Get("b").Index(5); got.IsDefined() {
		t.Errorf("out of range = %s", got)
	}
	m := v.Members()
	if len(m) != 4 || m[0].Key != "a" || m[2].Key != "e\"k" {
		t.Errorf("Members = %+v", m)
	}
	if s, ok := v.Get("s").AsString(); !ok || s != "str" {
		t.Errorf("AsString = %q %v", s, ok)
	}
	got, _ := json.Marshal(v.Get("a").Interface())
	if string(got) != `{"b":[10,{"c":"x"}]}` {
		t.Errorf("Interface = %s", got)
	}
	if _, err := Undefined().MarshalJSON(); err == nil {
		t.Error("marshal undefined succeeded")
	}
}

func TestConstructors(t *testing.T) {
	o := ObjectValue(Member{"z", NumberValue(1)}, Member{"u", Undefined()}, Member{"a", ArrayValue(Undefined(), StringValue("s"), Null(), BoolValue(true))})
	if got := o.String(); got != `{"z":1,"a":["s",null,true]}` {
		t.Errorf("got %s", got)
	}
	if NumberValue(math.Inf(1)).IsDefined() || NumberValue(math.NaN()).IsDefined() {
		t.Error("non-finite numbers must be undefined")
	}
}

func TestCompareTypeOrder(t *testing.T) {
	// Ascending order across and within types.
	order := []string{`null`, `false`, `true`, `-1`, `0`, `1.5`, `2`, `""`, `"A"`, `"a"`, `"b"`, `[]`, `[1]`, `[1,2]`, `[2]`, `{}`, `{"a":1}`}
	vals := []Value{Undefined()}
	for _, s := range order {
		vals = append(vals, mustDecode(t, s))
	}
	for i := range vals {
		for j := range vals {
			want := cmpInt(i, j)
			if got := Compare(vals[i], vals[j]); got != want {
				t.Errorf("Compare(%s, %s) = %d, want %d", vals[i], vals[j], got, want)
			}
		}
	}
}

func TestCompareStringsUTF16Order(t *testing.T) {
	// U+FF21 (one UTF-16 unit, 0xFF21) sorts after U+1F600 (surrogates
	// 0xD83D...) in UTF-16 order, although its code point is smaller.
	if c := Compare(StringValue("\U0001F600"), StringValue("\uFF21")); c != -1 {
		t.Errorf("Compare = %d, want -1", c)
	}
	if c := Compare(StringValue("ab"), StringValue("abc")); c != -1 {
		t.Errorf("prefix Compare = %d", c)
	}
	if c := Compare(StringValue("é"), StringValue("z")); c != 1 {
		t.Errorf("Compare(é, z) = %d, want 1 (ordinal)", c)
	}
}

func TestEqual(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{`1`, `1.0`, true},
		{`"1"`, `1`, false},
		{`null`, `null`, true},
		{`[1,{"a":2}]`, `[1,{"a":2.0}]`, true},
		{`[1,2]`, `[2,1]`, false},
		{`{"a":1,"b":2}`, `{"b":2,"a":1}`, true},
		{`{"a":1}`, `{"a":1,"b":2}`, false},
		{`{"a":null}`, `{}`, false},
	}
	for _, tt := range tests {
		a, b := mustDecode(t, tt.a), mustDecode(t, tt.b)
		if got := Equal(a, b); got != tt.want {
			t.Errorf("Equal(%s, %s) = %v", tt.a, tt.b, got)
		}
		if got := canonicalKey(a) == canonicalKey(b); got != tt.want {
			t.Errorf("canonicalKey equality(%s, %s) = %v", tt.a, tt.b, got)
		}
	}
	if Equal(Undefined(), Undefined()) {
		t.Error("undefined equals undefined")
	}
}

func TestRawJSON(t *testing.T) {
	doc := mustDecode(t, `{"a":{"b":1},"c":[1]}`)
	if raw, ok := doc.Get("a").RawJSON(); !ok || string(raw) != `{"b":1}` {
		t.Errorf("RawJSON = %s %v", raw, ok)
	}
	if _, ok := ObjectValue().RawJSON(); ok {
		t.Error("RawJSON of a built object")
	}
	if _, ok := StringValue("x").RawJSON(); ok {
		t.Error("RawJSON of a string")
	}
}

func TestDecodeScalars(t *testing.T) {
	for in, want := range map[string]string{`"x"`: `"x"`, ` 12 `: `12`, `true`: `true`, `null`: `null`, `-1.25e2`: `-125`} {
		if got := mustDecode(t, in).String(); got != want {
			t.Errorf("Decode(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestLexerLiterals(t *testing.T) {
	tests := []struct{ expr, want string }{
		{`"\ud83d\ude00"`, `"😀"`},
		{`'\u00e9\/'`, `"é/"`},
		{`"a'b"`, `"a'b"`},
		{`'a"b'`, `"a\"b"`},
		{`.5`, `0.5`},
		{`5.`, `5`},
		{`1E2`, `100`},
		{`0.000001`, `0.000001`},
		{`0.0000001`, `1e-7`},
	}
	for _, tt := range tests {
		if got := evalOn(t, tt.expr, `{}`); got != tt.want {
			t.Errorf("%s = %s, want %s", tt.expr, got, tt.want)
		}
	}
	for _, bad := range []string{`'\x'`, `'\u12'`, "'a\nb'", `@`, `$`} {
		if _, err := Parse("SELECT VALUE " + bad); err == nil {
			t.Errorf("Parse accepted %s", bad)
		}
	}
}
