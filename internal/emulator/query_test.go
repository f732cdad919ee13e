package emulator_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/data/azcosmos"
)

// queryFixture is a container of 5 physical partitions holding items across
// 20 logical partitions: pk "p<i mod 20>", n = i, cat "x" for even i.
type queryFixture struct {
	*env
	c     *azcosmos.ContainerClient
	total int
}

func newQueryFixture(t *testing.T) *queryFixture {
	t.Helper()
	e := newEnv(t)
	c := e.container(t, "q", 30000)
	const total = 200
	for i := 0; i < total; i++ {
		pk := fmt.Sprintf("p%d", i%20)
		cat := "y"
		if i%2 == 0 {
			cat = "x"
		}
		upsert(t, c, pk, doc{"id": fmt.Sprintf("i%03d", i), "pk": pk, "n": i, "cat": cat, "tags": []string{cat, pk}})
	}
	return &queryFixture{env: e, c: c, total: total}
}

// ids decodes items and returns their ids.
func ids(t *testing.T, items [][]byte) []string {
	t.Helper()
	out := make([]string, 0, len(items))
	for _, b := range items {
		id, _ := decodeDoc(t, b)["id"].(string)
		out = append(out, id)
	}
	return out
}

func TestQuerySinglePartition(t *testing.T) {
	f := newQueryFixture(t)
	p1 := azcosmos.NewPartitionKeyString("p1") // n = 1, 21, 41, ..., 181
	for _, tc := range []struct {
		name   string
		query  string
		params []azcosmos.QueryParameter
		want   string // the results, JSON
	}{
		{"value ids ordered", "SELECT VALUE c.id FROM c ORDER BY c.n", nil,
			`["i001","i021","i041","i061","i081","i101","i121","i141","i161","i181"]`},
		{"projection", "SELECT c.id, c.n FROM c WHERE c.n = 21", nil, `[{"id":"i021","n":21}]`},
		{"and", "SELECT VALUE c.n FROM c WHERE c.n > 50 AND c.n < 130 ORDER BY c.n", nil, `[61,81,101,121]`},
		{"or", "SELECT VALUE c.n FROM c WHERE c.n = 1 OR c.n = 181 ORDER BY c.n", nil, `[1,181]`},
		{"in", "SELECT VALUE c.n FROM c WHERE c.id IN ('i041', 'i061', 'nope') ORDER BY c.n", nil, `[41,61]`},
		{"parameters", "SELECT VALUE c.n FROM c WHERE c.n >= @lo AND c.cat = @cat ORDER BY c.n", []azcosmos.QueryParameter{
			{Name: "@lo", Value: 100}, {Name: "@cat", Value: "y"}}, `[101,121,141,161,181]`},
		{"count", "SELECT VALUE COUNT(1) FROM c", nil, `[10]`},
		{"count filtered", "SELECT VALUE COUNT(1) FROM c WHERE c.n > 100", nil, `[5]`},
		{"order by desc", "SELECT VALUE c.n FROM c ORDER BY c.n DESC", nil, `[181,161,141,121,101,81,61,41,21,1]`},
		{"top", "SELECT TOP 3 VALUE c.n FROM c ORDER BY c.n DESC", nil, `[181,161,141]`},
		{"offset limit", "SELECT VALUE c.n FROM c ORDER BY c.n OFFSET 2 LIMIT 3", nil, `[41,61,81]`},
		{"array contains", "SELECT VALUE c.id FROM c WHERE ARRAY_CONTAINS(c.tags, 'p1') AND c.n < 30 ORDER BY c.n", nil, `["i001","i021"]`},
		{"empty", "SELECT * FROM c WHERE c.n = 2", nil, `[]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			items := queryAll(t, f.c, tc.query, p1, &azcosmos.QueryOptions{QueryParameters: tc.params})
			got := "[" + string(joinJSON(items)) + "]"
			var g, w any
			if err := json.Unmarshal([]byte(got), &g); err != nil {
				t.Fatal(err)
			}
			_ = json.Unmarshal([]byte(tc.want), &w)
			if !reflect.DeepEqual(g, w) {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}

	t.Run("select star", func(t *testing.T) {
		items := queryAll(t, f.c, "SELECT * FROM c", p1, nil)
		if len(items) != 10 {
			t.Fatalf("%d items, want 10", len(items))
		}
		for _, b := range items {
			d := decodeDoc(t, b)
			if d["pk"] != "p1" || d["_rid"] == nil || d["_etag"] == nil || d["_ts"] == nil {
				t.Errorf("item %s", b)
			}
		}
	})

	t.Run("paged order by", func(t *testing.T) {
		pager := f.c.NewQueryItemsPager("SELECT VALUE c.n FROM c ORDER BY c.n", p1, &azcosmos.QueryOptions{PageSizeHint: 3})
		var all []string
		pages := 0
		for pager.More() {
			page, err := pager.NextPage(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Items) > 3 {
				t.Errorf("page of %d items with a page size of 3", len(page.Items))
			}
			pages++
			for _, b := range page.Items {
				all = append(all, string(b))
			}
		}
		if pages != 4 || strings.Join(all, ",") != "1,21,41,61,81,101,121,141,161,181" {
			t.Errorf("%d pages: %v", pages, all)
		}
	})
}

func joinJSON(items [][]byte) []byte {
	var b []byte
	for i, it := range items {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, it...)
	}
	return b
}

// A filter on the partition key routes a query without a partition key to
// that key's partition, where ORDER BY and aggregates are served.
func TestQueryPinnedByFilter(t *testing.T) {
	f := newQueryFixture(t)
	items := queryAll(t, f.c, "SELECT VALUE c.n FROM c WHERE c.pk = 'p2' ORDER BY c.n DESC", azcosmos.NewPartitionKey(), nil)
	if got := string(joinJSON(items)); got != "182,162,142,122,102,82,62,42,22,2" {
		t.Errorf("got %s", got)
	}
	items = queryAll(t, f.c, "SELECT VALUE COUNT(1) FROM c WHERE c.pk = @pk", azcosmos.NewPartitionKey(),
		&azcosmos.QueryOptions{QueryParameters: []azcosmos.QueryParameter{{Name: "@pk", Value: "p3"}}})
	if got := string(joinJSON(items)); got != "10" {
		t.Errorf("count of p3: %s", got)
	}
}

func TestQueryCountPerRange(t *testing.T) {
	f := newQueryFixture(t)
	ranges := readPKRanges(t, f.srv, "q")
	if len(ranges) != 5 {
		t.Fatalf("%d ranges, want 5", len(ranges))
	}
	sum, nonEmpty := 0, 0
	for _, r := range ranges {
		ctx := withHeader(context.Background(), "x-ms-documentdb-partitionkeyrangeid", r.ID)
		items, err := tryQueryAll(ctx, f.c, "SELECT VALUE COUNT(1) FROM c", azcosmos.NewPartitionKey(), nil)
		if err != nil {
			t.Fatalf("range %s: %v", r.ID, err)
		}
		var n int
		if len(items) != 1 || json.Unmarshal(items[0], &n) != nil {
			t.Fatalf("range %s: %q", r.ID, items)
		}
		sum += n
		if n > 0 {
			nonEmpty++
		}
	}
	if sum != f.total {
		t.Errorf("per-range counts sum to %d, want %d", sum, f.total)
	}
	if nonEmpty < 2 {
		t.Errorf("only %d of 5 ranges hold items; the keys should spread", nonEmpty)
	}
	// A range id that does not exist.
	ctx := withHeader(context.Background(), "x-ms-documentdb-partitionkeyrangeid", "99")
	_, err := tryQueryAll(ctx, f.c, "SELECT VALUE COUNT(1) FROM c", azcosmos.NewPartitionKey(), nil)
	if err == nil {
		t.Error("a query on range 99 succeeded")
	}
}

func TestQueryCrossPartition(t *testing.T) {
	f := newQueryFixture(t)
	ctx := context.Background()
	all := azcosmos.NewPartitionKey()

	t.Run("fan-out with paging", func(t *testing.T) {
		pager := f.c.NewQueryItemsPager("SELECT * FROM c", all, &azcosmos.QueryOptions{PageSizeHint: 7})
		seen := map[string]int{}
		pages := 0
		for pager.More() {
			page, err := pager.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			pages++
			if len(page.Items) > 7 {
				t.Errorf("page of %d items, page size 7", len(page.Items))
			}
			for _, id := range ids(t, page.Items) {
				seen[id]++
			}
		}
		checkEachOnce(t, seen, f.total)
		if pages < f.total/7 {
			t.Errorf("%d pages for %d items of page size 7", pages, f.total)
		}
	})

	t.Run("resume from a continuation token", func(t *testing.T) {
		opts := &azcosmos.QueryOptions{PageSizeHint: 30}
		first, err := f.c.NewQueryItemsPager("SELECT * FROM c WHERE c.cat = 'x'", all, opts).NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if first.ContinuationToken == nil {
			t.Fatal("first page of a larger result has no continuation")
		}
		seen := map[string]int{}
		for _, id := range ids(t, first.Items) {
			seen[id]++
		}
		rest := queryAll(t, f.c, "SELECT * FROM c WHERE c.cat = 'x'", all,
			&azcosmos.QueryOptions{PageSizeHint: 30, ContinuationToken: first.ContinuationToken})
		for _, id := range ids(t, rest) {
			seen[id]++
		}
		checkEachOnce(t, seen, f.total/2)
	})

	t.Run("projection and filter", func(t *testing.T) {
		items := queryAll(t, f.c, "SELECT VALUE c.n FROM c WHERE c.n < 10 OR c.n IN (150, 199)", all, nil)
		var ns []int
		for _, b := range items {
			var n int
			_ = json.Unmarshal(b, &n)
			ns = append(ns, n)
		}
		sort.Ints(ns)
		if fmt.Sprint(ns) != "[0 1 2 3 4 5 6 7 8 9 150 199]" {
			t.Errorf("got %v", ns)
		}
	})

	for _, q := range []string{
		"SELECT * FROM c ORDER BY c.n",
		"SELECT VALUE COUNT(1) FROM c",
		"SELECT TOP 5 * FROM c",
		"SELECT * FROM c OFFSET 1 LIMIT 2",
		"SELECT DISTINCT c.cat FROM c",
		"SELECT c.cat, COUNT(1) AS n FROM c GROUP BY c.cat",
	} {
		t.Run("gateway refuses "+q, func(t *testing.T) {
			_, err := tryQueryAll(ctx, f.c, q, all, nil)
			body := wantStatus(t, err, http.StatusBadRequest)
			if !strings.Contains(body.Message, "cross partition query can not be directly served by the gateway") {
				t.Errorf("message %q", body.Message)
			}
			if sub := responseError(t, err).RawResponse.Header.Get("x-ms-substatus"); sub != "1004" {
				t.Errorf("x-ms-substatus %q, want 1004", sub)
			}
		})
	}

	t.Run("cross partition disabled", func(t *testing.T) {
		off := false
		_, err := tryQueryAll(ctx, f.c, "SELECT * FROM c", all, &azcosmos.QueryOptions{EnableCrossPartitionQuery: &off})
		wantStatus(t, err, http.StatusBadRequest)
	})
}

// checkEachOnce checks that seen holds n ids, each seen once.
func checkEachOnce(t *testing.T, seen map[string]int, n int) {
	t.Helper()
	if len(seen) != n {
		t.Errorf("%d distinct items, want %d", len(seen), n)
	}
	for id, k := range seen {
		if k != 1 {
			t.Errorf("item %s seen %d times", id, k)
		}
	}
}

func TestQueryMetricsAndErrors(t *testing.T) {
	f := newQueryFixture(t)
	ctx := context.Background()
	p1 := azcosmos.NewPartitionKeyString("p1")

	page, err := f.c.NewQueryItemsPager("SELECT * FROM c", p1, nil).NextPage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if page.QueryMetrics == nil || !strings.Contains(*page.QueryMetrics, "retrievedDocumentCount=") ||
		!strings.Contains(*page.QueryMetrics, "outputDocumentCount=10") {
		t.Errorf("query metrics %v", page.QueryMetrics)
	}
	if page.IndexMetrics != nil {
		t.Errorf("index metrics %q without asking", *page.IndexMetrics)
	}
	if page.RequestCharge <= 0 {
		t.Errorf("charge %v", page.RequestCharge)
	}

	page, err = f.c.NewQueryItemsPager("SELECT * FROM c", p1, &azcosmos.QueryOptions{PopulateIndexMetrics: true}).NextPage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if page.IndexMetrics == nil {
		t.Fatal("no index metrics when asked")
	}
	raw, err := base64.StdEncoding.DecodeString(*page.IndexMetrics)
	if err != nil || !json.Valid(raw) {
		t.Errorf("index metrics %q: not base64 JSON (%v)", *page.IndexMetrics, err)
	}

	for _, q := range []string{"SELEC * FROM c", "SELECT * FROM c WHERE", "SELECT * FROM c WHERE c.n = @missing"} {
		_, err := tryQueryAll(ctx, f.c, q, p1, nil)
		body := wantStatus(t, err, http.StatusBadRequest)
		msg, _, _ := strings.Cut(strings.TrimPrefix(body.Message, "Message: "), "\r\n")
		var list struct {
			Errors []struct {
				Severity string `json:"severity"`
				Message  string `json:"message"`
			} `json:"errors"`
		}
		if err := json.Unmarshal([]byte(msg), &list); err != nil || len(list.Errors) == 0 ||
			list.Errors[0].Severity != "Error" || list.Errors[0].Message == "" {
			t.Errorf("%q: message %q does not carry the service's errors list", q, body.Message)
		}
	}
}

// Query text over the service's limits is refused with a 400 before it is
// parsed; deep nesting would otherwise overflow the parser's stack and kill
// the process.
func TestQueryTextLimits(t *testing.T) {
	e := newEnv(t)
	c := e.container(t, "c", 0)
	ctx := context.Background()
	pk := azcosmos.NewPartitionKeyString("a")
	upsert(t, c, "a", doc{"id": "1", "pk": "a", "n": 1})
	for name, q := range map[string]string{
		"deep parentheses": "SELECT * FROM c WHERE " + strings.Repeat("(", 150000) + "true" + strings.Repeat(")", 150000),
		"deep arrays":      "SELECT * FROM c WHERE " + strings.Repeat("[", 150000) + strings.Repeat("]", 150000) + " = 1",
		"over 512 KB":      "SELECT * FROM c WHERE c.n = 1" + strings.Repeat(" ", 512*1024),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := tryQueryAll(ctx, c, q, pk, nil)
			body := wantStatus(t, err, http.StatusBadRequest)
			if !strings.Contains(body.Message, `"errors"`) {
				t.Errorf("message %q", body.Message)
			}
		})
	}
	// Nesting that real queries use, and brackets inside string literals, pass.
	q := "SELECT * FROM c WHERE " + strings.Repeat("(", 50) + "c.n = 1" + strings.Repeat(")", 50) + " AND c.id != '" + strings.Repeat("(", 2000) + "'"
	if items := queryAll(t, c, q, pk, nil); len(items) != 1 {
		t.Errorf("%d items", len(items))
	}
	var p azcosmos.PatchOperations
	p.SetCondition("from c where " + strings.Repeat("(", 150000) + "true" + strings.Repeat(")", 150000))
	p.AppendSet("/x", 1)
	_, err := c.PatchItem(ctx, pk, "1", p, nil)
	wantStatus(t, err, http.StatusBadRequest)
}
