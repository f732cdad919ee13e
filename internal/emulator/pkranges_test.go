package emulator_test

import (
	"encoding/json"
	"net/http"
	"sort"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/data/azcosmos"
)

func TestPKRangesCoverTheKeySpace(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		coll string
		ru   int32
		n    int
	}{{"one", 400, 1}, {"five", 30000, 5}} {
		t.Run(tc.coll, func(t *testing.T) {
			c := e.container(t, tc.coll, tc.ru)
			ranges := readPKRanges(t, e.srv, tc.coll)
			if len(ranges) != tc.n {
				t.Fatalf("%d ranges, want %d", len(ranges), tc.n)
			}
			checkPKRanges(t, ranges)
			// The SDK's view agrees with the raw feed.
			fr := feedRanges(t, c)
			if len(fr) != len(ranges) {
				t.Fatalf("SDK sees %d feed ranges, the feed has %d", len(fr), len(ranges))
			}
			for i := range fr {
				if fr[i].MinInclusive != ranges[i].MinInclusive || fr[i].MaxExclusive != ranges[i].MaxExclusive {
					t.Errorf("feed range %d %+v, pkrange %+v", i, fr[i], ranges[i])
				}
			}
		})
	}
}

// checkPKRanges checks ids are unique and the ranges, sorted by min, cover
// "" to "FF" contiguously.
func checkPKRanges(t *testing.T, ranges []pkRange) {
	t.Helper()
	sorted := append([]pkRange(nil), ranges...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].MinInclusive < sorted[j].MinInclusive })
	ids := map[string]bool{}
	fr := make([]azcosmos.FeedRange, len(sorted))
	for i, r := range sorted {
		if r.ID == "" || ids[r.ID] {
			t.Errorf("range id %q empty or repeated", r.ID)
		}
		ids[r.ID] = true
		if r.MinInclusive >= r.MaxExclusive {
			t.Errorf("range %s is empty: [%q, %q)", r.ID, r.MinInclusive, r.MaxExclusive)
		}
		fr[i] = azcosmos.FeedRange{MinInclusive: r.MinInclusive, MaxExclusive: r.MaxExclusive}
	}
	checkContiguous(t, fr)
}

func TestPKRangesIncrementalFeed(t *testing.T) {
	e := newEnv(t)
	e.container(t, "c", 12000)
	path := "/dbs/" + testDB + "/colls/c/pkranges"
	incr := func(etag string) rawResponse {
		h := map[string]string{"A-IM": "Incremental Feed"}
		if etag != "" {
			h["If-None-Match"] = etag
		}
		return rawDo(t, e.srv, http.MethodGet, path, h, nil)
	}

	first := incr("")
	if first.status != http.StatusOK {
		t.Fatalf("first read: %d %s", first.status, first.body)
	}
	etag := first.header.Get("etag")
	if etag == "" {
		t.Fatal("no ETag on the pkranges feed")
	}
	if got := len(decodeRanges(t, first.body)); got != 2 {
		t.Fatalf("%d ranges, want 2", got)
	}

	unchanged := incr(etag)
	if unchanged.status != http.StatusNotModified || len(unchanged.body) != 0 {
		t.Fatalf("unchanged: %d %q, want 304 with no body", unchanged.status, unchanged.body)
	}

	if err := e.srv.SplitRange(testDB, "c", "0"); err != nil {
		t.Fatal(err)
	}
	changed := incr(etag)
	if changed.status != http.StatusOK {
		t.Fatalf("after a split: %d %s", changed.status, changed.body)
	}
	children := decodeRanges(t, changed.body)
	if len(children) != 2 {
		t.Fatalf("incremental feed after a split: %d ranges, want the 2 children", len(children))
	}
	for _, ch := range children {
		if len(ch.Parents) != 1 || ch.Parents[0] != "0" {
			t.Errorf("child %s parents %v, want [0]", ch.ID, ch.Parents)
		}
	}
	if newTag := changed.header.Get("etag"); newTag == etag || incr(newTag).status != http.StatusNotModified {
		t.Errorf("after catching up with ETag %q: not 304", newTag)
	}

	// The full feed lists the live ranges only: the parent is gone.
	full := readPKRanges(t, e.srv, "c")
	if len(full) != 3 {
		t.Fatalf("%d live ranges after one split of two, want 3", len(full))
	}
	for _, r := range full {
		if r.ID == "0" {
			t.Error("the split parent is still listed")
		}
	}
	checkPKRanges(t, full)

	// A split parent cannot be split again.
	if err := e.srv.SplitRange(testDB, "c", "0"); err == nil {
		t.Error("splitting a gone range succeeded")
	}
}

func decodeRanges(t *testing.T, body []byte) []pkRange {
	t.Helper()
	var feed struct {
		PartitionKeyRanges []pkRange `json:"PartitionKeyRanges"`
		Count              int       `json:"_count"`
	}
	if err := json.Unmarshal(body, &feed); err != nil {
		t.Fatal(err)
	}
	if feed.Count != len(feed.PartitionKeyRanges) {
		t.Errorf("_count %d for %d ranges", feed.Count, len(feed.PartitionKeyRanges))
	}
	return feed.PartitionKeyRanges
}
