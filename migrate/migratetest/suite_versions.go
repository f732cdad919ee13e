package migratetest

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/rekey-dev/rekey/internal/epk"
	"github.com/rekey-dev/rekey/migrate"
)

// VersionStore is what RunVersions tests: a Store that also reads the
// all-versions-and-deletes change feed, finds a source item's copies and
// reports its default time to live, as the internal/cosmos adapter's
// Container does.
type VersionStore interface {
	Store
	migrate.VersionSource
	migrate.CopyFinder
	migrate.TimeToLive
}

// OpenVersions returns a fresh, empty container keyed by /pk (Hash v2)
// with two physical partitions and a default time to live of VersionsTTL
// (items may carry their own "ttl"), whose change feed policy keeps the
// all-versions feed for retention; 0: no policy. Its Store must be a
// VersionStore, on a clock that only the fixture's Sleep moves.
type OpenVersions func(t *testing.T, retention time.Duration) Fixture

// VersionsTTL is the default time to live of an OpenVersions container.
const VersionsTTL = time.Hour

// versionsRetention is the retention of RunVersions' containers: whole
// minutes, as a change feed policy counts it.
const versionsRetention = 10 * time.Minute

// NewVersionsFixture is an OpenVersions for this package's Container,
// with previous images of deletes (the emulator sends them), on a fake
// clock that moves only when a suite sleeps.
func NewVersionsFixture(t *testing.T, retention time.Duration) Fixture {
	opts := []Option{WithPartitions(2), WithDefaultTTL(VersionsTTL)}
	if retention > 0 {
		opts = append(opts, WithAllVersions(retention, true))
	}
	return newFixture(t, hashKey, opts...)
}

// RunVersions checks that a container keeps the contract of the
// all-versions-and-deletes change feed as the service does: a 400 without
// a change feed policy; a feed that starts from a bookmark ("now") and
// carries every create, replace and delete after it in LSN order, a
// delete with its item's id and partition key (and, when sent, the version
// it deleted), expiries by time to live as deletes that say so; per feed
// range, across a split; a 400 for a position older than the retention;
// and the ports that go with it: copies found by id and source key, the
// default time to live.
func RunVersions(t *testing.T, open OpenVersions) {
	t.Helper()
	vstore := func(t *testing.T, f Fixture) VersionStore {
		t.Helper()
		vs, ok := f.Store.(VersionStore)
		if !ok {
			t.Fatalf("%T is not a VersionStore", f.Store)
		}
		return vs
	}

	t.Run("NotEnabledWithoutAPolicy", func(t *testing.T) {
		s := vstore(t, open(t, 0))
		_, err := s.VersionsBookmark(ctx(t), everything)
		if !errors.Is(err, migrate.ErrAllVersionsNotEnabled) || !errors.Is(err, migrate.ErrBadRequest) || errors.Is(err, migrate.ErrOutOfRetention) {
			t.Fatalf("bookmark without a change feed policy: %v, want a 400 that is ErrAllVersionsNotEnabled", err)
		}
	})

	t.Run("FromABookmarkEveryChangeInOrder", func(t *testing.T) {
		s := vstore(t, open(t, versionsRetention))
		create(t, s, "before", "p", 1) // made before the bookmark: not in the feed
		bookmark, err := s.VersionsBookmark(ctx(t), everything)
		if err != nil || bookmark == "" {
			t.Fatalf("bookmark: %q, %v", bookmark, err)
		}
		replace(t, s, "before", "p", 2)
		create(t, s, "b", "p", 1)
		if _, err := s.Delete(ctx(t), key("p"), "before", ""); err != nil {
			t.Fatal(err)
		}
		got, cont := drainVersions(t, s, everything, bookmark, 2)
		if ops := opsOf(got); !slices.Equal(ops, []string{"replace before", "create b", "delete before"}) {
			t.Fatalf("feed from the bookmark = %v, want [replace before, create b, delete before]", ops)
		}
		for i, ch := range got {
			if ch.TS <= 0 || (i > 0 && ch.LSN <= got[i-1].LSN) {
				t.Errorf("change %d: LSN %d, TS %d: want a time and increasing LSNs in one partition", i, ch.LSN, ch.TS)
			}
		}
		if v := decoded(t, got[0].Current)["v"]; v != float64(2) {
			t.Errorf("the replace carries version %v, want 2", v)
		}
		del := got[2]
		if del.Current != nil || del.ID != "before" || !sameKey(del.SourceKey, key("p")) || del.TTLExpired {
			t.Errorf("delete: current %s, id %q, key %s, expiry %v; want no current, id before, key [\"p\"], not an expiry", del.Current, del.ID, keyText(del.SourceKey), del.TTLExpired)
		}
		if del.Previous != nil && decoded(t, del.Previous)["v"] != float64(2) {
			t.Errorf("delete: previous %s, want the version it deleted (v 2)", del.Previous)
		}
		// The continuation of the empty page resumes after everything read,
		// and reading from it again gives the same changes.
		create(t, s, "c", "p", 1)
		more, _ := drainVersions(t, s, everything, cont, 2)
		again, _ := drainVersions(t, s, everything, cont, 2)
		if !slices.Equal(opsOf(more), []string{"create c"}) || !slices.Equal(opsOf(again), opsOf(more)) {
			t.Errorf("after the end: %v, then %v; want [create c] twice", opsOf(more), opsOf(again))
		}
	})

	t.Run("PerFeedRangeAndAcrossASplit", func(t *testing.T) {
		f := open(t, versionsRetention)
		s := vstore(t, f)
		ranges, err := s.FeedRanges(ctx(t))
		if err != nil || len(ranges) != 2 {
			t.Fatalf("feed ranges %v, %v; want 2", ranges, err)
		}
		marks := make([]string, len(ranges))
		for i, r := range ranges {
			if marks[i], err = s.VersionsBookmark(ctx(t), r); err != nil {
				t.Fatal(err)
			}
		}
		edef := epk.Definition{Paths: hashKey.Paths, Kind: epk.KindHash, Version: epk.Version2}
		eranges := []epk.Range{{Min: ranges[0].Min, Max: ranges[0].Max}, {Min: ranges[1].Min, Max: ranges[1].Max}}
		want := map[string]int{} // change -> the range its item's EPK lies in
		write := func(round int) {
			for i := range 12 {
				id, pk := fmt.Sprintf("r%d-%d", round, i), fmt.Sprintf("k%d", i)
				e, err := epk.Hash(edef, []any{pk})
				if err != nil {
					t.Fatal(err)
				}
				idx, _ := epk.Find(eranges, e)
				create(t, s, id, pk, 1)
				want["create "+id] = idx
				if i%3 == 0 {
					if _, err := s.Delete(ctx(t), key(pk), id, ""); err != nil {
						t.Fatal(err)
					}
					want["delete "+id] = idx
				}
			}
		}
		check := func(what string) {
			t.Helper()
			for i, r := range ranges {
				var got []migrate.VersionChange
				got, marks[i] = drainVersions(t, s, r, marks[i], 5)
				for _, op := range opsOf(got) {
					if w, ok := want[op]; !ok || w != i {
						t.Errorf("%s: %q read from range %d, want it once, from range %d", what, op, i, w)
					}
					delete(want, op)
				}
			}
			if len(want) > 0 {
				t.Errorf("%s: changes in no range's feed: %v", what, want)
			}
		}
		write(0)
		check("before a split")
		f.Split(t, ranges[0].Min) // the first range's continuation follows both children
		write(1)
		check("after a split")
	})

	t.Run("OutOfRetention", func(t *testing.T) {
		f := open(t, versionsRetention)
		s := vstore(t, f)
		bookmark, err := s.VersionsBookmark(ctx(t), everything)
		if err != nil {
			t.Fatal(err)
		}
		create(t, s, "a", "p", 1)
		f.Sleep(t, versionsRetention+time.Minute)
		create(t, s, "b", "p", 1)
		_, err = s.ReadVersions(ctx(t), migrate.VersionRequest{Range: everything, Continuation: bookmark, PageSize: 10})
		if !errors.Is(err, migrate.ErrOutOfRetention) || !errors.Is(err, migrate.ErrBadRequest) || errors.Is(err, migrate.ErrAllVersionsNotEnabled) {
			t.Fatalf("read from a position past the retention: %v, want a 400 that is ErrOutOfRetention", err)
		}
		fresh, err := s.VersionsBookmark(ctx(t), everything)
		if err != nil {
			t.Fatal(err)
		}
		create(t, s, "c", "p", 1)
		if got, _ := drainVersions(t, s, everything, fresh, 10); !slices.Equal(opsOf(got), []string{"create c"}) {
			t.Errorf("from a new bookmark: %v, want [create c]", opsOf(got))
		}
	})

	t.Run("ExpiriesAreDeletes", func(t *testing.T) {
		f := open(t, versionsRetention)
		s := vstore(t, f)
		if _, err := s.Create(ctx(t), key("p"), []byte(`{"id":"short","pk":"p","ttl":60}`)); err != nil {
			t.Fatal(err)
		}
		create(t, s, "long", "p", 1) // the container's default: an hour
		bookmark, err := s.VersionsBookmark(ctx(t), everything)
		if err != nil {
			t.Fatal(err)
		}
		f.Sleep(t, 2*time.Minute)
		got, _ := drainVersions(t, s, everything, bookmark, 10)
		if len(got) != 1 || got[0].Op != migrate.OpDelete || got[0].ID != "short" || !sameKey(got[0].SourceKey, key("p")) || !got[0].TTLExpired {
			expired := len(got) == 1 && got[0].TTLExpired
			t.Fatalf("feed after the expiry: %v (an expiry: %v), want one delete of short (key [\"p\"]) that says its time to live ran out", opsOf(got), expired)
		}
		if ttl, err := s.DefaultTTL(ctx(t)); err != nil || ttl != int(VersionsTTL/time.Second) {
			t.Errorf("default TTL = %d, %v; want %d", ttl, err, int(VersionsTTL/time.Second))
		}
	})

	t.Run("FindCopiesByIDAndSourceKey", func(t *testing.T) {
		s := vstore(t, open(t, 0))
		for _, b := range []string{
			`{"id":"a","pk":"n1","src":"x"}`, // the copy
			`{"id":"a","pk":"n2","src":"y"}`, // another item's copy with the same id
			`{"id":"b","pk":"n1","src":"x"}`, // another id
			`{"id":"a","pk":"n3"}`,           // no source key
		} {
			if _, err := s.Create(ctx(t), key(fmt.Sprint(decoded(t, []byte(b))["pk"])), []byte(b)); err != nil {
				t.Fatal(err)
			}
		}
		got, ru, err := s.FindCopies(ctx(t), "a", []string{"/src"}, key("x"))
		if err != nil || ru <= 0 || len(got) != 1 || got[0].ID != "a" || !sameKey(got[0].Key, key("n1")) || got[0].ETag == "" {
			t.Fatalf("find copies of a with source key x = %+v, %v RU, %v; want the one under n1, charged", got, ru, err)
		}
	})
}

// drainVersions reads range r's all-versions feed from cont in pages of
// size until a page is empty, returning the changes and that page's
// continuation.
func drainVersions(t *testing.T, s migrate.VersionSource, r migrate.FeedRange, cont string, size int) ([]migrate.VersionChange, string) {
	t.Helper()
	var out []migrate.VersionChange
	for range 1000 {
		page, err := s.ReadVersions(ctx(t), migrate.VersionRequest{Range: r, Continuation: cont, PageSize: size})
		if err != nil {
			t.Fatalf("read the all-versions feed of [%s, %s): %v", r.Min, r.Max, err)
		}
		if len(page.Changes) > size || page.Continuation == "" || page.RU <= 0 {
			t.Fatalf("page of %d changes (size %d), continuation %q, %v RU", len(page.Changes), size, page.Continuation, page.RU)
		}
		cont = page.Continuation
		if len(page.Changes) == 0 {
			return out, cont
		}
		out = append(out, page.Changes...)
	}
	t.Fatal("the all-versions feed never ran dry")
	return nil, ""
}

// opsOf renders changes as "op id", for comparisons and messages.
func opsOf(changes []migrate.VersionChange) []string {
	out := make([]string, len(changes))
	for i, ch := range changes {
		id := ch.ID
		if ch.Current != nil {
			members, _, err := parseObject(ch.Current)
			if err == nil {
				for _, m := range members {
					if m.name == "id" {
						id = string(m.raw[1 : len(m.raw)-1])
					}
				}
			}
		}
		out[i] = ch.Op + " " + id
	}
	return out
}
