package emulator_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/data/azcosmos"
)

// TestConcurrentClients runs 32 goroutines of mixed work on shared
// containers (with a split in the middle) and checks the invariants that
// must hold whatever the interleaving: every write is readable at its last
// version, counts add up, concurrent increments are not lost, and the change
// feed holds each item once at its latest version. Run it under -race.
func TestConcurrentClients(t *testing.T) {
	const (
		workers   = 32
		perWorker = 12
		pks       = 37
	)
	e := newEnv(t)
	c := e.container(t, "shared", 100000) // high enough that no request is throttled
	ctx := context.Background()
	counterPK := azcosmos.NewPartitionKeyString("counter")
	upsert(t, c, "counter", doc{"id": "counter", "pk": "counter", "n": 0})

	var increments atomic.Int64
	var split sync.Once
	work := func(w int) error {
		// Each worker owns its items, so its reads see its own writes.
		feed := newFeedReader(t, c, azcosmos.ChangeFeedOptions{MaxItemCount: 50})
		for i := 0; i < perWorker; i++ {
			id := fmt.Sprintf("w%02d-%02d", w, i)
			pkv := fmt.Sprintf("p%d", (w*perWorker+i)%pks)
			pk := azcosmos.NewPartitionKeyString(pkv)
			if _, err := c.CreateItem(ctx, pk, mustJSON(t, doc{"id": id, "pk": pkv, "owner": w, "v": 0}), nil); err != nil {
				return fmt.Errorf("create %s: %w", id, err)
			}
			if _, err := c.UpsertItem(ctx, pk, mustJSON(t, doc{"id": id, "pk": pkv, "owner": w, "v": 1}), nil); err != nil {
				return fmt.Errorf("upsert %s: %w", id, err)
			}
			r, err := c.ReadItem(ctx, pk, id, nil)
			if err != nil {
				return fmt.Errorf("read %s: %w", id, err)
			}
			var got doc
			if err := json.Unmarshal(r.Value, &got); err != nil || got["v"] != 1.0 {
				return fmt.Errorf("read %s after upsert: %s", id, r.Value)
			}
			if _, err := c.PatchItem(ctx, counterPK, "counter", patchIncr("/n", 1), nil); err != nil {
				return fmt.Errorf("increment: %w", err)
			}
			increments.Add(1)
			switch i % 4 {
			case 0: // a cross-partition query sees every item this worker wrote so far
				items, err := tryQueryAll(ctx, c, "SELECT VALUE c.id FROM c WHERE c.owner = @w",
					azcosmos.NewPartitionKey(), &azcosmos.QueryOptions{PageSizeHint: 5, QueryParameters: []azcosmos.QueryParameter{{Name: "@w", Value: w}}})
				if err != nil {
					return fmt.Errorf("query: %w", err)
				}
				if len(items) != i+1 {
					return fmt.Errorf("worker %d sees %d of its %d items", w, len(items), i+1)
				}
			case 1: // a single-partition aggregate
				if _, err := tryQueryAll(ctx, c, "SELECT VALUE COUNT(1) FROM c", pk, nil); err != nil {
					return fmt.Errorf("count: %w", err)
				}
			case 2: // the change feed moves on without error
				if _, err := feed.tryNext(); err != nil {
					return err
				}
			case 3:
				if w == workers/2 && i >= perWorker/2 {
					split.Do(func() {
						if err := e.srv.SplitRange(testDB, "shared", "0"); err != nil {
							t.Errorf("split: %v", err)
						}
					})
				}
			}
		}
		return nil
	}
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := work(w); err != nil {
				errs <- fmt.Errorf("worker %d: %w", w, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}

	// Every item is readable at its last version.
	total := workers * perWorker
	for w := 0; w < workers; w++ {
		for i := 0; i < perWorker; i++ {
			id := fmt.Sprintf("w%02d-%02d", w, i)
			r, err := c.ReadItem(ctx, azcosmos.NewPartitionKeyString(fmt.Sprintf("p%d", (w*perWorker+i)%pks)), id, nil)
			if err != nil {
				t.Fatalf("read %s: %v", id, err)
			}
			if d := decodeDoc(t, r.Value); d["v"] != 1.0 {
				t.Errorf("%s at v%v", id, d["v"])
			}
		}
	}
	// No increment was lost.
	r, err := c.ReadItem(ctx, counterPK, "counter", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := decodeDoc(t, r.Value)["n"]; got != float64(increments.Load()) || increments.Load() != int64(total) {
		t.Errorf("counter %v after %d increments", got, increments.Load())
	}
	// Counts per range add up, after the split too.
	ranges := readPKRanges(t, e.srv, "shared")
	if len(ranges) != 18 {
		t.Errorf("%d ranges, want 17 + 1 from the split", len(ranges))
	}
	sum := 0
	for _, rg := range ranges {
		items, err := tryQueryAll(withHeader(ctx, "x-ms-documentdb-partitionkeyrangeid", rg.ID), c,
			"SELECT VALUE COUNT(1) FROM c", azcosmos.NewPartitionKey(), nil)
		if err != nil {
			t.Fatalf("count range %s: %v", rg.ID, err)
		}
		var n int
		_ = json.Unmarshal(items[0], &n)
		sum += n
	}
	if sum != total+1 {
		t.Errorf("ranges count %d items, want %d", sum, total+1)
	}
	// The change feed from the start holds each item once, at its latest version.
	feed := byID(t, newFeedReader(t, c, azcosmos.ChangeFeedOptions{MaxItemCount: 100}).drain())
	if len(feed) != total+1 {
		t.Errorf("change feed holds %d items, want %d", len(feed), total+1)
	}
	for k, d := range feed {
		if d["id"] != "counter" && d["v"] != 1.0 {
			t.Errorf("change feed has %s at v%v", k, d["v"])
		}
	}
}

func patchIncr(path string, by int64) azcosmos.PatchOperations {
	var p azcosmos.PatchOperations
	p.AppendIncrement(path, by)
	return p
}
