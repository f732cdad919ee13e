package emulator_test

import (
	"encoding/json"
	"net/http"
	"testing"
)

// TestQueryPlanRequest: a POST with x-ms-cosmos-is-query-plan-request: True
// is answered with a PartitionedQueryExecutionInfo, uncharged and without
// running the query.
func TestQueryPlanRequest(t *testing.T) {
	e := newEnv(t)
	c := e.container(t, "c", 0)
	for i := 0; i < 5; i++ {
		upsert(t, c, "a", doc{"id": string(rune('a' + i)), "pk": "a", "n": i})
	}
	before, err := e.srv.ContainerMetrics("db", "c")
	if err != nil {
		t.Fatal(err)
	}
	res := rawDo(t, e.srv, http.MethodPost, "/dbs/db/colls/c/docs", map[string]string{
		"x-ms-cosmos-is-query-plan-request":    "True",
		"x-ms-cosmos-query-version":            "1.4",
		"x-ms-cosmos-supported-query-features": "Aggregate,Distinct,MultipleOrderBy,OffsetAndLimit,OrderBy,Top,CompositeAggregate,GroupBy,MultipleAggregates,NonStreamingOrderBy",
		"Content-Type":                         "application/query+json",
	}, []byte(`{"query":"SELECT TOP 2 * FROM c ORDER BY c.n DESC"}`))
	if res.status != http.StatusOK {
		t.Fatalf("plan: status %d %s", res.status, res.body)
	}
	var plan struct {
		Version   int `json:"partitionedQueryExecutionInfoVersion"`
		QueryInfo struct {
			Top            *int     `json:"top"`
			OrderBy        []string `json:"orderBy"`
			RewrittenQuery string   `json:"rewrittenQuery"`
		} `json:"queryInfo"`
		QueryRanges []struct {
			Min, Max string
		} `json:"queryRanges"`
		Documents []any `json:"Documents"`
	}
	if err := json.Unmarshal(res.body, &plan); err != nil {
		t.Fatal(err)
	}
	if plan.Version != 2 || plan.QueryInfo.Top == nil || *plan.QueryInfo.Top != 2 || len(plan.QueryInfo.OrderBy) != 1 || plan.QueryInfo.OrderBy[0] != "Descending" || plan.QueryInfo.RewrittenQuery == "" {
		t.Errorf("plan: %s", res.body)
	}
	if len(plan.QueryRanges) != 1 || plan.QueryRanges[0].Min != "" || plan.QueryRanges[0].Max != "FF" {
		t.Errorf("query ranges: %+v", plan.QueryRanges)
	}
	if plan.Documents != nil {
		t.Errorf("a plan request returned documents: %s", res.body)
	}
	if ch := res.header.Get("x-ms-request-charge"); ch != "" && ch != "0" && ch != "0.00" {
		t.Errorf("plan request charged %s RU", ch)
	}
	after, _ := e.srv.ContainerMetrics("db", "c")
	if after.RU != before.RU {
		t.Errorf("plan request consumed RU: %v -> %v", before.RU, after.RU)
	}
}

// TestCrossPartitionErrorCarriesPlan: the 400 / 1004 answer to a
// cross-partition ORDER BY carries the plan in additionalErrorInfo, which
// the SDKs fall back on.
func TestCrossPartitionErrorCarriesPlan(t *testing.T) {
	e := newEnv(t)
	e.container(t, "c", 12000)
	res := rawDo(t, e.srv, http.MethodPost, "/dbs/db/colls/c/docs", map[string]string{
		"x-ms-documentdb-isquery":                    "true",
		"x-ms-documentdb-query-enablecrosspartition": "true",
		"Content-Type":                               "application/query+json",
	}, []byte(`{"query":"SELECT VALUE COUNT(1) FROM c"}`))
	if res.status != http.StatusBadRequest || res.header.Get("x-ms-substatus") != "1004" {
		t.Fatalf("status %d substatus %q, want 400 / 1004", res.status, res.header.Get("x-ms-substatus"))
	}
	var body struct {
		AdditionalErrorInfo string `json:"additionalErrorInfo"`
	}
	if err := json.Unmarshal(res.body, &body); err != nil {
		t.Fatal(err)
	}
	var plan struct {
		QueryInfo struct {
			Aggregates []string `json:"aggregates"`
		} `json:"queryInfo"`
	}
	if err := json.Unmarshal([]byte(body.AdditionalErrorInfo), &plan); err != nil || len(plan.QueryInfo.Aggregates) != 1 || plan.QueryInfo.Aggregates[0] != "Count" {
		t.Errorf("additionalErrorInfo %q: %v", body.AdditionalErrorInfo, err)
	}
}
