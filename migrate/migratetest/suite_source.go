package migratetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/rekey-dev/rekey/internal/epk"
	"github.com/rekey-dev/rekey/migrate"
	"github.com/rekey-dev/rekey/transform"
)

// everything is the whole EPK space as one feed range.
var everything = migrate.FeedRange{Min: epk.MinEPK, Max: epk.MaxEPK}

// RunSource checks that a container keeps the migrate.Source contract as
// the service does: feed ranges that tile the EPK space, items placed by
// their EPK, and a latest-version change feed with pages of PageSize,
// each item once at its latest version in LSN order, deletes left out, an
// empty page at the end, continuations that survive splits, and StartFrom,
// which reaches the partitions a continuation has not read yet.
func RunSource(t *testing.T, open Open) {
	t.Helper()

	t.Run("DefinitionAndItems", func(t *testing.T) {
		f := open(t, hashKey, 1)
		def, err := f.Store.Definition(ctx(t))
		if err != nil || !slices.Equal(def.Paths, hashKey.Paths) || def.Kind != "Hash" || def.Version != 2 {
			t.Fatalf("definition = %+v, %v; want %+v", def, err, hashKey)
		}
		create(t, f.Store, "a", "p", 1)
		create(t, f.Store, "b", "p", 1)
		it, err := f.Store.ReadItem(ctx(t), key("p"), "a")
		if err != nil || it.ID != "a" || it.ETag == "" {
			t.Fatalf("read item = %+v, %v", it, err)
		}
		_, err = f.Store.ReadItem(ctx(t), key("p"), "absent")
		wantFailure(t, "read of an absent item", err, migrate.ErrNotFound)
		if n, err := f.Store.ItemCount(ctx(t)); err != nil || n != 2 {
			t.Fatalf("item count = %d, %v; want 2", n, err)
		}
	})

	t.Run("FeedRangesTileTheSpace", func(t *testing.T) {
		f := open(t, hashKey, 3)
		ranges, err := f.Store.FeedRanges(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		if len(ranges) != 3 {
			t.Fatalf("%d feed ranges, want 3: %v", len(ranges), ranges)
		}
		checkTiling(t, ranges)
	})

	t.Run("ItemsLiveInTheRangeOfTheirEPK", func(t *testing.T) {
		for _, def := range []migrate.Definition{
			hashKey,
			{Paths: []string{"/pk"}, Kind: "Hash", Version: 1},
			{Paths: []string{"/pk", "/sub"}, Kind: "MultiHash", Version: 2},
		} {
			t.Run(fmt.Sprintf("%s-v%d", def.Kind, def.Version), func(t *testing.T) {
				f := open(t, def, 2)
				ranges, err := f.Store.FeedRanges(ctx(t))
				if err != nil || len(ranges) != 2 {
					t.Fatalf("feed ranges %v, %v; want 2", ranges, err)
				}
				edef := epk.Definition{Paths: def.Paths, Kind: epk.Kind(def.Kind), Version: epk.Version(def.Version)}
				want := map[string]int{}
				for i := range 40 {
					id, k := fmt.Sprint(i), fmt.Sprintf("k%d", i)
					values, doc := []any{k}, map[string]any{"id": id, "pk": k}
					if len(def.Paths) == 2 {
						values, doc["sub"] = append(values, "s"), "s"
					}
					e, err := epk.Hash(edef, values)
					if err != nil {
						t.Fatal(err)
					}
					idx, _ := epk.Find([]epk.Range{{Min: ranges[0].Min, Max: ranges[0].Max}, {Min: ranges[1].Min, Max: ranges[1].Max}}, e)
					want[id] = idx
					if _, err := f.Store.Create(ctx(t), keyOfValues(values), mustJSON(doc)); err != nil {
						t.Fatal(err)
					}
				}
				for i, r := range ranges {
					items, _ := drain(t, f.Store, migrate.ChangeRequest{Range: r, PageSize: 7})
					for _, id := range ids(t, items) {
						if want[id] != i {
							t.Errorf("item %s read from range %d, but its EPK lies in range %d", id, i, want[id])
						}
						delete(want, id)
					}
				}
				if len(want) > 0 {
					t.Errorf("items in no range's feed: %v", want)
				}
			})
		}
	})

	t.Run("FeedPagesTheLatestVersionsInOrder", func(t *testing.T) {
		f := open(t, hashKey, 1)
		for i := range 10 {
			create(t, f.Store, fmt.Sprint(i), fmt.Sprint(i%3), 1)
		}
		replace(t, f.Store, "4", "1", 2)
		replace(t, f.Store, "4", "1", 3) // twice before a read: once, at version 3
		if _, err := f.Store.Delete(ctx(t), key("2"), "5", ""); err != nil {
			t.Fatal(err)
		}
		req := migrate.ChangeRequest{Range: everything, PageSize: 4}
		var all [][]byte
		for pages := 0; ; pages++ {
			page := read(t, f.Store, req)
			if len(page.Items) > req.PageSize {
				t.Fatalf("page of %d items; PageSize is %d", len(page.Items), req.PageSize)
			}
			req.Continuation = page.Continuation
			if len(page.Items) == 0 {
				break
			}
			all = append(all, page.Items...)
		}
		got := ids(t, all)
		if want := []string{"0", "1", "2", "3", "6", "7", "8", "9", "4"}; !slices.Equal(got, want) {
			t.Fatalf("feed = %v, want %v: each live item once, in the order of its latest change", got, want)
		}
		checkLSNOrder(t, all)
		if v := decoded(t, all[len(all)-1])["v"]; v != float64(3) {
			t.Errorf("item 4 read at version %v, want its latest, 3", v)
		}
		// The continuation of the empty page resumes after everything read.
		replace(t, f.Store, "0", "0", 2)
		create(t, f.Store, "new", "x", 1)
		more, _ := drain(t, f.Store, req)
		if got := ids(t, more); !slices.Equal(got, []string{"0", "new"}) {
			t.Errorf("after the end: %v, want [0 new]", got)
		}
		if again := read(t, f.Store, migrate.ChangeRequest{Range: everything, Continuation: req.Continuation, PageSize: 4}); len(again.Items) != 2 {
			t.Errorf("re-reading from a kept continuation gave %d items, want the same 2", len(again.Items))
		}
	})

	t.Run("ContinuationSurvivesASplit", func(t *testing.T) {
		f := open(t, hashKey, 1)
		for i := range 30 {
			create(t, f.Store, fmt.Sprint(i), fmt.Sprintf("k%d", i), 1)
		}
		req := migrate.ChangeRequest{Range: everything, PageSize: 10}
		first := read(t, f.Store, req)
		req.Continuation = first.Continuation
		f.Split(t, epk.MinEPK)
		rest, cont := drain(t, f.Store, req)
		got := append(ids(t, first.Items), ids(t, rest)...)
		checkOnceEach(t, got, 30)
		// The same continuation follows both children.
		for i := 30; i < 40; i++ {
			create(t, f.Store, fmt.Sprint(i), fmt.Sprintf("k%d", i), 1)
		}
		req.Continuation = cont
		more, _ := drain(t, f.Store, req)
		if got := ids(t, more); len(got) != 10 {
			t.Errorf("after the split: %v, want the 10 new items once", got)
		}
	})

	t.Run("AFreshRangeSpanningSplitChildren", func(t *testing.T) {
		f := open(t, hashKey, 1)
		ranges, err := f.Store.FeedRanges(ctx(t))
		if err != nil || len(ranges) != 1 {
			t.Fatalf("ranges %v, %v", ranges, err)
		}
		for i := range 25 {
			create(t, f.Store, fmt.Sprint(i), fmt.Sprintf("k%d", i), 1)
		}
		f.Split(t, epk.MinEPK)
		f.Split(t, epk.MinEPK) // the left child again: three partitions under the lease's range
		items, _ := drain(t, f.Store, migrate.ChangeRequest{Range: ranges[0], PageSize: 4})
		checkOnceEach(t, ids(t, items), 25)
	})

	t.Run("NarrowRangeReadsItsWholePartition", func(t *testing.T) {
		// A feed range inside one physical partition reads that partition's
		// whole feed (the SDK resolves a range to whole partitions): two
		// leases over one partition would each see every item.
		f := open(t, hashKey, 1)
		for i := range 12 {
			create(t, f.Store, fmt.Sprint(i), fmt.Sprintf("k%d", i), 1)
		}
		lower := migrate.FeedRange{Min: epk.MinEPK, Max: "1F"}
		items, _ := drain(t, f.Store, migrate.ChangeRequest{Range: lower, PageSize: 5})
		checkOnceEach(t, ids(t, items), 12)
	})

	t.Run("StartFrom", func(t *testing.T) {
		f := open(t, hashKey, 1)
		create(t, f.Store, "old", "p", 1)
		create(t, f.Store, "touched", "p", 1)
		f.Sleep(t, 2100*time.Millisecond) // StartFrom travels to the second
		start := f.Now()
		f.Sleep(t, 100*time.Millisecond)
		replace(t, f.Store, "touched", "p", 2)
		create(t, f.Store, "new", "p", 1)
		items, cont := drain(t, f.Store, migrate.ChangeRequest{Range: everything, PageSize: 10, StartFrom: start})
		if got := ids(t, items); !slices.Equal(got, []string{"touched", "new"}) {
			t.Fatalf("start from %v: %v, want [touched new]: items changed at or after it", start, got)
		}
		all, _ := drain(t, f.Store, migrate.ChangeRequest{Range: everything, PageSize: 10})
		if len(all) != 3 {
			t.Errorf("without StartFrom: %v, want all 3", ids(t, all))
		}
		replace(t, f.Store, "old", "p", 2)
		more, _ := drain(t, f.Store, migrate.ChangeRequest{Range: everything, PageSize: 10, Continuation: cont})
		if got := ids(t, more); !slices.Equal(got, []string{"old"}) {
			t.Errorf("after the start, from the continuation: %v, want [old]", got)
		}
	})

	t.Run("StartFromReachesEveryPartition", func(t *testing.T) {
		// A range over two partitions: its first page comes from one,
		// and the continuation has not read the other yet. StartFrom,
		// passed with the continuation, applies to that one too.
		f := open(t, hashKey, 2)
		for i := range 12 {
			create(t, f.Store, fmt.Sprint("old", i), fmt.Sprintf("k%d", i), 1)
		}
		f.Sleep(t, 2100*time.Millisecond)
		start := f.Now()
		f.Sleep(t, 100*time.Millisecond)
		for i := range 12 {
			create(t, f.Store, fmt.Sprint(i), fmt.Sprintf("k%d", i), 2)
		}
		req := migrate.ChangeRequest{Range: everything, PageSize: 100, StartFrom: start}
		var got []string
		for range 100 {
			page := read(t, f.Store, req)
			if len(page.Items) == 0 {
				break
			}
			got = append(got, ids(t, page.Items)...)
			req.Continuation = page.Continuation // StartFrom stays
		}
		checkOnceEach(t, got, 12)
	})

	t.Run("ForeignContinuationRefused", func(t *testing.T) {
		f := open(t, hashKey, 1)
		_, err := f.Store.ReadChanges(ctx(t), migrate.ChangeRequest{Range: everything, Continuation: `"12"`})
		var re *migrate.RequestError
		if err == nil || errors.As(err, &re) {
			t.Fatalf("a continuation the container never gave: %v; want a plain error, not a retryable request error", err)
		}
	})
}

// read reads one page or fails the test.
func read(t *testing.T, s Store, req migrate.ChangeRequest) migrate.ChangePage {
	t.Helper()
	page, err := s.ReadChanges(ctx(t), req)
	if err != nil {
		t.Fatalf("read changes: %v", err)
	}
	if page.Continuation == "" {
		t.Fatal("a page without a continuation")
	}
	if page.RU <= 0 {
		t.Errorf("a change-feed page cost %v RU; every read is charged", page.RU)
	}
	return page
}

// drain reads pages until an empty one and returns the items and the
// continuation to resume from.
func drain(t *testing.T, s Store, req migrate.ChangeRequest) ([][]byte, string) {
	t.Helper()
	var out [][]byte
	for range 1000 {
		page := read(t, s, req)
		req.Continuation, req.StartFrom = page.Continuation, time.Time{}
		if len(page.Items) == 0 {
			return out, req.Continuation
		}
		out = append(out, page.Items...)
	}
	t.Fatal("the feed never ran dry")
	return nil, ""
}

// checkTiling checks that ranges cover ["", "FF") in order without gaps or
// overlaps.
func checkTiling(t *testing.T, ranges []migrate.FeedRange) {
	t.Helper()
	if len(ranges) == 0 || ranges[0].Min != epk.MinEPK || ranges[len(ranges)-1].Max != epk.MaxEPK {
		t.Fatalf("feed ranges %v do not span the EPK space", ranges)
	}
	for i := 1; i < len(ranges); i++ {
		if epk.Compare(ranges[i-1].Max, ranges[i].Min) != 0 {
			t.Fatalf("feed ranges %v: a gap or an overlap between %d and %d", ranges, i-1, i)
		}
	}
}

// checkLSNOrder checks that items of one physical partition come in
// increasing "_lsn" order.
func checkLSNOrder(t *testing.T, items [][]byte) {
	t.Helper()
	last := -1.0
	for _, it := range items {
		lsn, ok := decoded(t, it)["_lsn"].(float64)
		if !ok || lsn <= last {
			t.Fatalf("items %v: _lsn not increasing (%v after %v)", ids(t, items), lsn, last)
		}
		last = lsn
	}
}

// checkOnceEach checks that got holds the ids 0..n-1 once each.
func checkOnceEach(t *testing.T, got []string, n int) {
	t.Helper()
	seen := map[string]int{}
	for _, id := range got {
		seen[id]++
	}
	for i := range n {
		if c := seen[fmt.Sprint(i)]; c != 1 {
			t.Errorf("item %d read %d times, want once", i, c)
		}
	}
	if len(got) != n {
		t.Errorf("%d items read, want %d", len(got), n)
	}
}

func keyOfValues(values []any) migrate.Key {
	k := make(migrate.Key, len(values))
	for i, v := range values {
		k[i] = transform.StringValue(v.(string))
	}
	return k
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v) // maps of strings always encode
	return b
}
