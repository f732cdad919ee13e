package migrate

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rekey-dev/rekey/transform"
)

// testWriter builds a writer over a memTarget for the spec
// /pk={tenant}-x with the source keyed on /region.
func testWriter(t *testing.T) (*writer, *memTarget, *fakeClock) {
	t.Helper()
	spec, err := transform.ParseSpec([]string{"/pk={tenant}-x"})
	if err != nil {
		t.Fatal(err)
	}
	tr, err := transform.New(spec, []string{"/region"})
	if err != nil {
		t.Fatal(err)
	}
	dead, err := OpenDeadLetters(filepath.Join(t.TempDir(), "deadletter.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dead.Close() })
	clk := &fakeClock{}
	stats := &Stats{}
	dst := newMemTarget()
	w := &writer{dst: dst, tr: tr, limit: NewFixedLimiter(8), dead: dead, stats: stats,
		retry: &retrier{clock: clk, tries: 4, onThrottle: func(time.Duration) { stats.throttled.Add(1) }}}
	return w, dst, clk
}

// changes transforms source items given as JSON.
func changes(t *testing.T, w *writer, items ...string) []change {
	t.Helper()
	out := make([]change, 0, len(items))
	for _, it := range items {
		res, err := w.tr.Apply([]byte(it))
		if err != nil {
			t.Fatalf("transform %s: %v", it, err)
		}
		out = append(out, change{res: res, source: []byte(it)})
	}
	return out
}

func item(id, region, tenant string, v int) string {
	return fmt.Sprintf(`{"id":%q,"region":%q,"tenant":%q,"v":%d,"_ts":1700000000}`, id, region, tenant, v)
}

func TestWriterCopiesAndBatches(t *testing.T) {
	w, dst, _ := testWriter(t)
	page := changes(t, w, item("1", "eu", "a", 1), item("2", "eu", "a", 1), item("3", "us", "a", 1), item("4", "eu", "b", 1))
	ru, err := w.writePage(context.Background(), page, nil)
	if err != nil {
		t.Fatal(err)
	}
	if dst.count() != 4 {
		t.Fatalf("target has %d items, want 4", dst.count())
	}
	s := w.stats.Snapshot()
	if s.Created != 4 || s.Batches != 1 || dst.calls["batch"] != 1 || dst.calls["create"] != 1 {
		t.Fatalf("want the three items of key a-x in one batch and b-x alone: stats %+v, calls %v", s, dst.calls)
	}
	if ru != s.TargetRU() || ru <= 0 {
		t.Fatalf("page RU %.1f, stats %.1f", ru, s.TargetRU())
	}
	got, _ := dst.get(Key{transform.StringValue("a-x")}, "1")
	if !strings.Contains(string(got.Body), `"pk":"a-x"`) || strings.Contains(string(got.Body), "_ts") {
		t.Fatalf("target item %s: want the key property and no system properties", got.Body)
	}
}

func TestWriterReplayIsUnchangedAndUpdateReplaces(t *testing.T) {
	w, dst, _ := testWriter(t)
	ctx := context.Background()
	first := changes(t, w, item("1", "eu", "a", 1), item("2", "eu", "a", 1), item("3", "us", "b", 1))
	if _, err := w.writePage(ctx, first, nil); err != nil {
		t.Fatal(err)
	}
	// A crash before the checkpoint replays the page: nothing is rewritten.
	if _, err := w.writePage(ctx, changes(t, w, item("1", "eu", "a", 1), item("2", "eu", "a", 1), item("3", "us", "b", 1)), nil); err != nil {
		t.Fatal(err)
	}
	s := w.stats.Snapshot()
	if s.Unchanged != 3 || s.Updated != 0 || dst.calls["replace"] != 0 {
		t.Fatalf("replay: want 3 unchanged and no replace, got %+v calls %v", s, dst.calls)
	}
	// A newer version replaces the copy, with If-Match on what was read.
	if _, err := w.writePage(ctx, changes(t, w, item("3", "us", "b", 2)), nil); err != nil {
		t.Fatal(err)
	}
	got, _ := dst.get(Key{transform.StringValue("b-x")}, "3")
	if !strings.Contains(string(got.Body), `"v":2`) || w.stats.Snapshot().Updated != 1 {
		t.Fatalf("update: target holds %s", got.Body)
	}
}

func TestWriterCollisionsAreDeadLettered(t *testing.T) {
	for _, tc := range []struct {
		name  string
		pages [][]string
	}{
		{"same page, same batch", [][]string{{item("1", "eu", "a", 1), item("1", "us", "a", 1)}}},
		{"later page", [][]string{{item("1", "eu", "a", 1)}, {item("1", "us", "a", 9)}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, dst, _ := testWriter(t)
			for _, p := range tc.pages {
				if _, err := w.writePage(context.Background(), changes(t, w, p...), nil); err != nil {
					t.Fatal(err)
				}
			}
			if dst.count() != 1 {
				t.Fatalf("target has %d items, want 1", dst.count())
			}
			if err := w.dead.Sync(); err != nil {
				t.Fatal(err)
			}
			dl, err := w.dead.List()
			if err != nil || len(dl) != 1 {
				t.Fatalf("dead letters %v %v, want 1", dl, err)
			}
			got, _ := dst.get(Key{transform.StringValue("a-x")}, "1")
			owner := `["eu"]`
			loser := `["us"]`
			if strings.Contains(string(got.Body), `"region":"us"`) {
				owner, loser = loser, owner
			}
			if dl[0].Kind != KindCollision || !strings.Contains(dl[0].Reason, owner) || !strings.Contains(dl[0].Reason, loser) || string(dl[0].SourceKey) != loser {
				t.Fatalf("dead letter %+v: want a collision naming both source keys", dl[0])
			}
			if s := w.stats.Snapshot(); s.Collisions != 1 || s.DeadLettered != 1 {
				t.Fatalf("stats %+v", s)
			}
		})
	}
}

func TestWriterHonoursThrottlingAndRetriesTransients(t *testing.T) {
	w, dst, clk := testWriter(t)
	throttles, transients := 3, 2
	dst.fail = func(op string, key Key, id string) error {
		switch {
		case op == "create" && throttles > 0:
			throttles--
			return &RequestError{Op: op, Status: http.StatusTooManyRequests, RetryAfter: 250 * time.Millisecond}
		case op == "create" && transients > 0:
			transients--
			return &RequestError{Op: op, Status: http.StatusServiceUnavailable}
		}
		return nil
	}
	if _, err := w.writePage(context.Background(), changes(t, w, item("1", "eu", "a", 1)), nil); err != nil {
		t.Fatal(err)
	}
	if dst.count() != 1 {
		t.Fatal("the item was not written")
	}
	waitedForThrottle := 0
	for _, d := range clk.slept {
		if d >= 250*time.Millisecond && d <= 275*time.Millisecond {
			waitedForThrottle++
		}
	}
	if waitedForThrottle != 3 || w.stats.Snapshot().Throttled != 3 {
		t.Fatalf("want three waits of retry-after (+<=10%% jitter), slept %v", clk.slept)
	}

	// A transient failure that does not go away stops the run.
	dst.fail = func(op string, key Key, id string) error {
		return &RequestError{Op: op, Status: http.StatusServiceUnavailable}
	}
	_, err := w.writePage(context.Background(), changes(t, w, item("2", "eu", "a", 1)), nil)
	if !errors.Is(err, ErrTransient) || !strings.Contains(err.Error(), "giving up after 4 attempts") {
		t.Fatalf("want the transient error after 4 attempts, got %v", err)
	}
}

func TestWriterDeadLettersRefusedItems(t *testing.T) {
	w, dst, _ := testWriter(t)
	dst.fail = func(op string, key Key, id string) error {
		switch id {
		case "bad":
			return &RequestError{Op: op, Status: http.StatusBadRequest, Message: "One of the specified inputs is invalid"}
		case "big":
			return &RequestError{Op: op, Status: http.StatusRequestEntityTooLarge}
		}
		return nil
	}
	if _, err := w.writePage(context.Background(), changes(t, w, item("bad", "eu", "a", 1), item("big", "eu", "b", 1), item("ok", "eu", "c", 1)), nil); err != nil {
		t.Fatal(err)
	}
	if err := w.dead.Sync(); err != nil {
		t.Fatal(err)
	}
	dl, _ := w.dead.List()
	kinds := map[string]string{}
	for _, d := range dl {
		kinds[d.SourceID] = d.Kind
	}
	if kinds["bad"] != KindRejected || kinds["big"] != KindTooLarge || len(kinds) != 2 || dst.count() != 1 {
		t.Fatalf("dead letters %v, target %d items", kinds, dst.count())
	}
	if !strings.Contains(dl[0].Reason+dl[1].Reason, "One of the specified inputs is invalid") {
		t.Fatalf("the service's message should be in the reason: %+v", dl)
	}
}

func TestWriterRereadsOnPreconditionFailure(t *testing.T) {
	w, dst, _ := testWriter(t)
	ctx := context.Background()
	if _, err := w.writePage(ctx, changes(t, w, item("1", "eu", "a", 1)), nil); err != nil {
		t.Fatal(err)
	}
	raced := false
	dst.fail = func(op string, key Key, id string) error {
		if op == "replace" && !raced {
			raced = true
			return &RequestError{Op: op, Status: http.StatusPreconditionFailed}
		}
		return nil
	}
	if _, err := w.writePage(ctx, changes(t, w, item("1", "eu", "a", 2)), nil); err != nil {
		t.Fatal(err)
	}
	got, _ := dst.get(Key{transform.StringValue("a-x")}, "1")
	if !raced || !strings.Contains(string(got.Body), `"v":2`) || dst.calls["read"] != 2 {
		t.Fatalf("want a second read after the 412 and the new version written; body %s calls %v", got.Body, dst.calls)
	}
}
