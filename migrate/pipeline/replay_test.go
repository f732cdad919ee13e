package pipeline_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/rekey-dev/rekey/lease"
	"github.com/rekey-dev/rekey/migrate"
	"github.com/rekey-dev/rekey/migrate/internal/rig"
	"github.com/rekey-dev/rekey/migrate/migratetest"
	"github.com/rekey-dev/rekey/migrate/pipeline"
)

// racingSource is the rig's source whose first ReadItem of an item is
// followed, before the caller gets its answer, by what the application
// and a running worker do meanwhile: after runs once, after the read.
type racingSource struct {
	*migratetest.Container
	after func()
}

func (s *racingSource) ReadItem(ctx context.Context, key migrate.Key, id string) (migrate.Item, error) {
	it, err := s.Container.ReadItem(ctx, key, id)
	if s.after != nil {
		f := s.after
		s.after = nil
		f()
	}
	return it, err
}

// A dead-letter replay never puts an older version over a newer copy, also
// when a worker copies a newer version between the replay's read of the
// source and its write (a cosmos:// state: 'rekey deadletter replay' runs
// beside the workers, no lock keeps them apart). Before, Replay read v2, a
// worker wrote v3's copy, Replay's create was refused with 409, and it
// replaced the v3 copy with v2: the target kept v2 while the source held
// v3, and no later change of the feed repaired it. Now it reads the source
// again after its write, and writes again.
func TestDeadLetterReplayNeverOverwritesANewerCopyWrittenMeanwhile(t *testing.T) {
	r := rig.New(t)
	ctx := context.Background()
	migratetest.MustUpsert(t, r.Src, rig.Doc("x", "eu", "t1", 2)) // v2, dead-lettered earlier
	src := &racingSource{Container: r.Src}
	src.after = func() {
		v3 := rig.Doc("x", "eu", "t1", 3)
		migratetest.MustUpsert(t, r.Src, v3) // the application
		_, body := r.CopyOf(t, v3)
		migratetest.MustUpsert(t, r.Dst, body) // a worker copies v3
	}
	runner := r.Runner()
	runner.Source = src
	res, err := runner.Replay(ctx, []migrate.DeadLetter{{SourceID: "x", SourceKey: json.RawMessage(`["eu"]`), Kind: "rejected"}})
	if err != nil {
		t.Fatalf("replay: %+v %v", res, err)
	}
	got, ok := r.TargetCopy(t, rig.Doc("x", "eu", "t1", 3))
	if !ok {
		t.Fatal("the copy is gone")
	}
	var d struct{ V int }
	if err := json.Unmarshal(got.Body, &d); err != nil {
		t.Fatal(err)
	}
	if d.V != 3 {
		t.Fatalf("the target holds v%d of x after the replay, the source v3: an older version was written over a newer copy", d.V)
	}
}

// In all-versions mode a key change removes the copy under the old key. A
// version that could not be transformed (its key field missing) is
// dead-lettered and leaves the earlier copy where it is; once the user
// adds a default for the field (allowed: no written key used it) and
// replays, the replay writes the item under the default and removes the
// copy the earlier version left. Before, the copy of v1 under t1 stayed,
// an orphan with outdated content beside the new copy, and no later
// all-versions page touched it.
func TestDeadLetterReplayInAllVersionsModeRemovesTheCopyUnderTheOldKey(t *testing.T) {
	r, _ := versioned(t, true)
	upsert(t, r, rig.Doc("x", "eu", "t1", 1))
	syncRun(t, r, pipeline.RunConfig{Mode: pipeline.ModeAllVersions})
	upsert(t, r, `{"id":"x","region":"eu","v":2}`) // no tenant: dead-lettered
	syncRun(t, r, pipeline.RunConfig{Mode: pipeline.ModeAllVersions})
	entries, err := r.Dead.List()
	if err != nil || len(entries) != 1 {
		t.Fatalf("dead letters %v, %v: want the version without a tenant", entries, err)
	}
	fixed := migratetest.Transformer(t, "/region", "/pk={tenant?none}") // the fix: a default
	if _, err := migrate.OpenMeta(context.Background(), r.Store, migrate.NewMeta("src", "dst", fixed, time.Time{}), "state"); err != nil {
		t.Fatalf("the state refuses the added default: %v", err)
	}
	runner := r.Runner()
	runner.Transformer = fixed
	res, err := runner.Replay(context.Background(), entries)
	if err != nil || res.Written != 1 {
		t.Fatalf("replay %+v, %v: want x written", res, err)
	}
	if _, ok := r.Dst.Get(rig.Key("none"), "x"); !ok {
		t.Fatal("x was not written under the default key")
	}
	if old, ok := r.Dst.Get(rig.Key("t1"), "x"); ok {
		t.Fatalf("the copy of v1 under the old key t1 is left beside the replayed one: %s", old.Body)
	}
}

// changingSource is the rig's source whose item the application updates
// right after each read of it, as a hot item is.
type changingSource struct {
	*migratetest.Container
	t testing.TB
	v int
}

func (s *changingSource) ReadItem(ctx context.Context, key migrate.Key, id string) (migrate.Item, error) {
	it, err := s.Container.ReadItem(ctx, key, id)
	s.v++
	migratetest.MustUpsert(s.t, s.Container, rig.Doc(id, "eu", "t1", s.v))
	return it, err
}

// An item that changes in the source during every attempt to replay it
// keeps its dead letter: no attempt's write can be shown to stand (a
// worker may have copied a newer version in between), and a dead letter
// is resolved only on that proof.
func TestDeadLetterReplayKeepsTheDeadLetterOfAnItemThatKeepsChanging(t *testing.T) {
	r := rig.New(t)
	ctx := context.Background()
	migratetest.MustUpsert(t, r.Src, rig.Doc("x", "eu", "t1", 1))
	dl := migrate.DeadLetter{SourceID: "x", SourceKey: json.RawMessage(`["eu"]`), Kind: migrate.KindRejected, Item: []byte(rig.Doc("x", "eu", "t1", 1))}
	if err := r.Dead.Add(dl); err != nil {
		t.Fatal(err)
	}
	runner := r.Runner()
	runner.Source = &changingSource{Container: r.Src, t: t, v: 1}
	res, err := runner.Replay(ctx, []migrate.DeadLetter{dl})
	if err != nil || res.Changing != 1 || res.Written != 0 {
		t.Fatalf("replay %+v, %v: want x counted as changing", res, err)
	}
	if n := r.DeadCount(t); n != 1 {
		t.Fatalf("%d dead letters after the replay, want x's kept", n)
	}
}

// A replay that is writing when a cutover is requested writes nothing
// more, as verify --fix does: it reads the state before each item.
func TestDeadLetterReplayStopsWhenACutoverIsRequested(t *testing.T) {
	r := rig.New(t)
	ctx := context.Background()
	var entries []migrate.DeadLetter
	for _, id := range []string{"x", "y"} {
		migratetest.MustUpsert(t, r.Src, rig.Doc(id, "eu", "t1", 1))
		entries = append(entries, migrate.DeadLetter{SourceID: id, SourceKey: json.RawMessage(`["eu"]`), Kind: migrate.KindRejected})
	}
	var once sync.Once
	r.Dst.Intercept(func(op string, _ migrate.Key, id string) error {
		once.Do(func() {
			if _, err := r.Store.SwapMeta(ctx, func(m *lease.Meta) error {
				now := time.Now().UTC()
				m.CutoverRequest = &lease.CutoverRequest{Owner: "cutover-1", At: now, RenewedAt: now, TTL: time.Minute}
				return nil
			}); err != nil {
				t.Errorf("request a cutover: %v", err)
			}
		})
		return nil
	})
	res, err := r.Runner().Replay(ctx, entries)
	var busy *migrate.CutoverInProgressError
	if !errors.As(err, &busy) || res.Replayed != 1 {
		t.Fatalf("replay %+v, %v: want it stopped by the cutover request after the first item", res, err)
	}
	if _, ok := r.Dst.Get(rig.Key("t1"), "y"); ok {
		t.Fatal("the replay wrote y after the cutover was requested")
	}
}
