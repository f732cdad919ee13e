package query

import (
	"strings"
	"testing"
)

// TestPlan: the plan's fields and rewritten queries follow the .NET SDK's
// QueryPlanBaselineTests, and every rewritten query parses once the SDK has
// replaced the ORDER BY filter placeholder.
func TestPlan(t *testing.T) {
	for _, tc := range []struct {
		query   string
		rewrite string // "" when the original query serves
		check   func(t *testing.T, p PlanInfo)
	}{
		{"SELECT * FROM c", "", func(t *testing.T, p PlanInfo) {
			if len(p.OrderBy)+len(p.Aggregates) != 0 || p.DistinctType != "None" || p.Top != nil {
				t.Errorf("plain query: %+v", p)
			}
		}},
		{"SELECT * FROM Root r ORDER BY r.blah DESC",
			"SELECT r._rid, [{\"item\": r[\"blah\"]}] AS orderByItems, r AS payload\nFROM Root r\nWHERE ({documentdb-formattableorderbyquery-filter})\nORDER BY r[\"blah\"] DESC",
			func(t *testing.T, p PlanInfo) {
				if len(p.OrderBy) != 1 || p.OrderBy[0] != "Descending" {
					t.Errorf("orderBy %v", p.OrderBy)
				}
			}},
		{"SELECT TOP 5 VALUE c.a FROM c WHERE c.x > 1 ORDER BY c.a",
			"SELECT TOP 5 c._rid, [{\"item\": c[\"a\"]}] AS orderByItems, c[\"a\"] AS payload\nFROM c\nWHERE ((c[\"x\"] > 1) AND ((" + OrderByFilterPlaceholder + ") AND IS_DEFINED(c[\"a\"])))\nORDER BY c[\"a\"]",
			func(t *testing.T, p PlanInfo) {
				if p.Top == nil || *p.Top != 5 || !p.HasSelectValue {
					t.Errorf("top/value: %+v", p)
				}
			}},
		{"SELECT * FROM c OFFSET 1 LIMIT 2", "SELECT *\nFROM c\nOFFSET 0 LIMIT 3", func(t *testing.T, p PlanInfo) {
			if p.Offset == nil || *p.Offset != 1 || p.Limit == nil || *p.Limit != 2 {
				t.Errorf("offset/limit: %+v", p)
			}
		}},
		{"SELECT VALUE COUNT(1) FROM c", "SELECT VALUE [{\"item\": COUNT(1)}]\nFROM c", func(t *testing.T, p PlanInfo) {
			if len(p.Aggregates) != 1 || p.Aggregates[0] != "Count" {
				t.Errorf("aggregates %v", p.Aggregates)
			}
		}},
		{"SELECT VALUE AVG(c.n) FROM c", "SELECT VALUE [{\"item\": {\"sum\": SUM(c[\"n\"]), \"count\": COUNT(c[\"n\"])}}]\nFROM c", nil},
		{"SELECT VALUE MIN(c.n) FROM c", "SELECT VALUE [{\"item\": MIN(c[\"n\"]), \"item2\": {\"min\": MIN(c[\"n\"]), \"count\": COUNT(c[\"n\"])}}]\nFROM c", nil},
		{"SELECT DISTINCT c.a FROM c", "", func(t *testing.T, p PlanInfo) {
			if p.DistinctType != "Unordered" {
				t.Errorf("distinct %q", p.DistinctType)
			}
		}},
		{"SELECT DISTINCT VALUE c.a FROM c ORDER BY c.a", "SELECT c._rid, [{\"item\": c[\"a\"]}] AS orderByItems, c[\"a\"] AS payload\nFROM c\nWHERE ((" + OrderByFilterPlaceholder + ") AND IS_DEFINED(c[\"a\"]))\nORDER BY c[\"a\"]", func(t *testing.T, p PlanInfo) {
			if p.DistinctType != "Ordered" {
				t.Errorf("distinct %q", p.DistinctType)
			}
		}},
		{"SELECT c.cat, COUNT(1) AS n FROM c GROUP BY c.cat",
			"SELECT [{\"item\": c[\"cat\"]}] AS groupByItems, {\"cat\": c[\"cat\"], \"n\": {\"item\": COUNT(1)}} AS payload\nFROM c\nGROUP BY c[\"cat\"]",
			func(t *testing.T, p PlanInfo) {
				if p.GroupByAliasToAggregateType["cat"] != nil || p.GroupByAliasToAggregateType["n"] == nil || *p.GroupByAliasToAggregateType["n"] != "Count" {
					t.Errorf("alias map %v", p.GroupByAliasToAggregateType)
				}
				if len(p.GroupByExpressions) != 1 || len(p.GroupByAliases) != 2 {
					t.Errorf("group by %v aliases %v", p.GroupByExpressions, p.GroupByAliases)
				}
			}},
		{"SELECT SUM(c.n) FROM c", "SELECT {\"$1\": {\"item\": SUM(c[\"n\"])}} AS payload\nFROM c", nil},
	} {
		t.Run(tc.query, func(t *testing.T) {
			q, err := Parse(tc.query)
			if err != nil {
				t.Fatal(err)
			}
			b, err := q.Bind(nil)
			if err != nil {
				t.Fatal(err)
			}
			p, err := b.Plan()
			if err != nil {
				t.Fatal(err)
			}
			if p.RewrittenQuery != tc.rewrite {
				t.Errorf("rewritten query\n got %q\nwant %q", p.RewrittenQuery, tc.rewrite)
			}
			if p.RewrittenQuery != "" {
				if _, err := Parse(strings.Replace(p.RewrittenQuery, OrderByFilterPlaceholder, "true", 1)); err != nil {
					t.Errorf("rewritten query does not parse: %v", err)
				}
			}
			if tc.check != nil {
				tc.check(t, p)
			}
		})
	}
}
