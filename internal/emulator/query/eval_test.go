package query

import (
	"testing"
)

const evalDoc = `{"id":"x","n":5,"f":1.5,"s":"abc","t":true,"fa":false,"z":null,"arr":[1,2,3],"o":{"k":"v","n":{"m":1}},"e":"","neg":-2}`

func TestOperators(t *testing.T) {
	tests := []struct{ expr, want string }{
		// property access
		{"c.o.n.m", "1"},
		{`c["o"]["n"]["m"]`, "1"},
		{"c.arr[1]", "2"},
		{"c.arr[3]", "undefined"},
		{"c.arr[-1]", "undefined"},
		{"c.arr[0.5]", "undefined"},
		{`c.arr["0"]`, "undefined"},
		{`c.o[c.o.k]`, "undefined"},
		{`c.o["k"]`, `"v"`},
		{"c.missing.deeper", "undefined"},
		{"c.s.length", "undefined"},
		{"c.n[0]", "undefined"},
		// literals
		{"'it''s'", "error: Syntax error, incorrect syntax near ''s''."},
		{`'it\'s'`, `"it's"`},
		{`"tab\there\u00e9"`, `"tab\thereé"`},
		{"[1, c.missing, 'a']", `[1,"a"]`},
		{"{'a': c.missing, 'b': 1}", `{"b":1}`},
		{"0.1 + 0.2", "0.30000000000000004"},
		{"1e3", "1000"},
		// arithmetic
		{"c.n + 1", "6"},
		{"c.n - c.f", "3.5"},
		{"c.n * c.neg", "-10"},
		{"c.n / 2", "2.5"},
		{"c.n % 3", "2"},
		{"-c.n", "-5"},
		{"+c.n", "5"},
		{"c.n / 0", "undefined"},
		{"c.n % 0", "undefined"},
		{"c.n + '1'", "undefined"},
		{"c.s + 'd'", "undefined"},
		{"c.n + c.missing", "undefined"},
		{"c.z + 1", "undefined"},
		{"-c.s", "undefined"},
		// bitwise (32-bit integers, as in JavaScript)
		{"6 & 3", "2"},
		{"6 | 3", "7"},
		{"6 ^ 3", "5"},
		{"~5", "-6"},
		{"1 << 31", "-2147483648"},
		{"-16 >> 2", "-4"},
		{"-16 >>> 28", "15"},
		{"5.7 | 0", "5"},
		{"4294967297 | 0", "1"},
		{"true & 1", "undefined"},
		// string concatenation
		{"c.s || 'd'", `"abcd"`},
		{"c.s || 1", "undefined"},
		// equality
		{"c.n = 5", "true"},
		{"c.n = 5.0", "true"},
		{"c.n != 5", "false"},
		{"c.n <> 4", "true"},
		{"c.n = '5'", "false"},
		{"c.n != '5'", "true"},
		{"c.z = null", "true"},
		{"c.z = false", "false"},
		{"c.missing = 1", "undefined"},
		{"c.missing != 1", "undefined"},
		{"c.missing = c.missing", "undefined"},
		{"c.arr = [1,2,3]", "true"},
		{"c.arr = [1,2]", "false"},
		{"c.o = {'n': {'m': 1}, 'k': 'v'}", "true"},
		// comparison
		{"c.n > 4", "true"},
		{"c.n >= 5", "true"},
		{"c.n < 5", "false"},
		{"c.n <= 4.99", "false"},
		{"c.s < 'abd'", "true"},
		{"c.s > 'ab'", "true"},
		{"'B' < 'a'", "true"},
		{"false < true", "true"},
		{"null <= null", "true"},
		{"c.n > '4'", "undefined"},
		{"c.n > c.missing", "undefined"},
		{"c.arr > [1]", "undefined"},
		{"c.o < c.o", "undefined"},
		{"c.z < 1", "undefined"},
		// coalesce and conditional
		{"c.missing ?? 'd'", `"d"`},
		{"c.z ?? 'd'", "null"},
		{"c.missing ?? c.missing2", "undefined"},
		{"c.t ? 'y' : 'n'", `"y"`},
		{"c.n ? 'y' : 'n'", `"n"`},
		{"c.missing ? 'y' : 'n'", `"n"`},
		// IN
		{"c.n IN (1, 5)", "true"},
		{"c.n IN (1, 2)", "false"},
		{"c.n NOT IN (1, 2)", "true"},
		{"c.n IN ('5')", "false"},
		{"c.missing IN (1)", "undefined"},
		{"c.missing NOT IN (1)", "undefined"},
		{"c.arr IN ([1,2,3])", "true"},
		// BETWEEN
		{"c.n BETWEEN 1 AND 5", "true"},
		{"c.n BETWEEN 6 AND 9", "false"},
		{"c.n NOT BETWEEN 6 AND 9", "true"},
		{"c.s BETWEEN 'a' AND 'b'", "true"},
		{"c.n BETWEEN 'a' AND 9", "undefined"},
		{"c.missing BETWEEN 1 AND 2", "undefined"},
		// LIKE
		{"c.s LIKE 'a%'", "true"},
		{"c.s LIKE '%c'", "true"},
		{"c.s LIKE '%b%'", "true"},
		{"c.s LIKE 'a_c'", "true"},
		{"c.s LIKE 'a_'", "false"},
		{"c.s LIKE 'ABC'", "false"},
		{"c.s LIKE '[a-b]bc'", "true"},
		{"c.s LIKE '[^a]bc'", "false"},
		{"c.s LIKE '[xa]%'", "true"},
		{"c.s NOT LIKE 'x%'", "true"},
		{"'50%' LIKE '50!%' ESCAPE '!'", "true"},
		{"'501' LIKE '50!%' ESCAPE '!'", "false"},
		{"'a_b' LIKE 'a[_]b'", "true"},
		{"c.e LIKE '%'", "true"},
		{"c.n LIKE '5'", "undefined"},
		{"c.missing LIKE '%'", "undefined"},
	}
	for _, tt := range tests {
		if got := evalOn(t, tt.expr, evalDoc); got != tt.want {
			t.Errorf("%s = %s, want %s", tt.expr, got, tt.want)
		}
	}
}

// TestThreeValuedLogic checks the truth tables of the docs' "Logical
// operators" page, with undefined produced by a missing property and a
// non-boolean operand.
func TestThreeValuedLogic(t *testing.T) {
	vals := map[string]string{"true": "true", "false": "false", "undefined": "c.missing", "number": "1"}
	and := map[[2]string]string{
		{"true", "true"}: "true", {"true", "false"}: "false", {"true", "undefined"}: "undefined",
		{"false", "true"}: "false", {"false", "false"}: "false", {"false", "undefined"}: "false",
		{"undefined", "true"}: "undefined", {"undefined", "false"}: "false", {"undefined", "undefined"}: "undefined",
		{"number", "true"}: "undefined", {"number", "false"}: "false", {"false", "number"}: "false",
	}
	or := map[[2]string]string{
		{"true", "true"}: "true", {"true", "false"}: "true", {"true", "undefined"}: "true",
		{"false", "true"}: "true", {"false", "false"}: "false", {"false", "undefined"}: "undefined",
		{"undefined", "true"}: "true", {"undefined", "false"}: "undefined", {"undefined", "undefined"}: "undefined",
		{"number", "true"}: "true", {"number", "false"}: "undefined", {"true", "number"}: "true",
	}
	for k, want := range and {
		e := "(" + vals[k[0]] + " AND " + vals[k[1]] + ")"
		if got := evalOn(t, e, `{}`); got != want {
			t.Errorf("%s = %s, want %s", e, got, want)
		}
	}
	for k, want := range or {
		e := "(" + vals[k[0]] + " OR " + vals[k[1]] + ")"
		if got := evalOn(t, e, `{}`); got != want {
			t.Errorf("%s = %s, want %s", e, got, want)
		}
	}
	for in, want := range map[string]string{"true": "false", "false": "true", "undefined": "undefined", "number": "undefined"} {
		e := "(NOT " + vals[in] + ")"
		if got := evalOn(t, e, `{}`); got != want {
			t.Errorf("%s = %s, want %s", e, got, want)
		}
	}
}

// TestWhereKeepsOnlyTrue checks that WHERE keeps a document only when the
// filter is exactly true: not for undefined, not for truthy values.
func TestWhereKeepsOnlyTrue(t *testing.T) {
	in := docs(t, `[{"id":"a","v":true},{"id":"b","v":1},{"id":"c","v":"true"},{"id":"d"},{"id":"e","v":false},{"id":"f","v":null}]`)
	tests := []struct{ where, want string }{
		{"c.v", `["a"]`},
		{"NOT c.v", `["e"]`},
		{"c.v = true", `["a"]`},
		{"c.v != true", `["b","c","e","f"]`},
		{"NOT (c.v = true)", `["b","c","e","f"]`},
		{"IS_DEFINED(c.v) = false", `["d"]`},
		{"(c.v ?? 'none') = 'none'", `["d"]`},
		{"c.v ?? 'none' = 'none'", `["a","d"]`}, // ?? binds looser than =
		{"c.v OR c.id = 'd'", `["a","d"]`},
		{"c.v AND c.id = 'd'", `[]`},
	}
	for _, tt := range tests {
		if got := run(t, "SELECT VALUE c.id FROM c WHERE "+tt.where, in); got != tt.want {
			t.Errorf("WHERE %s = %s, want %s", tt.where, got, tt.want)
		}
	}
}
