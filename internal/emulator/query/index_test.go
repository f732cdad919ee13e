package query

import (
	"strings"
	"testing"
)

func bind(t *testing.T, text string, ps ...Param) *Bound {
	t.Helper()
	q, err := Parse(text)
	if err != nil {
		t.Fatalf("Parse(%q): %v", text, err)
	}
	b, err := q.Bind(ps)
	if err != nil {
		t.Fatalf("Bind(%q): %v", text, err)
	}
	return b
}

func valuesString(vs []Value) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = v.String()
	}
	return "[" + strings.Join(parts, ",") + "]"
}

func TestPartitionKeyValues(t *testing.T) {
	pk := [][]string{{"pk"}}
	hier := [][]string{{"parent"}, {"child"}}
	nested := [][]string{{"address", "zip"}}
	tests := []struct {
		q     string
		ps    []Param
		paths [][]string
		want  string
	}{
		{"select * from c where c.pk = '1' order by c.id", nil, pk, `["1"]`},
		{"SELECT * FROM c WHERE c['pk'] = @p", params("@p", `5`), pk, `[5]`},
		{"SELECT * FROM c WHERE @p = c.pk AND c.x > 1", params("@p", `true`), pk, `[true]`},
		{"SELECT * FROM c WHERE c.x > 1 AND (c.y = 2 AND c.pk = null)", nil, pk, `[null]`},
		{"SELECT * FROM c WHERE IS_NULL(c.pk)", nil, pk, `[null]`},
		{"SELECT * FROM c WHERE c.pk IN ('only')", nil, pk, `["only"]`},
		{"SELECT * FROM c WHERE c.pk IN ('a', 'b')", nil, pk, `[]`},
		{"SELECT * FROM c WHERE c.pk = 'a' OR c.pk = 'b'", nil, pk, `[]`},
		{"SELECT * FROM c WHERE c.pk != 'a'", nil, pk, `[]`},
		{"SELECT * FROM c WHERE c.pk = c.other", nil, pk, `[]`},
		{"SELECT * FROM c WHERE c.pk = [1]", nil, pk, `[]`},
		{"SELECT * FROM c WHERE c.pk.sub = 'a'", nil, pk, `[]`},
		{"SELECT * FROM c", nil, pk, `[]`},
		{"SELECT * FROM c WHERE c.parent = 'parent1'", nil, hier, `["parent1"]`},
		{"SELECT * FROM c WHERE c.child = 'c' AND c.parent = 'p'", nil, hier, `["p","c"]`},
		{"SELECT * FROM c WHERE c.child = 'c'", nil, hier, `[]`},
		{`SELECT * FROM c WHERE c["address"]["zip"] = @z`, params("@z", `"0150"`), nested, `["0150"]`},
		{"SELECT * FROM c WHERE c.address.zip = '1'", nil, nested, `["1"]`},
		{"SELECT * FROM r WHERE r.pk = 'x'", nil, pk, `["x"]`},
		{"SELECT * FROM c IN c.children WHERE c.pk = 'x'", nil, pk, `[]`},
		{"SELECT t FROM c JOIN t IN c.tags WHERE c.pk = 'x'", nil, pk, `["x"]`},
		{"SELECT t FROM c JOIN t IN c.tags WHERE t.pk = 'x'", nil, pk, `[]`},
	}
	for _, tt := range tests {
		got := valuesString(bind(t, tt.q, tt.ps...).PartitionKeyValues(tt.paths))
		if got != tt.want {
			t.Errorf("%s: PartitionKeyValues(%v) = %s, want %s", tt.q, tt.paths, got, tt.want)
		}
	}
}

func candidatesString(cs []Candidate, ok bool) string {
	if !ok {
		return "scan"
	}
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = c.ID
		if c.PartitionKey != nil {
			parts[i] += "@" + valuesString(c.PartitionKey)
		}
	}
	return strings.Join(parts, " ")
}

func TestIDCandidates(t *testing.T) {
	pk := [][]string{{"pk"}}
	hier := [][]string{{"tenant"}, {"user"}}
	tests := []struct {
		q     string
		ps    []Param
		paths [][]string
		want  string
	}{
		// The shapes ReadMany sends (azcosmos cosmos_query_builder.go).
		{"SELECT * FROM c WHERE c.id IN (@param_id0, @param_id1)", params("@param_id0", `"a"`, "@param_id1", `"b"`), pk, "a b"},
		{"SELECT * FROM c WHERE c.pk = @pk0 AND c.id IN (@param_id0, @param_id1)", params("@pk0", `"p"`, "@param_id0", `"a"`, "@param_id1", `"b"`), pk, `a@["p"] b@["p"]`},
		{"SELECT * FROM c WHERE c.tenant = @pk0 AND c.user = @pk1 AND c.id IN (@param_id0)", params("@pk0", `"t"`, "@pk1", `"u"`, "@param_id0", `"a"`), hier, `a@["t","u"]`},
		{"SELECT * FROM c WHERE IS_NULL(c.pk) AND c.id IN (@param_id0)", params("@param_id0", `"a"`), pk, `a@[null]`},
		{"SELECT * FROM c WHERE (c.id = @param_id0 AND c.pk = @param_pk00) OR (c.id = @param_id1 AND c.pk = @param_pk10)",
			params("@param_id0", `"a"`, "@param_pk00", `1`, "@param_id1", `"b"`, "@param_pk10", `"x"`), pk, `a@[1] b@["x"]`},
		{"SELECT * FROM c WHERE (c.id = @param_id0 AND IS_NULL(c.pk)) OR (c.id = @param_id1 AND c.pk = @param_pk10)",
			params("@param_id0", `"a"`, "@param_id1", `"b"`, "@param_pk10", `"x"`), pk, `a@[null] b@["x"]`},
		{`SELECT * FROM c WHERE (c.id = @param_id0 AND c["a"]["b"] = @param_pk00)`, params("@param_id0", `"a"`, "@param_pk00", `"z"`), [][]string{{"a", "b"}}, `a@["z"]`},
		// Other restricting filters.
		{"SELECT * FROM root r WHERE r.id = @id", params("@id", `"db1"`), nil, "db1"},
		{"SELECT * FROM c WHERE c.id = 'x' AND c.n > 1", nil, pk, "x"},
		{"SELECT * FROM c WHERE 'x' = c.id", nil, pk, "x"},
		{"SELECT * FROM c WHERE c.id = 'x' AND c.id = 'y'", nil, pk, ""},
		{"SELECT * FROM c WHERE c.id IN ('x', 'y') AND c.id = 'y'", nil, pk, "y"},
		{"SELECT * FROM c WHERE c.pk = 'p' AND (c.id = 'x' OR c.id = 'y')", nil, pk, `x@["p"] y@["p"]`},
		{"SELECT * FROM c WHERE c.id = 5", nil, pk, ""},
		{"SELECT * FROM c WHERE c.id IN ('a', 'a', 1)", nil, pk, "a"},
		// Filters that do not restrict ids: scan.
		{"SELECT * FROM c", nil, pk, "scan"},
		{"SELECT * FROM c WHERE c.pk = 'p'", nil, pk, "scan"},
		{"SELECT * FROM c WHERE c.id = 'x' OR c.n = 1", nil, pk, "scan"},
		{"SELECT * FROM c WHERE c.id != 'x'", nil, pk, "scan"},
		{"SELECT * FROM c WHERE c.id NOT IN ('x')", nil, pk, "scan"},
		{"SELECT * FROM c WHERE NOT (c.id = 'x')", nil, pk, "scan"},
		{"SELECT * FROM c WHERE c.id = c.other", nil, pk, "scan"},
		{"SELECT * FROM c WHERE c.sub.id = 'x'", nil, pk, "scan"},
		{"SELECT * FROM c IN c.children WHERE c.id = 'x'", nil, pk, "scan"},
	}
	for _, tt := range tests {
		got := candidatesString(bind(t, tt.q, tt.ps...).IDCandidates(tt.paths))
		if got != tt.want {
			t.Errorf("%s: IDCandidates = %q, want %q", tt.q, got, tt.want)
		}
	}
}

// TestIDCandidatesAgreeWithEvaluation checks the contract: every document
// the query matches is among the candidates.
func TestIDCandidatesAgreeWithEvaluation(t *testing.T) {
	in := docs(t, `[{"id":"a","pk":"p"},{"id":"b","pk":"q"},{"id":"c","pk":null},{"id":"d"}]`)
	for _, text := range []string{
		"SELECT * FROM c WHERE c.id IN ('a', 'b', 'z')",
		"SELECT * FROM c WHERE (c.id = 'a' AND c.pk = 'p') OR (c.id = 'c' AND IS_NULL(c.pk))",
		"SELECT * FROM c WHERE c.pk = 'q' AND c.id IN ('a', 'b')",
	} {
		b := bind(t, text)
		cands, ok := b.IDCandidates([][]string{{"pk"}})
		if !ok {
			t.Fatalf("%s: not restricted", text)
		}
		ids := map[string]bool{}
		for _, c := range cands {
			ids[c.ID] = true
		}
		for _, d := range in {
			if _, matched, _ := b.Match(d); matched {
				id, _ := d.Get("id").AsString()
				if !ids[id] {
					t.Errorf("%s: matched %s, not a candidate", text, id)
				}
			}
		}
	}
}
