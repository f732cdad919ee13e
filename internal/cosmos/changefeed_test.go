package cosmos

import (
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/rekey-dev/rekey/internal/emulator"
	"github.com/rekey-dev/rekey/migrate"
)

// feed reads one feed range page by page, as a migrate reader does.
type feed struct {
	t     testing.TB
	c     *Container
	req   migrate.ChangeRequest
	pages int
	ru    float64
}

func newFeed(t testing.TB, c *Container, r migrate.FeedRange, pageSize int) *feed {
	return &feed{t: t, c: c, req: migrate.ChangeRequest{Range: r, PageSize: pageSize}}
}

// next reads one page and moves the continuation.
func (f *feed) next() [][]byte {
	f.t.Helper()
	page, err := f.c.ReadChanges(tctx(f.t), f.req)
	if err != nil {
		f.t.Fatalf("read changes: %v", err)
	}
	if page.Continuation == "" {
		f.t.Fatal("a page without a continuation")
	}
	f.req.Continuation = page.Continuation
	f.pages++
	f.ru += page.RU
	return page.Items
}

// drain reads until an empty page and returns the items by id.
func (f *feed) drain(into map[string]map[string]any) {
	f.t.Helper()
	for range 1000 {
		items := f.next()
		if len(items) == 0 {
			return
		}
		collect(f.t, into, items)
	}
	f.t.Fatal("the feed never ran dry")
}

func collect(t testing.TB, into map[string]map[string]any, items [][]byte) {
	for _, it := range items {
		m := fields(t, it)
		into[m["id"].(string)] = m
	}
}

var everything = migrate.FeedRange{Min: "", Max: "FF"}

func TestReadChangesPagesThroughTheFeed(t *testing.T) {
	e := newEnv(t)
	c := e.container(t, "c", 400)
	for i := range 25 {
		mustCreate(t, c, key(fmt.Sprint(i%5)), itemBody(t, fmt.Sprint(i), fmt.Sprint(i%5), 0))
	}
	f := newFeed(t, c, everything, 10)
	var sizes []int
	got := map[string]map[string]any{}
	for {
		items := f.next()
		if len(items) == 0 {
			break
		}
		sizes = append(sizes, len(items))
		collect(t, got, items)
	}
	if fmt.Sprint(sizes) != "[10 10 5]" || len(got) != 25 {
		t.Fatalf("pages of %v, %d distinct items; want [10 10 5], 25", sizes, len(got))
	}
	if f.ru <= 0 {
		t.Error("pages cost no RU")
	}
	if _, ok := got["3"]["_lsn"]; !ok {
		t.Error("items lack their system properties")
	}

	// An update and a new item after the end of the feed: each once, at
	// its latest version.
	if _, err := c.Replace(tctx(t), key("3"), "3", itemBody(t, "3", "3", 7), ""); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, c, key("x"), itemBody(t, "new", "x", 0))
	more := map[string]map[string]any{}
	f.drain(more)
	if len(more) != 2 || more["3"]["v"] != float64(7) || more["new"] == nil {
		t.Errorf("after the end: %v; want items 3 (v=7) and new", more)
	}
}

func TestReadChangesPerFeedRange(t *testing.T) {
	e := newEnv(t)
	c := e.container(t, "c", 12000) // two physical partitions
	const n = 60
	for i := range n {
		mustCreate(t, c, key(fmt.Sprint(i)), itemBody(t, fmt.Sprint(i), fmt.Sprint(i), 0))
	}
	ranges, err := c.FeedRanges(tctx(t))
	if err != nil || len(ranges) != 2 {
		t.Fatalf("ranges %v, %v; want 2", ranges, err)
	}
	all := map[string]map[string]any{}
	for _, r := range ranges {
		part := map[string]map[string]any{}
		newFeed(t, c, r, 7).drain(part)
		if len(part) == 0 || len(part) == n {
			t.Errorf("range %v holds %d of %d items; want a share", r, len(part), n)
		}
		for id := range part {
			if all[id] != nil {
				t.Errorf("item %s in two ranges", id)
			}
		}
		for id, m := range part {
			all[id] = m
		}
	}
	if len(all) != n {
		t.Errorf("%d items across the ranges, want %d", len(all), n)
	}
}

func TestReadChangesSurvivesASplit(t *testing.T) {
	e := newEnv(t)
	c := e.container(t, "c", 400)
	for i := range 40 {
		mustCreate(t, c, key(fmt.Sprintf("k%d", i)), itemBody(t, fmt.Sprint(i), fmt.Sprintf("k%d", i), 0))
	}
	f := newFeed(t, c, everything, 10)
	got := map[string]map[string]any{}
	collect(t, got, f.next())

	if err := e.srv.SplitRange(testDB, "c", "0"); err != nil {
		t.Fatal(err)
	}
	// The same continuation drains the rest from the children...
	f.drain(got)
	if len(got) != 40 {
		t.Fatalf("%d items after the split, want 40", len(got))
	}
	// The SDK refreshed its routing map when the parent answered 410.
	if ranges, err := c.FeedRanges(tctx(t)); err != nil || len(ranges) != 2 {
		t.Fatalf("after the split: ranges %v, %v; want 2", ranges, err)
	}
	// ...and follows writes that land on them.
	for i := 40; i < 50; i++ {
		mustCreate(t, c, key(fmt.Sprintf("k%d", i)), itemBody(t, fmt.Sprint(i), fmt.Sprintf("k%d", i), 0))
	}
	more := map[string]map[string]any{}
	f.drain(more)
	if len(more) != 10 {
		t.Errorf("%d new items after the split, want 10: %v", len(more), more)
	}
}

func TestReadChangesRidesOutAGoneRange(t *testing.T) {
	e := newEnv(t)
	c := e.container(t, "c", 400)
	mustCreate(t, c, key("p"), itemBody(t, "1", "p", 0))
	inject(t, e.srv, emulator.Fault{Status: http.StatusGone, Count: 1, Operations: []string{"changefeed"}})
	got := map[string]map[string]any{}
	newFeed(t, c, everything, 10).drain(got)
	if len(got) != 1 {
		t.Errorf("%d items, want 1: the SDK refreshes its routing map on 410/1002", len(got))
	}
}

func TestReadChangesStartFrom(t *testing.T) {
	e := newEnv(t)
	c := e.container(t, "c", 400)
	for i := range 3 {
		mustCreate(t, c, key("p"), itemBody(t, fmt.Sprint(i), "p", 0))
	}
	for _, tt := range []struct {
		start time.Time
		want  int
	}{{time.Time{}, 3}, {time.Now().Add(-time.Hour), 3}, {time.Now().Add(time.Hour), 0}} {
		f := newFeed(t, c, everything, 10)
		f.req.StartFrom = tt.start
		got := map[string]map[string]any{}
		f.drain(got)
		if len(got) != tt.want {
			t.Errorf("start from %v: %d items, want %d", tt.start, len(got), tt.want)
		}
	}
}

func TestReadChangesRefusesAForeignContinuation(t *testing.T) {
	e := newEnv(t)
	c := e.container(t, "c", 400)
	for _, cont := range []string{`"12"`, `{"continuation":[]}`, `{"continuation":[{"minInclusive":""}]}`, "garbage"} {
		_, err := c.ReadChanges(tctx(t), migrate.ChangeRequest{Range: everything, Continuation: cont})
		var re *migrate.RequestError
		if !errors.Is(err, ErrBadContinuation) || errors.As(err, &re) {
			t.Errorf("continuation %s: err = %v, want ErrBadContinuation", cont, err)
		}
	}
}

func TestReadChangesOfAMissingContainer(t *testing.T) {
	e := newEnv(t)
	_, err := e.client.Container(testDB, "absent").ReadChanges(tctx(t), migrate.ChangeRequest{Range: everything})
	if !errors.Is(err, migrate.ErrNotFound) {
		t.Fatalf("read changes of a missing container = %v, want ErrNotFound", err)
	}
}
