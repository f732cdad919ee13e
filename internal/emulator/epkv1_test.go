package emulator_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/azcosmos"

	"github.com/rekey-dev/rekey/internal/epk"
)

// A container created without "version" hashes version 1 keys. Its ranges
// must be the service's (05C1DFFFFFFFFC for two partitions, number-encoded
// midpoints after a split) and each item must live in the range its service
// EPK falls in, because the SDKs that hash on the client (.NET, Java,
// JavaScript bulk) route by that EPK and get 410 / 1002 from any other.
func TestVersion1ContainerRouting(t *testing.T) {
	e := newEnv(t)
	tp := azcosmos.NewManualThroughputProperties(12_000)
	props := azcosmos.ContainerProperties{ID: "v1", PartitionKeyDefinition: azcosmos.PartitionKeyDefinition{Paths: []string{"/pk"}}}
	if _, err := e.db.CreateContainer(context.Background(), props, &azcosmos.CreateContainerOptions{ThroughputProperties: &tp}); err != nil {
		t.Fatal(err)
	}
	c, err := e.db.NewContainer("v1")
	if err != nil {
		t.Fatal(err)
	}
	def := epk.Definition{Paths: []string{"/pk"}}

	keys := []any{"p0", 2.0, nil}
	for i := 0; i < 40; i++ {
		keys = append(keys, fmt.Sprintf("k%d", i))
	}
	for i, k := range keys {
		pk := azcosmos.NullPartitionKey
		switch k := k.(type) {
		case string:
			pk = azcosmos.NewPartitionKeyString(k)
		case float64:
			pk = azcosmos.NewPartitionKeyNumber(k)
		}
		body := mustJSON(t, map[string]any{"id": fmt.Sprintf("d%d", i), "pk": k})
		if _, err := c.CreateItem(context.Background(), pk, body, nil); err != nil {
			t.Fatalf("create item with key %v: %v", k, err)
		}
	}

	check := func(want []pkRange) {
		t.Helper()
		got := liveRanges(t, e, "v1")
		if len(got) != len(want) {
			t.Fatalf("ranges %+v, want %+v", got, want)
		}
		var ranges []epk.Range
		for i, r := range got {
			if r.MinInclusive != want[i].MinInclusive || r.MaxExclusive != want[i].MaxExclusive {
				t.Fatalf("range %d = [%q, %q), want [%q, %q)", i, r.MinInclusive, r.MaxExclusive, want[i].MinInclusive, want[i].MaxExclusive)
			}
			ranges = append(ranges, epk.Range{Min: r.MinInclusive, Max: r.MaxExclusive})
		}
		perRange := make([]int, len(got))
		for i, k := range keys {
			h, err := epk.Hash(def, []any{k})
			if err != nil {
				t.Fatal(err)
			}
			home, ok := epk.Find(ranges, h)
			if !ok {
				t.Fatalf("EPK %s of %v in no range", h, k)
			}
			perRange[home]++
			for j, r := range got {
				op := map[string]any{"operationType": "Read", "id": fmt.Sprintf("d%d", i), "partitionKey": string(mustJSON(t, []any{k}))}
				res, results := sendBulk(t, e, "v1", r.ID, []any{op})
				switch {
				case j == home && (res.status != http.StatusOK || len(results) != 1 || results[0].StatusCode != http.StatusOK):
					t.Errorf("key %v (EPK %s) read through its range %s: %d %+v", k, h, r.ID, res.status, results)
				case j != home && res.status != http.StatusGone:
					t.Errorf("key %v (EPK %s) read through range %s, not its own: %d, want 410", k, h, r.ID, res.status)
				}
			}
		}
		for i, n := range perRange {
			if n == 0 {
				t.Errorf("no key in range %+v: the test keys do not exercise it", got[i])
			}
		}
	}

	// Two partitions at 12,000 RU/s, split at uint.MaxValue/2 = 2147483647.
	check([]pkRange{{MinInclusive: "", MaxExclusive: "05C1DFFFFFFFFC"}, {MinInclusive: "05C1DFFFFFFFFC", MaxExclusive: "FF"}})

	// Splitting the lower one halves its hash interval: 1073741823.
	lower := liveRanges(t, e, "v1")[0].ID
	if err := e.srv.SplitRange(testDB, "v1", lower); err != nil {
		t.Fatal(err)
	}
	check([]pkRange{
		{MinInclusive: "", MaxExclusive: "05C1CFFFFFFFF8"},
		{MinInclusive: "05C1CFFFFFFFF8", MaxExclusive: "05C1DFFFFFFFFC"},
		{MinInclusive: "05C1DFFFFFFFFC", MaxExclusive: "FF"},
	})

	// A throughput raise that needs a fourth partition splits the widest
	// range, [2147483647, 4294967295], at 3221225471.
	if _, err := c.ReplaceThroughput(context.Background(), azcosmos.NewManualThroughputProperties(40_000), nil); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); len(liveRanges(t, e, "v1")) != 4; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("ranges after the raise: %+v, want 4", liveRanges(t, e, "v1"))
		}
	}
	check([]pkRange{
		{MinInclusive: "", MaxExclusive: "05C1CFFFFFFFF8"},
		{MinInclusive: "05C1CFFFFFFFF8", MaxExclusive: "05C1DFFFFFFFFC"},
		{MinInclusive: "05C1DFFFFFFFFC", MaxExclusive: "05C1E7FFFFFFFE"},
		{MinInclusive: "05C1E7FFFFFFFE", MaxExclusive: "FF"},
	})

	// Every item is still there, once.
	pager := c.NewQueryItemsPager("SELECT VALUE c.id FROM c", azcosmos.NewPartitionKey(), nil)
	seen := map[string]int{}
	for pager.More() {
		page, err := pager.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, raw := range page.Items {
			var id string
			if err := json.Unmarshal(raw, &id); err != nil {
				t.Fatal(err)
			}
			seen[id]++
		}
	}
	for i := range keys {
		if id := fmt.Sprintf("d%d", i); seen[id] != 1 {
			t.Errorf("item %s seen %d times after the split", id, seen[id])
		}
	}
	if len(seen) != len(keys) {
		t.Errorf("%d items after the split, want %d", len(seen), len(keys))
	}
}

// liveRanges reads coll's partition key ranges, sorted by min, leaving out
// ranges that a later range names as its parent.
func liveRanges(t *testing.T, e *env, coll string) []pkRange {
	t.Helper()
	all := readPKRanges(t, e.srv, coll)
	gone := map[string]bool{}
	for _, r := range all {
		for _, p := range r.Parents {
			gone[p] = true
		}
	}
	var live []pkRange
	for _, r := range all {
		if !gone[r.ID] {
			live = append(live, r)
		}
	}
	sort.Slice(live, func(i, j int) bool { return epk.Compare(live[i].MinInclusive, live[j].MinInclusive) < 0 })
	if reflect.DeepEqual(live, []pkRange(nil)) {
		t.Fatalf("container %s has no ranges", coll)
	}
	return live
}
