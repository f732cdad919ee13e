package transform

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseSpecForms(t *testing.T) {
	tests := []struct {
		name      string
		specs     []string
		canonical []string // Spec.Strings
		paths     []string // TargetPaths
		kind      string   // KeyKind
	}{
		{"natural", []string{"/customerId"}, []string{"/customerId"}, []string{"/customerId"}, "Hash"},
		{"nested natural", []string{"/address/city"}, []string{"/address/city"}, []string{"/address/city"}, "Hash"},
		{"id as natural key", []string{"/id"}, []string{"/id"}, []string{"/id"}, "Hash"},
		{"underscore user field", []string{"/_tenant"}, []string{"/_tenant"}, []string{"/_tenant"}, "Hash"},
		{"double-quoted name", []string{`/"zip code"`}, []string{`/"zip code"`}, []string{`/"zip code"`}, "Hash"},
		{"single-quoted name", []string{`/'zip code'/x`}, []string{`/"zip code"/x`}, []string{`/"zip code"/x`}, "Hash"},
		{"quoted name with escapes", []string{`/"a\"b\\c"`}, []string{`/"a\"b\\c"`}, []string{`/"a\"b\\c"`}, "Hash"},
		{"quoted name that needs no quotes", []string{`/"plain"`}, []string{`/plain`}, []string{`/plain`}, "Hash"},
		{"tilde is literal", []string{"/a~1b"}, []string{"/a~1b"}, []string{"/a~1b"}, "Hash"},
		{"synthetic", []string{"/pk={tenantId}-{createdAt|yyyyMM}"}, []string{"/pk={tenantId}-{createdAt|yyyyMM}"}, []string{"/pk"}, "Hash"},
		{"synthetic nested target", []string{"/meta/pk={tenantId}"}, []string{"/meta/pk={tenantId}"}, []string{"/meta/pk"}, "Hash"},
		{"dotted field", []string{"/pk={address.city}"}, []string{"/pk={address.city}"}, []string{"/pk"}, "Hash"},
		{"quoted dotted field", []string{`/pk={"a.b".'c d'}`}, []string{`/pk={"a.b"."c d"}`}, []string{"/pk"}, "Hash"},
		{"function chain", []string{"/pk={region|lower|hash:16}"}, []string{"/pk={region|lower|hash:16}"}, []string{"/pk"}, "Hash"},
		{"every function", []string{"/pk={a|yyyy}{b|yyyyMM}{c|yyyyMMdd}{d|yyyyMMddHH}{e|lower}{f|upper}{g|hash:1}"},
			[]string{"/pk={a|yyyy}{b|yyyyMM}{c|yyyyMMdd}{d|yyyyMMddHH}{e|lower}{f|upper}{g|hash:1}"}, []string{"/pk"}, "Hash"},
		{"default", []string{"/pk={region?unknown}"}, []string{"/pk={region?unknown}"}, []string{"/pk"}, "Hash"},
		{"empty default", []string{"/pk={region?}"}, []string{"/pk={region?}"}, []string{"/pk"}, "Hash"},
		{"default after functions", []string{"/pk={region|upper?N/A|x}"}, []string{"/pk={region|upper?N/A|x}"}, []string{"/pk"}, "Hash"},
		{"blanks in placeholder", []string{"/pk={ region | lower ?x}"}, []string{"/pk={region|lower?x}"}, []string{"/pk"}, "Hash"},
		{"escaped braces", []string{"/pk={{{a}}}-x"}, []string{"/pk={{{a}}}-x"}, []string{"/pk"}, "Hash"},
		{"literal text only around", []string{"/pk=t:{a}:end"}, []string{"/pk=t:{a}:end"}, []string{"/pk"}, "Hash"},
		{"ts field", []string{"/month={_ts|yyyyMM}"}, []string{"/month={_ts|yyyyMM}"}, []string{"/month"}, "Hash"},
		{"hierarchical", []string{"/tenantId", "/userId", "/month={_ts|yyyyMM}"},
			[]string{"/tenantId", "/userId", "/month={_ts|yyyyMM}"}, []string{"/tenantId", "/userId", "/month"}, "MultiHash"},
		{"sibling nested targets", []string{"/m/a={x}", "/m/b={y}"}, []string{"/m/a={x}", "/m/b={y}"}, []string{"/m/a", "/m/b"}, "MultiHash"},
		{"unicode", []string{"/città={straße}"}, []string{"/città={straße}"}, []string{"/città"}, "Hash"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec, err := ParseSpec(tt.specs)
			if err != nil {
				t.Fatalf("ParseSpec(%q): %v", tt.specs, err)
			}
			if got := spec.Strings(); !reflect.DeepEqual(got, tt.canonical) {
				t.Errorf("Strings() = %q, want %q", got, tt.canonical)
			}
			tr, err := New(spec, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := tr.TargetPaths(); !reflect.DeepEqual(got, tt.paths) {
				t.Errorf("TargetPaths() = %q, want %q", got, tt.paths)
			}
			if got := tr.KeyKind(); got != tt.kind {
				t.Errorf("KeyKind() = %q, want %q", got, tt.kind)
			}
			// The canonical text parses to the same spec.
			again, err := ParseSpec(spec.Strings())
			if err != nil {
				t.Fatalf("canonical text does not parse: %v", err)
			}
			if !reflect.DeepEqual(again.Strings(), spec.Strings()) {
				t.Errorf("canonical text is not stable: %q then %q", spec.Strings(), again.Strings())
			}
		})
	}
}

func TestParseSpecStructure(t *testing.T) {
	spec, err := ParseSpec([]string{`/a/"b c"`, "/pk=x{tenantId}-{addr.city|lower?none}"})
	if err != nil {
		t.Fatal(err)
	}
	keys := spec.Keys()
	if keys[0].Synthetic() || !keys[1].Synthetic() {
		t.Errorf("Synthetic() = %v, %v; want false, true", keys[0].Synthetic(), keys[1].Synthetic())
	}
	if got := keys[0].Path.Segments(); !reflect.DeepEqual(got, []string{"a", "b c"}) {
		t.Errorf("Segments() = %q", got)
	}
	if got := keys[1].Template.Fields(); !reflect.DeepEqual(got, []string{"tenantId", "addr.city"}) {
		t.Errorf("Fields() = %q", got)
	}
	ph := keys[1].Template.parts[3].ph
	if !ph.hasDef || ph.def != "none" || len(ph.funcs) != 1 || ph.funcs[0].op != opLower {
		t.Errorf("placeholder = %+v", ph)
	}
	hash, err := ParseSpec([]string{"/pk={a|hash:4294967296}"})
	if err != nil {
		t.Fatal(err)
	}
	if f := hash.keys[0].Template.parts[0].ph.funcs[0]; f.op != opHash || f.n != 1<<32 {
		t.Errorf("hash function = %+v", f)
	}
}

func TestParseSpecErrors(t *testing.T) {
	tests := []struct {
		name     string
		specs    []string
		index    int
		column   int
		expected string // substring of SpecError.Expected
	}{
		{"no spec", nil, 0, 0, "at least one --key"},
		{"four specs", []string{"/a", "/b", "/c", "/d"}, 3, 0, "at most 3 paths"},
		{"empty", []string{""}, 0, 1, "expected '/'"},
		{"no slash", []string{"customerId"}, 0, 1, "expected '/'"},
		{"slash only", []string{"/"}, 0, 2, "field name after '/'"},
		{"trailing slash", []string{"/a/"}, 0, 4, "field name after '/'"},
		{"double slash", []string{"/a//b"}, 0, 4, "field name after '/'"},
		{"wildcard", []string{"/a/*"}, 0, 4, "quote names"},
		{"space in bare name", []string{"/zip code"}, 0, 5, "'/', '=' or the end"},
		{"unterminated quote", []string{`/"zip`}, 0, 2, `closing "`},
		{"empty quoted name", []string{`/""`}, 0, 2, "non-empty name"},
		{"bad escape in quotes", []string{`/"a\x"`}, 0, 4, `expected \"`},
		{"system property", []string{"/_ts"}, 0, 2, "system property"},
		{"system property nested", []string{"/_rid/x"}, 0, 2, "system property"},
		{"synthetic id", []string{"/id={x}"}, 0, 1, "the id is never rewritten"},
		{"empty template", []string{"/pk="}, 0, 5, "expected a template"},
		{"constant template", []string{"/pk=abc"}, 0, 8, "at least one {field}"},
		{"unclosed placeholder", []string{"/pk={tenantId"}, 0, 5, "expected '}' to close"},
		{"lone closing brace", []string{"/pk={a}}x"}, 0, 8, "'}}' for a literal"},
		{"empty placeholder", []string{"/pk={}"}, 0, 6, "expected a field name"},
		{"empty dotted name", []string{"/pk={a..b}"}, 0, 8, "expected a field name"},
		{"trailing dot", []string{"/pk={a.}"}, 0, 8, "expected a field name"},
		{"unknown function", []string{"/pk={a|yyyyM}"}, 0, 8, "expected a function"},
		{"case of function", []string{"/pk={a|YYYY}"}, 0, 8, "expected a function"},
		{"empty function", []string{"/pk={a|}"}, 0, 8, "expected a function"},
		{"hash without N", []string{"/pk={a|hash}"}, 0, 12, "expected ':N'"},
		{"hash zero", []string{"/pk={a|hash:0}"}, 0, 13, "bucket count"},
		{"hash negative", []string{"/pk={a|hash:-1}"}, 0, 13, "bucket count"},
		{"hash plus", []string{"/pk={a|hash:+4}"}, 0, 13, "bucket count"},
		{"hash too many", []string{"/pk={a|hash:4294967297}"}, 0, 13, "bucket count"},
		{"brace in default", []string{"/pk={a?x{y}"}, 0, 9, "cannot contain"},
		{"junk after field", []string{"/pk={a b}"}, 0, 8, "expected '.', '|', '?' or '}'"},
		{"second spec column", []string{"/a", "/pk={b|bad}"}, 1, 8, "expected a function"},
		{"same path twice", []string{"/a", "/a"}, 1, 1, "same path"},
		{"same path quoted", []string{"/a", `/"a"`}, 1, 1, "same path"},
		{"nested inside", []string{"/a", "/a/b={x}"}, 1, 1, "inside the other"},
		{"outer after nested", []string{"/a/b", "/a"}, 1, 1, "inside the other"},
		{"column counts runes", []string{"/pk=é{a|nope}"}, 0, 9, "expected a function"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseSpec(tt.specs)
			var se *SpecError
			if !errors.As(err, &se) {
				t.Fatalf("ParseSpec(%q) = %v, want a *SpecError", tt.specs, err)
			}
			if se.Index != tt.index || se.Column != tt.column || !strings.Contains(se.Expected, tt.expected) {
				t.Errorf("got index %d column %d %q\nwant index %d column %d containing %q",
					se.Index, se.Column, se.Expected, tt.index, tt.column, tt.expected)
			}
			if msg := se.Error(); tt.column > 0 && !strings.Contains(msg, "column") {
				t.Errorf("Error() = %q does not give the column", msg)
			}
		})
	}
}

func TestSpecErrorPointer(t *testing.T) {
	_, err := ParseSpec([]string{"/pk={tenantId|yyyyM}"})
	se := err.(*SpecError)
	want := "  /pk={tenantId|yyyyM}\n                ^"
	if got := se.Pointer(); got != want {
		t.Errorf("Pointer() =\n%s\nwant\n%s", got, want)
	}
	if got := se.Error(); got != `key spec 1 "/pk={tenantId|yyyyM}": column 15: expected a function: yyyy, yyyyMM, yyyyMMdd, yyyyMMddHH, lower, upper or hash:N` {
		t.Errorf("Error() = %s", got)
	}
}

func TestParsePath(t *testing.T) {
	for _, ok := range []string{"/region", "/a/b/c", `/"a b"`, "/_tenant", "/_ts"} {
		if _, err := ParsePath(ok); err != nil {
			t.Errorf("ParsePath(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "region", "/", "/a/", "/a=b", `/"a`} {
		if _, err := ParsePath(bad); err == nil {
			t.Errorf("ParsePath(%q) succeeded, want an error", bad)
		}
	}
}

func TestNewSourcePathErrors(t *testing.T) {
	spec, err := ParseSpec([]string{"/a"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = New(spec, []string{"/ok", "bad"})
	var se *SpecError
	if !errors.As(err, &se) || se.Index != 1 || se.What != "source key path" {
		t.Fatalf("New with a bad source path = %v", err)
	}
	if !strings.Contains(err.Error(), `source key path 2 "bad"`) {
		t.Errorf("Error() = %s", err)
	}
	if _, err := New(spec, []string{"/a", "/b", "/c", "/d"}); err == nil {
		t.Error("New with four source paths succeeded")
	}
	if _, err := New(nil, nil); err == nil {
		t.Error("New(nil) succeeded")
	}
}
