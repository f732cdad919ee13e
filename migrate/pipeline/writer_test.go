package pipeline

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rekey-dev/rekey/lease"
	"github.com/rekey-dev/rekey/migrate"
	"github.com/rekey-dev/rekey/migrate/deadletter"
	"github.com/rekey-dev/rekey/migrate/migratetest"
	"github.com/rekey-dev/rekey/migrate/pacing"
	"github.com/rekey-dev/rekey/transform"
)

// testWriter builds a writer over a fake target for the spec
// /pk={tenant}-x with the source keyed on /region.
func testWriter(t *testing.T) (*Writer, *migratetest.Container, *migratetest.Clock) {
	t.Helper()
	tr := migratetest.Transformer(t, "/region", "/pk={tenant}-x")
	dead, err := deadletter.OpenFile(filepath.Join(t.TempDir(), "deadletter.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dead.Close() })
	clk := &migratetest.Clock{}
	stats := &Stats{}
	dst := newTarget(t)
	w := &Writer{dst: dst, tr: tr, limit: pacing.NewFixedLimiter(8), ruCap: pacing.NewRUCap(0, clk), dead: dead, stats: stats,
		retry: &migrate.Retrier{Clock: clk, Tries: 4}}
	return w, dst, clk
}

// changes transforms source items given as JSON.
func changes(t *testing.T, w *Writer, items ...string) []Change {
	t.Helper()
	out := make([]Change, 0, len(items))
	for _, it := range items {
		res, err := w.tr.Apply([]byte(it))
		if err != nil {
			t.Fatalf("transform %s: %v", it, err)
		}
		out = append(out, Change{Result: res, Source: []byte(it)})
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
	if len(dst.Items()) != 4 {
		t.Fatalf("target has %d items, want 4", len(dst.Items()))
	}
	s := w.stats.Snapshot()
	if s.Created != 4 || s.Batches != 1 || dst.Calls()["batch"] != 1 || dst.Calls()["create"] != 1 {
		t.Fatalf("want the three items of key a-x in one batch and b-x alone: stats %+v, calls %v", s, dst.Calls())
	}
	if ru != s.TargetRU() || ru <= 0 {
		t.Fatalf("page RU %.1f, stats %.1f", ru, s.TargetRU())
	}
	got, _ := dst.Get(migrate.Key{transform.StringValue("a-x")}, "1")
	if !strings.Contains(string(got.Body), `"pk":"a-x"`) || strings.Contains(string(got.Body), `"_ts":1700000000`) {
		t.Fatalf("target item %s: want the key property and the target's system properties, not the source's", got.Body)
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
	if s.Unchanged != 3 || s.Updated != 0 || dst.Calls()["replace"] != 0 {
		t.Fatalf("replay: want 3 unchanged and no replace, got %+v calls %v", s, dst.Calls())
	}
	// A newer version replaces the copy, with If-Match on what was read.
	if _, err := w.writePage(ctx, changes(t, w, item("3", "us", "b", 2)), nil); err != nil {
		t.Fatal(err)
	}
	got, _ := dst.Get(migrate.Key{transform.StringValue("b-x")}, "3")
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
			if len(dst.Items()) != 1 {
				t.Fatalf("target has %d items, want 1", len(dst.Items()))
			}
			if err := w.dead.Sync(); err != nil {
				t.Fatal(err)
			}
			dl, err := w.dead.List()
			if err != nil || len(dl) != 1 {
				t.Fatalf("dead letters %v %v, want 1", dl, err)
			}
			got, _ := dst.Get(migrate.Key{transform.StringValue("a-x")}, "1")
			owner := `["eu"]`
			loser := `["us"]`
			if strings.Contains(string(got.Body), `"region":"us"`) {
				owner, loser = loser, owner
			}
			if dl[0].Kind != migrate.KindCollision || !strings.Contains(dl[0].Reason, owner) || !strings.Contains(dl[0].Reason, loser) || string(dl[0].SourceKey) != loser {
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
	dst.Intercept(func(op string, key migrate.Key, id string) error {
		switch {
		case op == "create" && throttles > 0:
			throttles--
			return &migrate.RequestError{Op: op, Status: http.StatusTooManyRequests, RetryAfter: 250 * time.Millisecond}
		case op == "create" && transients > 0:
			transients--
			return &migrate.RequestError{Op: op, Status: http.StatusServiceUnavailable}
		}
		return nil
	})
	if _, err := w.writePage(context.Background(), changes(t, w, item("1", "eu", "a", 1)), nil); err != nil {
		t.Fatal(err)
	}
	if len(dst.Items()) != 1 {
		t.Fatal("the item was not written")
	}
	waitedForThrottle := 0
	for _, d := range clk.Slept() {
		if d >= 250*time.Millisecond && d <= 275*time.Millisecond {
			waitedForThrottle++
		}
	}
	if waitedForThrottle != 3 || w.stats.Snapshot().Throttled != 3 {
		t.Fatalf("want three waits of retry-after (+<=10%% jitter), slept %v", clk.Slept())
	}

	// A transient failure that does not go away stops the run.
	dst.Intercept(func(op string, key migrate.Key, id string) error {
		return &migrate.RequestError{Op: op, Status: http.StatusServiceUnavailable}
	})
	_, err := w.writePage(context.Background(), changes(t, w, item("2", "eu", "a", 1)), nil)
	if !errors.Is(err, migrate.ErrTransient) || !strings.Contains(err.Error(), "giving up after 4 attempts") {
		t.Fatalf("want the transient error after 4 attempts, got %v", err)
	}
}

func TestWriterDeadLettersRefusedItems(t *testing.T) {
	w, dst, _ := testWriter(t)
	dst.Intercept(func(op string, key migrate.Key, id string) error {
		switch id {
		case "bad":
			return &migrate.RequestError{Op: op, Status: http.StatusBadRequest, Message: "One of the specified inputs is invalid"}
		case "big":
			return &migrate.RequestError{Op: op, Status: http.StatusRequestEntityTooLarge}
		}
		return nil
	})
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
	if kinds["bad"] != migrate.KindRejected || kinds["big"] != migrate.KindTooLarge || len(kinds) != 2 || len(dst.Items()) != 1 {
		t.Fatalf("dead letters %v, target %d items", kinds, len(dst.Items()))
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
	dst.Intercept(func(op string, key migrate.Key, id string) error {
		if op == "replace" && !raced {
			raced = true
			return &migrate.RequestError{Op: op, Status: http.StatusPreconditionFailed}
		}
		return nil
	})
	if _, err := w.writePage(ctx, changes(t, w, item("1", "eu", "a", 2)), nil); err != nil {
		t.Fatal(err)
	}
	got, _ := dst.Get(migrate.Key{transform.StringValue("a-x")}, "1")
	if !raced || !strings.Contains(string(got.Body), `"v":2`) || dst.Calls()["read"] != 2 {
		t.Fatalf("want a second read after the 412 and the new version written; body %s calls %v", got.Body, dst.Calls())
	}
}

// failingState is a state whose meta updates fail with err while it is set.
type failingState struct {
	lease.Store
	err error
}

func (s *failingState) UpdateMeta(ctx context.Context, m lease.Meta) error {
	if s.err != nil {
		return s.err
	}
	return s.Store.UpdateMeta(ctx, m)
}

func (s *failingState) SwapMeta(ctx context.Context, change func(*lease.Meta) error) (lease.Meta, error) {
	if s.err != nil {
		return lease.Meta{}, s.err
	}
	return s.Store.SwapMeta(ctx, change)
}

// The writer records a default's use before it writes the item, and writes
// nothing when the use cannot be recorded.
func TestWriterRecordsDefaultsBeforeWriting(t *testing.T) {
	ctx := context.Background()
	w, dst, _ := testWriter(t)
	w.tr = migratetest.Transformer(t, "/region", "/pk={tenant?none}-x")
	files, err := lease.OpenFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { files.Close() })
	store := &failingState{Store: files}
	if _, err := migrate.OpenMeta(ctx, store, migrate.NewMeta("src", "dst", w.tr, time.Time{}), "state"); err != nil {
		t.Fatal(err)
	}
	w.defaults = migrate.NewDefaultUses(store, w.tr)
	full := errors.New("disk full")
	store.err = full
	cs := changes(t, w, item("a", "eu", "t1", 1), `{"id":"b","region":"eu","v":1}`)
	if _, err := w.writePage(ctx, cs, nil); !errors.Is(err, full) {
		t.Fatalf("writePage with the state unwritable: %v", err)
	}
	if len(dst.Items()) != 0 {
		t.Fatalf("%d items written although their default's use was not recorded", len(dst.Items()))
	}
	store.err = nil
	if _, err := w.writePage(ctx, cs, nil); err != nil {
		t.Fatal(err)
	}
	if m, _ := store.ReadMeta(ctx); len(dst.Items()) != 2 || len(m.DefaultsUsed) != 1 {
		t.Fatalf("%d items written, uses %+v", len(dst.Items()), m.DefaultsUsed)
	}
}

// A target with a unique key policy (--unique-keys copy) refuses an item
// whose unique key values another item of its logical partition holds:
// its create answers 409 although no item holds its id and key, and a
// replace answers 409. Both are dead-lettered as unique-key, not retried
// until the run fails.
func TestWriterDeadLettersUniqueKeyViolations(t *testing.T) {
	w, dst, _ := testWriter(t)
	conflict := &migrate.RequestError{Op: "write", Status: http.StatusConflict, Message: "Unique index constraint violation."}
	dst.Intercept(func(op string, key migrate.Key, id string) error {
		if id == "dup" && op == migratetest.OpCreate || id == "upd" && op == migratetest.OpReplace {
			return conflict
		}
		return nil
	})
	if _, err := w.writePage(context.Background(), changes(t, w, item("upd", "eu", "u", 1)), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := w.writePage(context.Background(), changes(t, w, item("dup", "eu", "a", 1), item("upd", "eu", "u", 2), item("ok", "eu", "c", 1)), nil); err != nil {
		t.Fatalf("a unique key violation stopped the page: %v", err)
	}
	if err := w.dead.Sync(); err != nil {
		t.Fatal(err)
	}
	dl, _ := w.dead.List()
	kinds := map[string]string{}
	for _, d := range dl {
		kinds[d.SourceID] = d.Kind
	}
	if kinds["dup"] != migrate.KindUniqueKey || kinds["upd"] != migrate.KindUniqueKey || len(kinds) != 2 {
		t.Fatalf("dead letters %v, want dup and upd as unique-key", kinds)
	}
}
