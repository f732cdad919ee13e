package emulator_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/azcosmos"
)

// fullRange is the whole EPK space.
var fullRange = azcosmos.FeedRange{MinInclusive: "", MaxExclusive: "FF"}

// feedReader reads a change feed page by page with the SDK, following its
// composite continuation, and checks that each range's items come in
// ascending _lsn order.
type feedReader struct {
	t       testing.TB
	c       *azcosmos.ContainerClient
	opts    azcosmos.ChangeFeedOptions
	lastLSN map[string]float64 // by feed range min
	pages   int
}

func newFeedReader(t testing.TB, c *azcosmos.ContainerClient, opts azcosmos.ChangeFeedOptions) *feedReader {
	if opts.FeedRange == nil && opts.Continuation == nil {
		fr := fullRange
		opts.FeedRange = &fr
	}
	return &feedReader{t: t, c: c, opts: opts, lastLSN: map[string]float64{}}
}

// next reads one page; an empty result means nothing is new anywhere.
func (r *feedReader) next() []doc {
	r.t.Helper()
	page, err := r.tryNext()
	if err != nil {
		r.t.Fatal(err)
	}
	return page
}

// tryNext is next for goroutines other than the test's: it reports
// failures to read as errors, and wrong answers with t.Errorf.
func (r *feedReader) tryNext() ([]doc, error) {
	resp, err := r.c.ReadChangeFeed(context.Background(), &r.opts)
	if err != nil {
		return nil, fmt.Errorf("read change feed: %w", err)
	}
	if resp.ContinuationToken == "" {
		return nil, errors.New("change feed response without a continuation")
	}
	cont := resp.ContinuationToken
	r.opts.Continuation = &cont
	r.opts.FeedRange = nil
	r.pages++
	if resp.Count != len(resp.Items) {
		r.t.Errorf("_count %d for %d items", resp.Count, len(resp.Items))
	}
	if resp.Count == 0 {
		if resp.RawResponse.StatusCode != http.StatusNotModified {
			r.t.Errorf("empty page with status %d, want 304", resp.RawResponse.StatusCode)
		}
		return nil, nil
	}
	if m := r.opts.MaxItemCount; m > 0 && resp.Count > int(m) {
		r.t.Errorf("page of %d items, MaxItemCount %d", resp.Count, m)
	}
	key := resp.FeedRange.MinInclusive
	out := make([]doc, 0, len(resp.Items))
	for _, b := range resp.Items {
		var d doc
		if err := json.Unmarshal(b, &d); err != nil {
			return nil, fmt.Errorf("change feed item %q: %w", truncate(b), err)
		}
		lsn, ok := d["_lsn"].(float64)
		if !ok {
			return nil, fmt.Errorf("change feed item without _lsn: %s", b)
		}
		if lsn <= r.lastLSN[key] {
			r.t.Errorf("range %q: _lsn %v after %v", key, lsn, r.lastLSN[key])
		}
		r.lastLSN[key] = lsn
		out = append(out, d)
	}
	return out, nil
}

// drain reads until nothing is new and returns every item read.
func (r *feedReader) drain() []doc {
	r.t.Helper()
	var all []doc
	for i := 0; ; i++ {
		page := r.next()
		if page == nil {
			return all
		}
		all = append(all, page...)
		if i > 10000 {
			r.t.Fatal("change feed does not end")
		}
	}
}

// byID indexes items by "pk/id", failing on duplicates.
func byID(t testing.TB, items []doc) map[string]doc {
	t.Helper()
	m := map[string]doc{}
	for _, d := range items {
		k := fmt.Sprint(d["pk"], "/", d["id"])
		if _, dup := m[k]; dup {
			t.Errorf("item %s appears twice", k)
		}
		m[k] = d
	}
	return m
}

func TestChangeFeedLatestVersion(t *testing.T) {
	e := newEnv(t)
	c := e.container(t, "c", 30000)
	ctx := context.Background()
	for i := 0; i < 100; i++ {
		pk := fmt.Sprintf("p%d", i%25)
		upsert(t, c, pk, doc{"id": fmt.Sprint(i), "pk": pk, "v": 1})
	}
	for i := 0; i < 10; i++ { // update 0..9
		pk := fmt.Sprintf("p%d", i%25)
		upsert(t, c, pk, doc{"id": fmt.Sprint(i), "pk": pk, "v": 2})
	}
	for i := 90; i < 100; i++ { // delete 90..99
		if _, err := c.DeleteItem(ctx, azcosmos.NewPartitionKeyString(fmt.Sprintf("p%d", i%25)), fmt.Sprint(i), nil); err != nil {
			t.Fatal(err)
		}
	}

	check := func(t *testing.T, items []doc) {
		got := byID(t, items)
		if len(got) != 90 {
			t.Errorf("%d items in the feed, want the 90 live ones", len(got))
		}
		for i := 0; i < 100; i++ {
			d, ok := got[fmt.Sprintf("p%d/%d", i%25, i)]
			switch {
			case i >= 90 && ok:
				t.Errorf("deleted item %d in the feed", i)
			case i < 90 && !ok:
				t.Errorf("item %d missing", i)
			case i < 10 && d["v"] != 2.0:
				t.Errorf("item %d at v%v, want its latest version 2", i, d["v"])
			}
		}
	}

	t.Run("whole container", func(t *testing.T) {
		r := newFeedReader(t, c, azcosmos.ChangeFeedOptions{MaxItemCount: 7})
		check(t, r.drain())
		if r.pages < 90/7 {
			t.Errorf("%d pages of at most 7 for 90 items", r.pages)
		}
	})

	t.Run("per feed range", func(t *testing.T) {
		ranges := feedRanges(t, c)
		if len(ranges) != 5 {
			t.Fatalf("%d ranges", len(ranges))
		}
		var all []doc
		nonEmpty := 0
		for _, fr := range ranges {
			fr := fr
			items := newFeedReader(t, c, azcosmos.ChangeFeedOptions{FeedRange: &fr}).drain()
			if len(items) > 0 {
				nonEmpty++
			}
			all = append(all, items...)
		}
		check(t, all)
		if nonEmpty < 2 {
			t.Errorf("items in %d of 5 ranges", nonEmpty)
		}
	})

	t.Run("update moves an item to the end", func(t *testing.T) {
		fr := azcosmos.FeedRange{MinInclusive: "", MaxExclusive: "FF"}
		pk := "p3" // items 3, 28, 53, 78
		r := newFeedReader(t, c, azcosmos.ChangeFeedOptions{FeedRange: &fr, PartitionKey: ptr(azcosmos.NewPartitionKeyString(pk))})
		// 3 was updated after the others were written, so it comes last.
		if got := fmt.Sprint(feedIDs(r.drain())); got != "[28 53 78 3]" {
			t.Fatalf("p3 feed %s, want [28 53 78 3]", got)
		}
		upsert(t, c, pk, doc{"id": "28", "pk": pk, "v": 3})
		after := r.drain()
		if len(after) != 1 || after[0]["id"] != "28" || after[0]["v"] != 3.0 {
			t.Errorf("after updating 28: %v", after)
		}
		fresh := newFeedReader(t, c, azcosmos.ChangeFeedOptions{FeedRange: &fr, PartitionKey: ptr(azcosmos.NewPartitionKeyString(pk))}).drain()
		if got := fmt.Sprint(feedIDs(fresh)); got != "[53 78 3 28]" {
			t.Errorf("p3 feed from the start after the update: %s, want [53 78 3 28]", got)
		}
	})
}

func ptr[T any](v T) *T { return &v }

func feedIDs(items []doc) []any {
	out := make([]any, len(items))
	for i, d := range items {
		out[i] = d["id"]
	}
	return out
}

func TestChangeFeedNotModifiedThenResume(t *testing.T) {
	e := newEnv(t)
	c := e.container(t, "c", 12000)
	upsert(t, c, "a", doc{"id": "1", "pk": "a"})
	r := newFeedReader(t, c, azcosmos.ChangeFeedOptions{})
	if got := r.drain(); len(got) != 1 {
		t.Fatalf("%d items, want 1", len(got))
	}
	for i := 0; i < 3; i++ {
		if page := r.next(); page != nil {
			t.Fatalf("nothing new, got %v", page)
		}
	}
	upsert(t, c, "b", doc{"id": "2", "pk": "b"})
	upsert(t, c, "a", doc{"id": "1", "pk": "a", "v": 2})
	got := byID(t, r.drain())
	if len(got) != 2 || got["a/1"]["v"] != 2.0 || got["b/2"] == nil {
		t.Errorf("after new writes: %v", got)
	}
}

func TestChangeFeedStartFrom(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.container(t, "c", 12000)
	for i := 0; i < 5; i++ {
		upsert(t, c, "old", doc{"id": fmt.Sprint(i), "pk": "old"})
	}
	// If-Modified-Since has whole seconds: start the second batch in a
	// later second than the first.
	now := time.Now()
	time.Sleep(now.Truncate(time.Second).Add(time.Second).Sub(now))
	boundary := time.Now().Truncate(time.Second)
	for i := 0; i < 5; i++ {
		upsert(t, c, "new", doc{"id": fmt.Sprint(i), "pk": "new"})
	}
	for _, tc := range []struct {
		name  string
		from  time.Time
		wantN int
	}{
		{"beginning", boundary.Add(-time.Hour), 10},
		{"boundary", boundary, 5},
		{"future", boundary.Add(time.Hour), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			items := newFeedReader(t, c, azcosmos.ChangeFeedOptions{StartFrom: &tc.from}).drain()
			if len(items) != tc.wantN {
				t.Fatalf("%d items, want %d", len(items), tc.wantN)
			}
			if tc.name == "boundary" {
				for _, d := range items {
					if d["pk"] != "new" {
						t.Errorf("item of pk %v before the start time", d["pk"])
					}
				}
			}
		})
	}
}

func TestChangeFeedPartitionKeyScope(t *testing.T) {
	e := newEnv(t)
	c := e.container(t, "c", 30000)
	for i := 0; i < 60; i++ {
		pk := fmt.Sprintf("p%d", i%6)
		upsert(t, c, pk, doc{"id": fmt.Sprint(i), "pk": pk})
	}
	pk := azcosmos.NewPartitionKeyString("p4")
	items := newFeedReader(t, c, azcosmos.ChangeFeedOptions{PartitionKey: &pk, MaxItemCount: 3}).drain()
	if len(items) != 10 {
		t.Errorf("%d items for p4, want 10", len(items))
	}
	for _, d := range items {
		if d["pk"] != "p4" {
			t.Errorf("item of %v in the p4 feed", d["pk"])
		}
	}
}

// A split in the middle of a drain: the SDK gets 410/1002 for the parent,
// refreshes its routing map and continues on the children from the parent's
// continuation; every item is read once.
func TestChangeFeedSplitWhileDraining(t *testing.T) {
	e := newEnv(t)
	c := e.container(t, "c", 12000)
	const n = 300
	for i := 0; i < n; i++ {
		pk := fmt.Sprintf("p%d", i)
		upsert(t, c, pk, doc{"id": fmt.Sprint(i), "pk": pk})
	}
	r := newFeedReader(t, c, azcosmos.ChangeFeedOptions{MaxItemCount: 20})
	var all []doc
	for len(all) < 60 {
		all = append(all, r.next()...)
	}
	for _, id := range []string{"0", "1"} {
		if err := e.srv.SplitRange(testDB, "c", id); err != nil {
			t.Fatal(err)
		}
	}
	// Writes after the split land on the children.
	for i := n; i < n+20; i++ {
		pk := fmt.Sprintf("p%d", i)
		upsert(t, c, pk, doc{"id": fmt.Sprint(i), "pk": pk})
	}
	all = append(all, r.drain()...)
	got := byID(t, all)
	if len(got) != n+20 {
		t.Errorf("%d distinct items after the split, want %d", len(got), n+20)
	}
	for i := 0; i < n+20; i++ {
		if _, ok := got[fmt.Sprintf("p%d/%d", i, i)]; !ok {
			t.Errorf("item %d missing", i)
		}
	}
	if len(readPKRanges(t, e.srv, "c")) != 4 {
		t.Error("want 4 ranges after splitting both")
	}
}

// The change feed of a range that has split answers 410 with substatus 1002
// to a raw request naming the parent.
func TestChangeFeedGoneRange(t *testing.T) {
	e := newEnv(t)
	e.container(t, "c", 400)
	if err := e.srv.SplitRange(testDB, "c", "0"); err != nil {
		t.Fatal(err)
	}
	resp := rawDo(t, e.srv, http.MethodGet, "/dbs/db/colls/c/docs", map[string]string{
		"A-IM": "Incremental Feed", "x-ms-documentdb-partitionkeyrangeid": "0",
	}, nil)
	if resp.status != http.StatusGone || resp.header.Get("x-ms-substatus") != "1002" {
		t.Fatalf("feed of a split range: %d substatus %q, want 410/1002", resp.status, resp.header.Get("x-ms-substatus"))
	}
	checkErrorBody(t, resp.status, resp.body)
}
