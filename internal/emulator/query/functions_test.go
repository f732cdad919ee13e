package query

import (
	"testing"
)

const fnDoc = `{"s":"Hello","u":"héllo😀","sp":"  pad  ","n":-2.5,"arr":[1,"a",{"k":1,"j":2},[2]],"o":{"a":1},"z":null,"t":true}`

func TestFunctions(t *testing.T) {
	tests := []struct{ expr, want string }{
		// type checking
		{"IS_DEFINED(c.s)", "true"},
		{"IS_DEFINED(c.missing)", "false"},
		{"IS_NULL(c.z)", "true"},
		{"IS_NULL(c.missing)", "false"},
		{"IS_STRING(c.s)", "true"},
		{"IS_NUMBER(c.n)", "true"},
		{"IS_BOOL(c.t)", "true"},
		{"IS_BOOL(c.z)", "false"},
		{"IS_ARRAY(c.arr)", "true"},
		{"IS_OBJECT(c.o)", "true"},
		{"IS_OBJECT(c.arr)", "false"},
		{"IS_PRIMITIVE(c.z)", "true"},
		{"IS_PRIMITIVE(c.o)", "false"},
		{"IS_PRIMITIVE(c.missing)", "false"},
		{"IS_INTEGER(4)", "true"},
		{"IS_INTEGER(4.5)", "false"},
		{"IS_FINITE_NUMBER(1)", "true"},
		{"is_defined(c.s)", "true"},
		// strings
		{"LOWER(c.s)", `"hello"`},
		{"UPPER(c.s)", `"HELLO"`},
		{"UPPER(c.n)", "undefined"},
		{"LTRIM(c.sp)", `"pad  "`},
		{"RTRIM(c.sp)", `"  pad"`},
		{"TRIM(c.sp)", `"pad"`},
		{"TRIM('xxaxx', 'x')", `"a"`},
		{"LENGTH(c.s)", "5"},
		{"LENGTH(c.u)", "7"}, // UTF-16 code units: the emoji counts 2
		{"LENGTH(c.n)", "undefined"},
		{"CONCAT(c.s, ' ', 'world')", `"Hello world"`},
		{"CONCAT(c.s, 1)", "undefined"},
		{"CONCAT(c.s, c.missing)", "undefined"},
		{"SUBSTRING(c.s, 1, 3)", `"ell"`},
		{"SUBSTRING(c.s, 3, 100)", `"lo"`},
		{"SUBSTRING(c.s, 10, 1)", `""`},
		{"SUBSTRING(c.s, -1, 2)", `""`},
		{"SUBSTRING(c.s, 1.5, 2)", "undefined"},
		{"SUBSTRING(c.u, 5, 2)", `"😀"`},
		{"LEFT(c.s, 2)", `"He"`},
		{"RIGHT(c.s, 2)", `"lo"`},
		{"RIGHT(c.s, 10)", `"Hello"`},
		{"INDEX_OF(c.s, 'l')", "2"},
		{"INDEX_OF(c.s, 'l', 3)", "3"},
		{"INDEX_OF(c.s, 'x')", "-1"},
		{"INDEX_OF(c.u, 'l')", "2"},
		{"REPLACE(c.s, 'l', 'L')", `"HeLLo"`},
		{"REPLACE(c.s, '', 'L')", "undefined"},
		{"REPLICATE('ab', 3)", `"ababab"`},
		{"REPLICATE('ab', -1)", "undefined"},
		{"REVERSE(c.s)", `"olleH"`},
		{"REVERSE('a😀b')", `"b😀a"`},
		{"CONTAINS(c.s, 'ell')", "true"},
		{"CONTAINS(c.s, 'ELL')", "false"},
		{"CONTAINS(c.s, 'ELL', true)", "true"},
		{"CONTAINS(c.s, 'ELL', false)", "false"},
		{"CONTAINS(c.s, 'ELL', 1)", "undefined"},
		{"CONTAINS(c.n, 'x')", "undefined"},
		{"STARTSWITH(c.s, 'He')", "true"},
		{"STARTSWITH(c.s, 'he', true)", "true"},
		{"ENDSWITH(c.s, 'lo')", "true"},
		{"ENDSWITH(c.s, 'LO')", "false"},
		{"STRINGEQUALS(c.s, 'hello', true)", "true"},
		{"STRINGEQUALS(null, null)", "undefined"},
		{"TOSTRING(c.n)", `"-2.5"`},
		{"TOSTRING(4)", `"4"`},
		{"TOSTRING(c.o)", `"{\"a\":1}"`},
		{"TOSTRING(c.s)", `"Hello"`},
		{"TOSTRING(c.z)", `"null"`},
		{"TOSTRING(c.missing)", "undefined"},
		{"STRINGTONUMBER('1.5')", "1.5"},
		{"STRINGTONUMBER('x')", "undefined"},
		{"STRINGTOBOOLEAN('true')", "true"},
		{"STRINGTONULL('null')", "null"},
		{"STRINGTOARRAY('[1,2]')", "[1,2]"},
		{`STRINGTOOBJECT('{"a":1}')`, `{"a":1}`},
		// math
		{"ABS(c.n)", "2.5"},
		{"CEILING(c.n)", "-2"},
		{"FLOOR(c.n)", "-3"},
		{"ROUND(c.n)", "-3"},
		{"ROUND(2.5)", "3"},
		{"ROUND(2.4)", "2"},
		{"TRUNC(c.n)", "-2"},
		{"SQRT(16)", "4"},
		{"SQRT(-1)", "undefined"},
		{"POWER(2, 10)", "1024"},
		{"SQUARE(3)", "9"},
		{"SIGN(c.n)", "-1"},
		{"EXP(0)", "1"},
		{"LOG(1)", "0"},
		{"LOG(8, 2)", "3"},
		{"LOG10(1000)", "3"},
		{"PI()", "3.141592653589793"},
		{"SIN(0)", "0"},
		{"DEGREES(PI())", "180"},
		{"ATN2(35.175643, 129.44)", "0.265344532064832"},
		{"ABS('x')", "undefined"},
		// arrays
		{"ARRAY_CONTAINS(c.arr, 1)", "true"},
		{"ARRAY_CONTAINS(c.arr, 'a')", "true"},
		{"ARRAY_CONTAINS(c.arr, '1')", "false"},
		{"ARRAY_CONTAINS(c.arr, [2])", "true"},
		{"ARRAY_CONTAINS(c.arr, {'k': 1})", "false"},
		{"ARRAY_CONTAINS(c.arr, {'k': 1}, true)", "true"},
		{"ARRAY_CONTAINS(c.arr, {'k': 1, 'x': 1}, true)", "false"},
		{"ARRAY_CONTAINS(c.arr, {'j': 2, 'k': 1}, false)", "true"},
		{"ARRAY_CONTAINS(c.arr, c.missing)", "undefined"},
		{"ARRAY_CONTAINS(c.missing, 1)", "undefined"},
		{"ARRAY_CONTAINS(c.s, 'H')", "undefined"},
		{"ARRAY_LENGTH(c.arr)", "4"},
		{"ARRAY_LENGTH(c.s)", "undefined"},
		{"ARRAY_SLICE(c.arr, 1)", `["a",{"k":1,"j":2},[2]]`},
		{"ARRAY_SLICE(c.arr, 1, 1)", `["a"]`},
		{"ARRAY_SLICE(c.arr, -2, 1)", `[{"k":1,"j":2}]`},
		{"ARRAY_SLICE(c.arr, 10)", `[]`},
		{"ARRAY_SLICE(c.arr, 0, 0)", `[]`},
		{"ARRAY_CONCAT([1], [2, 3], [])", `[1,2,3]`},
		{"ARRAY_CONCAT([1], 'x')", "undefined"},
		{"ARRAY_CONTAINS_ANY(c.arr, 9, 'a')", "true"},
		{"ARRAY_CONTAINS_ANY(c.arr, 9, 8)", "false"},
		{"ARRAY_CONTAINS_ALL(c.arr, 1, 'a')", "true"},
		{"ARRAY_CONTAINS_ALL(c.arr, 1, 9)", "false"},
		{"IIF(c.t, 'y', 'n')", `"y"`},
		{"IIF(c.missing, 'y', 'n')", `"n"`},
		{"IIF(1, 'y', 'n')", `"n"`},
	}
	for _, tt := range tests {
		if got := evalOn(t, tt.expr, fnDoc); got != tt.want {
			t.Errorf("%s = %s, want %s", tt.expr, got, tt.want)
		}
	}
}

func TestFunctionArity(t *testing.T) {
	for _, q := range []string{
		"SELECT VALUE LOWER() FROM c",
		"SELECT VALUE LOWER('a', 'b') FROM c",
		"SELECT VALUE CONCAT('a') FROM c",
		"SELECT VALUE SUBSTRING('a', 1) FROM c",
		"SELECT VALUE PI(1) FROM c",
		"SELECT VALUE COUNT() FROM c",
		"SELECT VALUE COUNT(1, 2) FROM c",
	} {
		if _, err := Parse(q); err == nil {
			t.Errorf("Parse(%q) accepted a wrong argument count", q)
		}
	}
}
