package query

import (
	"errors"
	"testing"
)

func TestParseAccepts(t *testing.T) {
	for _, q := range []string{
		"SELECT * FROM c",
		"select * from c",
		"SeLeCt * FrOm c WhErE c.a = 1",
		"SELECT * FROM root r WHERE r.id = @id",
		"SELECT * FROM root",
		"SELECT * FROM docs c WHERE c.someProp = 'some_4'",
		"SELECT * FROM c AS d WHERE d.x = 1",
		"SELECT * FROM c IN c.children",
		"SELECT * FROM c.children[0] ch",
		"SELECT * FROM c.address",
		`SELECT * FROM c["address"]`,
		"SELECT DISTINCT TOP 5 VALUE c.a FROM c",
		"SELECT TOP @n c.a FROM c",
		"SELECT c.a AS x, c.b y, c FROM c",
		"SELECT VALUE {\"a\": c.a, b: c.b, 'c': 1} FROM c",
		"SELECT VALUE [1, 'two', null, true, false, undefined, [], {}] FROM c",
		"SELECT * FROM c WHERE c.a IN (1, 2) AND c.b NOT IN ('x') OR NOT IS_DEFINED(c.z)",
		"SELECT * FROM c WHERE c.n BETWEEN 1 AND 5 AND c.m NOT BETWEEN 2 AND 3",
		"SELECT * FROM c WHERE c.s LIKE 'a%' AND c.t NOT LIKE 'b!_%' ESCAPE '!'",
		"SELECT * FROM c WHERE c.a ?? c.b = 1 ? true : false",
		"SELECT VALUE -c.a + +c.b * ~c.c / 2 % 3 - (4 << 1) >> 1 >>> 0 & 7 | 8 ^ 9 FROM c",
		"SELECT VALUE 'a' || 'b' FROM c",
		"SELECT VALUE c.a <> c.b FROM c",
		`SELECT VALUE c["a"]["b"][0][@i] FROM c`,
		"SELECT VALUE LEFT(c.s, 1) || RIGHT(c.s, 1) FROM c",
		"SELECT VALUE COUNT(1) FROM c",
		"SELECT COUNT(1) AS n, SUM(c.a), MIN(c.a), MAX(c.a), AVG(c.a) FROM c",
		"SELECT c.k, COUNT(1) FROM c GROUP BY c.k",
		"SELECT * FROM c ORDER BY c.a, c.b DESC, c['x'] ASC",
		"SELECT * FROM c OFFSET 10 LIMIT 20",
		"SELECT * FROM c OFFSET @o LIMIT @l",
		"SELECT t, c.id FROM c JOIN t IN c.tags JOIN u IN c.users",
		"SELECT 1",
		"SELECT * FROM c -- comment\nWHERE c.a = 1",
		"SELECT * FROM c WHERE c.a = .5e1 AND c.b = 1.e3 AND c.c = 10E-1",
		"SELECT * FROM c WHERE c.all = 1 AND c.first = 2 AND c.last = 3",
	} {
		if _, err := Parse(q); err != nil {
			t.Errorf("Parse(%q): %v", q, err)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		q          string
		code, msg  string
		start, end int
	}{
		{"SELEC * FROM c", CodeSyntax, "Syntax error, incorrect syntax near 'SELEC'.", 0, 5},
		{"SELECT * FROM c WHERE", CodeEOF, "Syntax error, unexpected end-of-file.", 21, 21},
		{"SELECT * FROM c WHERE c.value = 1", CodeSyntax, "Syntax error, incorrect syntax near 'value'.", 24, 29},
		{"SELECT * FROM c WHERE c.Group = 'API'", CodeSyntax, "Syntax error, incorrect syntax near 'Group'.", 24, 29},
		{"SELECT c.id Value FROM c", CodeSyntax, "Syntax error, incorrect syntax near 'Value'.", 12, 17},
		{"SELECT * FROM c WHERE c.a = 'x", CodeEOF, "Syntax error, unexpected end-of-file.", 30, 30},
		{"SELECT * FROM c WHERE c.a = #", CodeSyntax, "Syntax error, incorrect syntax near '#'.", 28, 29},
		{"SELECT * FROM c WHERE d.a = 1", CodeUnresolved, "Identifier 'd' could not be resolved.", 22, 23},
		{"SELECT * FROM root r WHERE root.id = 1", CodeUnresolved, "Identifier 'root' could not be resolved.", 27, 31},
		{"SELECT * FROM c WHERE c.a = TRUE", CodeUnresolved, "Identifier 'TRUE' could not be resolved.", 28, 32},
		{"SELECT BADFUNC(r.age) FROM Root r", CodeUnknownFunc, "'BADFUNC' is not a recognized built-in function name.", 7, 14},
		{"SELECT * FROM c WHERE TONUMBER(c.a) = 1", CodeUnknownFunc, "'TONUMBER' is not a recognized built-in function name.", 22, 30},
		{"SELECT * FROM c WHERE STARTSWITH(c.key, 'a', 'b', 'c')", "", "The STARTSWITH function requires 2 or 3 argument(s).", 22, 54},
		{"SELECT * FROM c ORDER BY LOWER(c.a)", CodeOrderByNoPath, "Unsupported ORDER BY clause. ORDER BY item expression could not be mapped to a document path.", -1, -1},
		{"SELECT * FROM c JOIN t IN c.tags", "", "'SELECT *' is only valid with a single input set.", -1, -1},
		{"SELECT *", "", "'SELECT *' is not valid if FROM clause is omitted.", -1, -1},
		{"SELECT c.a, c.b.a FROM c", "", "The object property name 'a' is specified more than once.", -1, -1},
		{"SELECT c.a, COUNT(1) FROM c", "", "The expression 'c[\"a\"]' in the SELECT clause is neither contained in an aggregate function nor in the GROUP BY clause.", -1, -1},
		{"SELECT * FROM c WHERE COUNT(c.a) > 1", "", "Aggregate function 'COUNT' is not allowed here: aggregates are valid only in the SELECT clause and cannot be nested.", 22, 27},
		{"SELECT VALUE MAX(MIN(c.a)) FROM c", "", "Aggregate function 'MIN' is not allowed here: aggregates are valid only in the SELECT clause and cannot be nested.", 17, 20},
		{"SELECT TOP 1.5 * FROM c", "", "The count value provided for a TOP, OFFSET or LIMIT clause must be a non-negative 32-bit integer.", 11, 14},
		{"SELECT * FROM c WHERE EXISTS(SELECT 1)", "", "Subqueries are not supported by the emulator.", 22, 28},
		{"SELECT * FROM c WHERE udf.f(c.a)", "", "User-defined functions are not supported by the emulator.", 22, 25},
		{"SELECT VALUE {'a': 1, 'a': 2} FROM c", "", "The object property name 'a' is specified more than once.", 22, 25},
		{"SELECT * FROM c WHERE c.a = 'é' AND d.x", CodeUnresolved, "Identifier 'd' could not be resolved.", 36, 37},
		{"SELECT * FROM c x y", CodeSyntax, "Syntax error, incorrect syntax near 'y'.", 18, 19},
		{"SELECT * FROM c OFFSET 1", CodeEOF, "Syntax error, unexpected end-of-file.", 24, 24},
	}
	for _, tt := range tests {
		_, err := Parse(tt.q)
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("Parse(%q) = %v, want *SyntaxError", tt.q, err)
			continue
		}
		if se.Code != tt.code || se.Message != tt.msg || se.Start != tt.start || se.End != tt.end {
			t.Errorf("Parse(%q) = {%d %d %q %q}, want {%d %d %q %q}", tt.q, se.Start, se.End, se.Code, se.Message, tt.start, tt.end, tt.code, tt.msg)
		}
	}
}

func TestShape(t *testing.T) {
	tests := []struct {
		q          string
		want       Shape
		streamable bool
	}{
		{"SELECT * FROM c", Shape{IsSelectStar: true}, true},
		{"SELECT VALUE c.id FROM c ORDER BY c.id", Shape{IsSelectValue: true, HasOrderBy: true}, false},
		{"SELECT VALUE COUNT(1) FROM c", Shape{IsSelectValue: true, HasAggregate: true}, false},
		{"SELECT c.k, COUNT(1) AS n FROM c GROUP BY c.k", Shape{HasGroupBy: true, HasAggregate: true}, false},
		{"SELECT DISTINCT c.a FROM c", Shape{HasDistinct: true}, false},
		{"SELECT TOP 3 * FROM c", Shape{HasTop: true, IsSelectStar: true}, true},
		{"SELECT * FROM c OFFSET 1 LIMIT 2", Shape{HasOffsetLimit: true, IsSelectStar: true}, true},
		{"SELECT t FROM c JOIN t IN c.tags", Shape{HasJoin: true}, true},
		{"SELECT 1", Shape{NoFrom: true}, false},
	}
	for _, tt := range tests {
		q, err := Parse(tt.q)
		if err != nil {
			t.Fatalf("Parse(%q): %v", tt.q, err)
		}
		if got := q.Shape(); got != tt.want || got.Streamable() != tt.streamable {
			t.Errorf("Shape(%q) = %+v (streamable %v), want %+v (%v)", tt.q, got, got.Streamable(), tt.want, tt.streamable)
		}
	}
}

func TestPrecedence(t *testing.T) {
	// Checked through evaluation: each expression's value tells how it
	// grouped.
	tests := []struct{ expr, want string }{
		{"1 + 2 * 3", "7"},
		{"(1 + 2) * 3", "9"},
		{"10 - 4 - 3", "3"},
		{"2 * 3 % 4", "2"},
		{"1 + 2 = 3", "true"},
		{"1 < 2 = true", "true"},
		{"6 & 3 = 2", "undefined"}, // & binds looser than =, as in the grammar (and JavaScript): 6 & (3 = 2)
		{"(6 & 3) = 2", "true"},
		{"true OR false AND false", "true"},
		{"NOT true = false", "true"},       // (NOT true) = false
		{"NOT 1 = 1", "undefined"},         // (NOT 1) = 1
		{"'a' || 'b' = 'ab'", "undefined"}, // || is the loosest binary operator: 'a' || ('b' = 'ab')
		{"('a' || 'b') = 'ab'", "true"},
		{"1 IN (1, 2) AND 3 BETWEEN 2 AND 4", "true"},
		{"false ? 1 : true ? 2 : 3", "2"},
		{"undefined ?? 1 + 1", "2"},
		{"-2 * -3", "6"},
		{"1 << 2 + 1", "8"},
	}
	for _, tt := range tests {
		if got := evalOn(t, tt.expr, `{}`); got != tt.want {
			t.Errorf("%s = %s, want %s", tt.expr, got, tt.want)
		}
	}
}

func TestSelectNaming(t *testing.T) {
	in := docs(t, `[{"id":"1","a":{"b":2},"arr":[5]}]`)
	tests := []struct{ q, want string }{
		{"SELECT c.a.b FROM c", `[{"b":2}]`},
		{`SELECT c["a"]["b"] FROM c`, `[{"b":2}]`},
		{"SELECT c.a.b AS x, c.id FROM c", `[{"x":2,"id":"1"}]`},
		{"SELECT c.arr[0], c.id, 1 + 1, UPPER(c.id) FROM c", `[{"$1":5,"id":"1","$2":2,"$3":"1"}]`},
		{"SELECT c FROM c", `[{"c":{"id":"1","a":{"b":2},"arr":[5]}}]`},
		{"SELECT c.missing, c.id FROM c", `[{"id":"1"}]`},
		{"SELECT c.missing FROM c", `[{}]`},
		{"SELECT VALUE c.missing FROM c", `[]`},
		{"SELECT VALUE undefined FROM c", `[]`},
		{"SELECT c.id, c.a FROM c", `[{"id":"1","a":{"b":2}}]`},
		{"SELECT c.a, c.id FROM c", `[{"a":{"b":2},"id":"1"}]`},
	}
	for _, tt := range tests {
		if got := run(t, tt.q, in); got != tt.want {
			t.Errorf("%s = %s, want %s", tt.q, got, tt.want)
		}
	}
}

func TestServiceJSON(t *testing.T) {
	_, err := Parse("SELECT * FROM c WHERE c.value = 1")
	want := `{"errors":[{"severity":"Error","location":{"start":24,"end":29},"code":"SC1001","message":"Syntax error, incorrect syntax near 'value'."}]}`
	if got := err.(*SyntaxError).ServiceJSON(); got != want {
		t.Errorf("ServiceJSON = %s", got)
	}
	_, err = Parse("SELECT * FROM c ORDER BY c.a + 1")
	want = `{"errors":[{"severity":"Error","code":2206,"message":"Unsupported ORDER BY clause. ORDER BY item expression could not be mapped to a document path."}]}`
	if got := err.(*SyntaxError).ServiceJSON(); got != want {
		t.Errorf("ServiceJSON = %s", got)
	}
}
