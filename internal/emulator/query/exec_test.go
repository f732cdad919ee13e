package query

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
)

const people = `[
 {"id":"1","pk":"a","name":"Ann","age":30,"team":"x","tags":["go","db"],"address":{"city":"Oslo","zip":"0150"}},
 {"id":"2","pk":"a","name":"Bob","age":25,"team":"y","tags":["db"]},
 {"id":"3","pk":"b","name":"Cid","age":30,"team":"x","tags":[]},
 {"id":"4","pk":"b","name":"Dee","team":"z"},
 {"id":"5","pk":"c","name":"Eve","age":"old","team":"y","tags":["go"]}
]`

func TestRunQueries(t *testing.T) {
	in := docs(t, people)
	tests := []struct{ q, want string }{
		// the SDK conformance suite's queries (emulator_cosmos_query_test.go)
		{"select * from docs c where c.name = 'Bob'", `[{"id":"2","pk":"a","name":"Bob","age":25,"team":"y","tags":["db"]}]`},
		{"select value c.id from c order by c.id", `["1","2","3","4","5"]`},
		{"SELECT VALUE COUNT(1) FROM c", `[5]`},
		{"SELECT * FROM root r WHERE r.id = '3'", `[{"id":"3","pk":"b","name":"Cid","age":30,"team":"x","tags":[]}]`},
		// projections keep stored member order
		{"SELECT VALUE c.address FROM c WHERE c.id = '1'", `[{"city":"Oslo","zip":"0150"}]`},
		{"SELECT c.address FROM c WHERE c.id = '1'", `[{"address":{"city":"Oslo","zip":"0150"}}]`},
		{"SELECT c.name, c.address.city FROM c WHERE c.age = 30", `[{"name":"Ann","city":"Oslo"},{"name":"Cid"}]`},
		{"SELECT VALUE {'n': c.name, 'a': [c.age]} FROM c WHERE c.pk = 'b'", `[{"n":"Cid","a":[30]},{"n":"Dee","a":[]}]`},
		// ORDER BY: multi-key, mixed types, undefined first ascending
		{"SELECT VALUE c.id FROM c ORDER BY c.age", `["4","2","1","3","5"]`},
		{"SELECT VALUE c.id FROM c ORDER BY c.age DESC", `["5","3","1","2","4"]`},
		{"SELECT VALUE c.id FROM c ORDER BY c.team, c.age DESC", `["1","3","5","2","4"]`},
		{"SELECT VALUE c.id FROM c ORDER BY c.team DESC, c.id", `["4","2","5","1","3"]`},
		{"SELECT VALUE c.id FROM c ORDER BY c['team'] ASC, c.name DESC", `["3","1","5","2","4"]`},
		// TOP, OFFSET LIMIT, DISTINCT
		{"SELECT TOP 2 VALUE c.id FROM c ORDER BY c.id DESC", `["5","4"]`},
		{"SELECT TOP 0 * FROM c", `[]`},
		{"SELECT VALUE c.id FROM c ORDER BY c.id OFFSET 1 LIMIT 2", `["2","3"]`},
		{"SELECT VALUE c.id FROM c OFFSET 4 LIMIT 10", `["5"]`},
		{"SELECT VALUE c.id FROM c OFFSET 9 LIMIT 10", `[]`},
		{"SELECT DISTINCT VALUE c.team FROM c", `["x","y","z"]`},
		{"SELECT DISTINCT c.team FROM c", `[{"team":"x"},{"team":"y"},{"team":"z"}]`},
		{"SELECT DISTINCT VALUE c.age FROM c", `[30,25,"old"]`},
		{"SELECT DISTINCT VALUE c.team FROM c ORDER BY c.team DESC", `["z","y","x"]`},
		// aggregates
		{"SELECT VALUE COUNT(c.age) FROM c", `[4]`},
		{"SELECT VALUE SUM(c.age) FROM c", `[]`},
		{"SELECT VALUE SUM(c.age) FROM c WHERE IS_NUMBER(c.age)", `[85]`},
		{"SELECT VALUE AVG(c.age) FROM c WHERE IS_NUMBER(c.age)", `[28.333333333333332]`},
		{"SELECT VALUE MIN(c.age) FROM c", `[25]`},
		{"SELECT VALUE MAX(c.age) FROM c", `["old"]`},
		{"SELECT VALUE MAX(c.tags) FROM c", `[]`},
		{"SELECT VALUE COUNT(1) FROM c WHERE c.pk = 'none'", `[0]`},
		{"SELECT VALUE SUM(c.age) FROM c WHERE c.pk = 'none'", `[0]`},
		{"SELECT VALUE AVG(c.age) FROM c WHERE c.pk = 'none'", `[]`},
		{"SELECT VALUE MIN(c.age) FROM c WHERE c.pk = 'none'", `[]`},
		{"SELECT COUNT(1) AS n, MAX(c.age) AS m FROM c WHERE c.pk = 'none'", `[{"n":0}]`},
		{"SELECT COUNT(1), MIN(c.name) FROM c", `[{"$1":5,"$2":"Ann"}]`},
		{"SELECT VALUE COUNT(1) + 1 FROM c", `[6]`},
		{"SELECT VALUE COUNT(1) FROM c WHERE c.age > 20 ORDER BY c.id", `[3]`},
		// GROUP BY: groups sorted by key, undefined first
		{"SELECT c.team, COUNT(1) AS n FROM c GROUP BY c.team", `[{"team":"x","n":2},{"team":"y","n":2},{"team":"z","n":1}]`},
		{"SELECT VALUE c.age FROM c GROUP BY c.age", `[25,30,"old"]`},
		{"SELECT c.age AS a, COUNT(1) AS n FROM c GROUP BY c.age", `[{"n":1},{"a":25,"n":1},{"a":30,"n":2},{"a":"old","n":1}]`},
		{"SELECT c.pk, c.team, COUNT(1) AS n FROM c GROUP BY c.pk, c.team", `[{"pk":"a","team":"x","n":1},{"pk":"a","team":"y","n":1},{"pk":"b","team":"x","n":1},{"pk":"b","team":"z","n":1},{"pk":"c","team":"y","n":1}]`},
		{"SELECT UPPER(c.team) AS t, SUM(c.age) AS s FROM c WHERE IS_NUMBER(c.age) GROUP BY c.team", `[{"t":"X","s":60},{"t":"Y","s":25}]`},
		{"SELECT c.team FROM c WHERE c.pk = 'none' GROUP BY c.team", `[]`},
		// JOIN
		{"SELECT c.id, t AS tag FROM c JOIN t IN c.tags", `[{"id":"1","tag":"go"},{"id":"1","tag":"db"},{"id":"2","tag":"db"},{"id":"5","tag":"go"}]`},
		{"SELECT VALUE c.id FROM c JOIN t IN c.tags WHERE t = 'go'", `["1","5"]`},
		{"SELECT VALUE t FROM c JOIN t IN c.tags JOIN u IN c.tags WHERE c.id = '1'", `["go","go","db","db"]`},
		{"SELECT VALUE COUNT(1) FROM c JOIN t IN c.tags", `[4]`},
		// FROM forms
		{"SELECT * FROM c IN c.tags", `["go","db","db","go"]`},
		{"SELECT VALUE t FROM t IN c.tags WHERE t != 'db'", `["go","go"]`},
		{"SELECT * FROM c.address", `[{"city":"Oslo","zip":"0150"}]`},
		{"SELECT a.city FROM c.address a", `[{"city":"Oslo"}]`},
		{"SELECT VALUE x FROM c.tags[0] x", `["go","db","go"]`},
		{"SELECT VALUE address.zip FROM root.address", `["0150"]`},
		// no FROM
		{"SELECT 1 AS one, 'a' || 'b' AS ab", `[{"one":1,"ab":"ab"}]`},
		{"SELECT VALUE 1 WHERE false", `[]`},
		{"SELECT VALUE [1, undefined, 2]", `[[1,2]]`},
	}
	for _, tt := range tests {
		if got := run(t, tt.q, in); got != tt.want {
			t.Errorf("%s\n got %s\nwant %s", tt.q, got, tt.want)
		}
	}
}

// TestAggregateBaseline replays the mixed-type aggregate cases the .NET
// SDK's emulator tests record against the service
// (AggregateQueryTests.AggregateMixedTypes_baseline.xml): empty
// <Aggregation/> there is [] here.
func TestAggregateBaseline(t *testing.T) {
	var all []string
	for i := 0; i < 3; i++ {
		all = append(all,
			fmt.Sprintf(`{"key":"doubleOnly","field":%d}`, 10+i),
			fmt.Sprintf(`{"key":"stringOnly","field":"s%d"}`, i),
			fmt.Sprintf(`{"key":"boolOnly","field":%v}`, i%2 == 0),
			`{"key":"nullOnly","field":null}`,
			`{"key":"objectOnlyKey","field":{}}`,
			`{"key":"arrayOnlyKey","field":[]}`)
	}
	all = append(all, `{"key":"undefinedKey"}`)
	in := docs(t, "["+joinStrings(all)+"]")
	want := map[string]map[string]string{
		"AVG":   {"doubleOnly": "[11]", "stringOnly": "[]", "boolOnly": "[]", "nullOnly": "[]", "objectOnlyKey": "[]", "arrayOnlyKey": "[]", "undefinedKey": "[]"},
		"MIN":   {"doubleOnly": "[10]", "stringOnly": `["s0"]`, "boolOnly": "[false]", "nullOnly": "[null]", "objectOnlyKey": "[]", "arrayOnlyKey": "[]", "undefinedKey": "[]"},
		"MAX":   {"doubleOnly": "[12]", "stringOnly": `["s2"]`, "boolOnly": "[true]", "nullOnly": "[null]", "objectOnlyKey": "[]", "arrayOnlyKey": "[]", "undefinedKey": "[]"},
		"SUM":   {"doubleOnly": "[33]", "stringOnly": "[]", "boolOnly": "[]", "nullOnly": "[]", "objectOnlyKey": "[]", "arrayOnlyKey": "[]", "undefinedKey": "[0]"},
		"COUNT": {"doubleOnly": "[3]", "stringOnly": "[3]", "boolOnly": "[3]", "nullOnly": "[3]", "objectOnlyKey": "[3]", "arrayOnlyKey": "[3]", "undefinedKey": "[0]"},
	}
	for op, byKey := range want {
		for key, w := range byKey {
			q := fmt.Sprintf(`SELECT VALUE %s (c.field) FROM c WHERE c.key = "%s"`, op, key)
			if got := run(t, q, in); got != w {
				t.Errorf("%s = %s, want %s", q, got, w)
			}
		}
	}
	// Mixed primitives: MIN is null, MAX the greatest string; with an
	// object among them, undefined.
	for q, w := range map[string]string{
		"SELECT VALUE MIN(c.field) FROM c WHERE IS_PRIMITIVE(c.field)":                                 "[null]",
		"SELECT VALUE MAX(c.field) FROM c WHERE IS_PRIMITIVE(c.field)":                                 `["s2"]`,
		"SELECT VALUE MIN(c.field) FROM c WHERE IS_DEFINED(c.field)":                                   "[]",
		"SELECT VALUE COUNT(c.field) FROM c WHERE IS_DEFINED(c.field)":                                 "[18]",
		"SELECT VALUE MAX(c.field) FROM c WHERE c.key IN ('oneObject', 'doubleOnly', 'objectOnlyKey')": "[]",
	} {
		if got := run(t, q, in); got != w {
			t.Errorf("%s = %s, want %s", q, got, w)
		}
	}
}

func joinStrings(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += ","
		}
		out += x
	}
	return out
}

func TestOrderByTieBreak(t *testing.T) {
	// Ties keep storage order ascending and reverse it when the first key
	// is descending, as the service breaks ties by document id.
	in := docs(t, `[{"id":"a","k":1},{"id":"b","k":1},{"id":"c","k":0}]`)
	if got := run(t, "SELECT VALUE c.id FROM c ORDER BY c.k", in); got != `["c","a","b"]` {
		t.Errorf("asc = %s", got)
	}
	if got := run(t, "SELECT VALUE c.id FROM c ORDER BY c.k DESC", in); got != `["b","a","c"]` {
		t.Errorf("desc = %s", got)
	}
}

func TestParameters(t *testing.T) {
	in := docs(t, people)
	tests := []struct {
		q    string
		ps   []Param
		want string
	}{
		{"SELECT VALUE c.id FROM c WHERE c.name = @n", params("@n", `"Cid"`), `["3"]`},
		{"SELECT VALUE c.id FROM c WHERE c.age = @a AND c.team = @t", params("@t", `"x"`, "@a", `30`, "@unused", `1`), `["1","3"]`},
		{"SELECT VALUE c.id FROM c WHERE ARRAY_CONTAINS(@ids, c.id)", params("@ids", `["2","4"]`), `["2","4"]`},
		{"SELECT VALUE c.id FROM c WHERE c.address = @o", params("@o", `{"zip":"0150","city":"Oslo"}`), `["1"]`},
		{"SELECT TOP @n VALUE c.id FROM c", params("@n", `2`), `["1","2"]`},
		{"SELECT VALUE c.id FROM c OFFSET @o LIMIT @l", params("@o", `3`, "@l", `1`), `["4"]`},
		{"SELECT VALUE c.id FROM c WHERE c.name = @n", nil, "error: Identifier '@n' could not be resolved."},
		{"SELECT VALUE c.id FROM c WHERE c.name = @N", params("@n", `"Ann"`), "error: Identifier '@N' could not be resolved."},
		{"SELECT TOP @n VALUE c.id FROM c", params("@n", `"2"`), "error: The count value provided for a TOP, OFFSET or LIMIT clause must be a non-negative 32-bit integer."},
		{"SELECT VALUE c.id FROM c OFFSET @o LIMIT 1", params("@o", `-1`), "error: The count value provided for a TOP, OFFSET or LIMIT clause must be a non-negative 32-bit integer."},
		{"SELECT VALUE @x FROM c WHERE c.id = '1'", params("@x", `nope`), "error: The value of parameter '@x' is not valid JSON."},
		{"SELECT VALUE @x FROM c WHERE c.id = '1'", params("@x", `null`), `[null]`},
	}
	for _, tt := range tests {
		if got := run(t, tt.q, in, tt.ps...); got != tt.want {
			t.Errorf("%s %v\n got %s\nwant %s", tt.q, tt.ps, got, tt.want)
		}
	}
	q, _ := Parse("SELECT * FROM c WHERE c.a = @p")
	_, err := q.Bind(nil)
	var se *SyntaxError
	if !errors.As(err, &se) || se.Start != 28 || se.End != 30 {
		t.Errorf("missing parameter error = %#v", err)
	}
}

func TestMatch(t *testing.T) {
	in := docs(t, people)
	q, err := Parse("SELECT c.id, c.age FROM c WHERE c.age >= @min")
	if err != nil {
		t.Fatal(err)
	}
	b, err := q.Bind(params("@min", `30`))
	if err != nil {
		t.Fatal(err)
	}
	var got []Value
	for _, d := range in {
		v, ok, err := b.Match(d)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			got = append(got, v)
		}
	}
	if s := resultsJSON(got); s != `[{"id":"1","age":30},{"id":"3","age":30}]` {
		t.Errorf("Match results = %s", s)
	}

	// SELECT * returns the document itself, untouched.
	star, _ := Parse("SELECT * FROM c")
	sb, _ := star.Bind(nil)
	v, ok, _ := sb.Match(in[0])
	if !ok || v.String() != in[0].String() {
		t.Errorf("SELECT * Match = %s", v)
	}

	join, _ := Parse("SELECT VALUE t FROM c JOIN t IN c.tags")
	jb, _ := join.Bind(nil)
	if _, _, err := jb.Match(in[0]); !errors.Is(err, ErrJoin) {
		t.Errorf("Match on JOIN = %v", err)
	}
	all, err := jb.MatchAppend(nil, in[0])
	if err != nil || resultsJSON(all) != `["go","db"]` {
		t.Errorf("MatchAppend = %s, %v", resultsJSON(all), err)
	}
	for _, text := range []string{"SELECT * FROM c ORDER BY c.id", "SELECT VALUE COUNT(1) FROM c", "SELECT DISTINCT c.a FROM c", "SELECT 1"} {
		q, _ := Parse(text)
		b, _ := q.Bind(nil)
		if _, _, err := b.Match(in[0]); !errors.Is(err, ErrNotStreamable) {
			t.Errorf("Match(%s) = %v", text, err)
		}
		if _, err := b.MatchAppend(nil, in[0]); !errors.Is(err, ErrNotStreamable) {
			t.Errorf("MatchAppend(%s) = %v", text, err)
		}
	}
}

func TestTopOffsetLimitAccessors(t *testing.T) {
	q, _ := Parse("SELECT TOP @t * FROM c OFFSET 5 LIMIT @l")
	b, err := q.Bind(params("@t", "7", "@l", "9"))
	if err != nil {
		t.Fatal(err)
	}
	if b.Top() != 7 {
		t.Errorf("Top = %d", b.Top())
	}
	if o, l := b.OffsetLimit(); o != 5 || l != 9 {
		t.Errorf("OffsetLimit = %d %d", o, l)
	}
	q, _ = Parse("SELECT * FROM c")
	b, _ = q.Bind(nil)
	if o, l := b.OffsetLimit(); b.Top() != -1 || o != 0 || l != -1 {
		t.Errorf("absent: top %d offset %d limit %d", b.Top(), o, l)
	}
}

func TestConcurrentUse(t *testing.T) {
	in := docs(t, people)
	q, _ := Parse("SELECT c.team, COUNT(1) AS n FROM c WHERE c.age > @a GROUP BY c.team")
	b, _ := q.Bind(params("@a", "1"))
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 50; j++ {
				out, _ := b.Run(slices.Values(in))
				if got := resultsJSON(out); got != `[{"team":"x","n":2},{"team":"y","n":1}]` {
					t.Errorf("got %s", got)
					return
				}
			}
		}()
	}
	wg.Wait()
}
