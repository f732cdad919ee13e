package emulator_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/data/azcosmos"

	"github.com/rekey-dev/rekey/internal/epk"
)

// TestEPKWindowOnFeedAndQuery: x-ms-start-epk / x-ms-end-epk with
// x-ms-read-key-type: EffectivePartitionKeyRange narrow a change-feed read
// and a query of one partition key range to that EPK window, which is how
// the SDKs read a hierarchical key prefix or part of a range.
func TestEPKWindowOnFeedAndQuery(t *testing.T) {
	e := newEnv(t)
	c := e.container(t, "h", 0, "/tenant", "/user")
	ctx := context.Background()
	want := 0
	for i := 0; i < 12; i++ {
		tenant := []string{"a", "b", "c"}[i%3]
		if tenant == "a" {
			want++
		}
		item := doc{"id": string(rune('A' + i)), "tenant": tenant, "user": string(rune('k' + i))}
		pk := azcosmos.NewPartitionKey().AppendString(tenant).AppendString(item["user"].(string))
		if _, err := c.UpsertItem(ctx, pk, mustJSON(t, item), nil); err != nil {
			t.Fatal(err)
		}
	}
	def := epk.Definition{Kind: epk.KindMultiHash, Version: 2, Paths: []string{"/tenant", "/user"}}
	r, err := epk.PrefixRange(def, []any{"a"})
	if err != nil {
		t.Fatal(err)
	}
	window := map[string]string{
		"x-ms-documentdb-partitionkeyrangeid": "0",
		"x-ms-start-epk":                      r.Min,
		"x-ms-end-epk":                        r.Max,
		"x-ms-read-key-type":                  "EffectivePartitionKeyRange",
	}
	feed := map[string]string{"A-IM": "Incremental Feed"}
	for k, v := range window {
		feed[k] = v
	}
	res := rawDo(t, e.srv, http.MethodGet, "/dbs/db/colls/h/docs", feed, nil)
	if res.status != http.StatusOK {
		t.Fatalf("change feed of prefix [a]: status %d %s", res.status, res.body)
	}
	if got := countTenant(t, res.body, "a"); got != want || len(docsOf(t, res.body)) != want {
		t.Errorf("change feed of prefix [a]: %d items, %d of tenant a; want %d, all of tenant a", len(docsOf(t, res.body)), got, want)
	}

	query := map[string]string{"x-ms-documentdb-isquery": "true", "Content-Type": "application/query+json"}
	for k, v := range window {
		query[k] = v
	}
	res = rawDo(t, e.srv, http.MethodPost, "/dbs/db/colls/h/docs", query, []byte(`{"query":"SELECT * FROM c"}`))
	if res.status != http.StatusOK {
		t.Fatalf("query of prefix [a]: status %d %s", res.status, res.body)
	}
	if got := len(docsOf(t, res.body)); got != want || countTenant(t, res.body, "a") != want {
		t.Errorf("query of prefix [a]: %d items, want %d of tenant a", got, want)
	}

	bad := map[string]string{"x-ms-documentdb-partitionkeyrangeid": "0", "A-IM": "Incremental Feed", "x-ms-start-epk": r.Min}
	if res := rawDo(t, e.srv, http.MethodGet, "/dbs/db/colls/h/docs", bad, nil); res.status != http.StatusBadRequest {
		t.Errorf("start EPK without end EPK: status %d, want 400", res.status)
	}
}

func docsOf(t *testing.T, body []byte) []doc {
	t.Helper()
	var page struct{ Documents []doc }
	if err := json.Unmarshal(body, &page); err != nil {
		t.Fatalf("decode page: %v: %s", err, truncate(body))
	}
	return page.Documents
}

func countTenant(t *testing.T, body []byte, tenant string) int {
	n := 0
	for _, d := range docsOf(t, body) {
		if d["tenant"] == tenant {
			n++
		}
	}
	return n
}

// TestFullFidelityFeedRefused: until all versions and deletes are kept, an
// A-IM: Full-Fidelity Feed read is answered 400, never as a latest-version feed.
func TestFullFidelityFeedRefused(t *testing.T) {
	e := newEnv(t)
	e.container(t, "c", 0)
	res := rawDo(t, e.srv, http.MethodGet, "/dbs/db/colls/c/docs", map[string]string{
		"A-IM": "Full-Fidelity Feed", "x-ms-documentdb-partitionkeyrangeid": "0",
		"x-ms-cosmos-changefeed-wire-format-version": "2021-09-15",
	}, nil)
	if res.status != http.StatusBadRequest {
		t.Fatalf("full-fidelity feed: status %d, want 400: %s", res.status, res.body)
	}
}
