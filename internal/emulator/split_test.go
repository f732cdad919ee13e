package emulator_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/azcosmos"
)

// A throughput raise splits partitions after the split delay while the
// parents keep serving; a change-feed reader that started before the split
// continues with its continuation token and sees every item exactly once.
func TestChangeFeedAcrossThroughputSplit(t *testing.T) {
	e := newEnv(t)
	c := e.container(t, "cfsplit", 6_000) // one partition
	ctx := context.Background()
	const n = 300
	for i := 0; i < n; i++ {
		upsert(t, c, fmt.Sprintf("k%d", i%37), doc{"id": fmt.Sprintf("i%d", i), "pk": fmt.Sprintf("k%d", i%37)})
	}
	ranges, err := c.ReadFeedRanges(ctx, nil)
	if err != nil || len(ranges) != 1 {
		t.Fatalf("want 1 feed range, got %d (%v)", len(ranges), err)
	}
	seen := map[string]int{}
	read := func(opts *azcosmos.ChangeFeedOptions) string {
		t.Helper()
		resp, err := c.ReadChangeFeed(ctx, opts)
		if err != nil {
			t.Fatalf("read change feed: %v", err)
		}
		for _, raw := range resp.Items {
			var d struct {
				ID string `json:"id"`
			}
			if err := json.Unmarshal(raw, &d); err != nil {
				t.Fatal(err)
			}
			seen[d.ID]++
		}
		return resp.ContinuationToken
	}
	token := read(&azcosmos.ChangeFeedOptions{FeedRange: &ranges[0], MaxItemCount: 50})

	resp, err := c.ReplaceThroughput(ctx, azcosmos.NewManualThroughputProperties(40_000), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.RawResponse.Header.Get("x-ms-offer-replace-pending") != "true" {
		t.Error("a raise that needs splits should answer x-ms-offer-replace-pending: true")
	}
	// The parent serves until the split completes.
	token = read(&azcosmos.ChangeFeedOptions{Continuation: &token, MaxItemCount: 50})
	deadline := time.Now().Add(5 * time.Second)
	for {
		m, err := e.srv.ContainerMetrics(testDB, "cfsplit")
		if err != nil {
			t.Fatal(err)
		}
		if len(m.Partitions) == 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("40,000 RU/s: %d partitions, want 4", len(m.Partitions))
		}
		time.Sleep(5 * time.Millisecond)
	}
	for i := 0; i < 40 && len(seen) < n; i++ {
		token = read(&azcosmos.ChangeFeedOptions{Continuation: &token, MaxItemCount: 50})
	}
	if len(seen) != n {
		t.Fatalf("saw %d distinct items, want %d", len(seen), n)
	}
	for id, k := range seen {
		if k != 1 {
			t.Errorf("item %s seen %d times", id, k)
		}
	}
	// The new ranges are listed with the old one as their parent.
	after, err := c.ReadFeedRanges(ctx, nil)
	if err != nil || len(after) != 4 {
		t.Fatalf("after the split: %d feed ranges (%v), want 4", len(after), err)
	}
}
