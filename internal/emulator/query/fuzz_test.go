package query

import (
	"encoding/json"
	"slices"
	"testing"
)

// FuzzQuery checks that Parse, Bind, Run and Match never panic on arbitrary
// query text and documents (even malformed JSON read through Raw), and
// that every result is valid JSON.
func FuzzQuery(f *testing.F) {
	seeds := []string{
		"SELECT * FROM c WHERE c.pk = @p AND c.n > 5",
		"SELECT VALUE COUNT(1) FROM c",
		"SELECT c.a, c.b.c, c.arr[0] FROM c ORDER BY c.a DESC, c.b",
		"SELECT DISTINCT TOP 3 VALUE c.a FROM c",
		"SELECT c.a, COUNT(1) AS n, SUM(c.n), AVG(c.n), MIN(c.s), MAX(c.s) FROM c GROUP BY c.a",
		"SELECT t FROM c JOIN t IN c.arr WHERE t > 1 OFFSET 1 LIMIT 2",
		"SELECT VALUE {'x': [c.a ?? 1, c.b ? 2 : 3], 'y': c.s || 'z'} FROM c",
		"SELECT * FROM c WHERE c.s LIKE '%a[b-c]_' AND c.n BETWEEN 1 AND 9 AND c.a NOT IN (1, 'x')",
		"SELECT VALUE CONCAT(LOWER(c.s), TOSTRING(c.n), SUBSTRING(c.s, 1, 2)) FROM c",
		"SELECT VALUE ARRAY_SLICE(ARRAY_CONCAT(c.arr, [1]), -1) FROM c",
		"SELECT * FROM c IN c.arr",
		"SELECT 1 + 2 * 3",
	}
	docs := []string{
		`{"id":"1","pk":"a","n":7,"a":1,"b":{"c":[1,2]},"s":"abc","arr":[1,2,3]}`,
		`{"id":"2","pk":"b","n":"x","a":"1","arr":{},"s":null}`,
		`{"a":`,
		`[1,2]`,
	}
	for _, q := range seeds {
		for _, d := range docs {
			f.Add(q, d)
		}
	}
	fixed := []Value{Raw([]byte(docs[0])), Raw([]byte(docs[1]))}
	ps := params("@p", `"a"`, "@n", `2`, "@s", `"x"`, "@o", `{"a":[1]}`)
	f.Fuzz(func(t *testing.T, text, doc string) {
		q, err := Parse(text)
		if err != nil {
			if _, ok := err.(*SyntaxError); !ok {
				t.Fatalf("Parse error %T: %v", err, err)
			}
			return
		}
		b, err := q.Bind(ps)
		if err != nil {
			return
		}
		in := append(slices.Clone(fixed), Raw([]byte(doc)))
		out, err := b.Run(slices.Values(in))
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		check := func(v Value) {
			if !v.IsDefined() {
				t.Fatalf("undefined result for %q", text)
			}
			if j := v.AppendJSON(nil); !json.Valid(j) {
				t.Fatalf("invalid JSON %s for %q over %q", j, text, doc)
			}
		}
		for _, v := range out {
			check(v)
		}
		if q.Shape().Streamable() {
			for _, d := range in {
				res, err := b.MatchAppend(nil, d)
				if err != nil {
					t.Fatalf("MatchAppend: %v", err)
				}
				for _, v := range res {
					check(v)
				}
			}
		}
		b.PartitionKeyValues([][]string{{"pk"}, {"a", "b"}})
		b.IDCandidates([][]string{{"pk"}})
	})
}
