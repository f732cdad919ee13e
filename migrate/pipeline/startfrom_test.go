package pipeline

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rekey-dev/rekey/lease"
	"github.com/rekey-dev/rekey/migrate"
	"github.com/rekey-dev/rekey/migrate/deadletter"
	"github.com/rekey-dev/rekey/migrate/migratetest"
)

// A migration that starts from a time copies only what changed since, in
// every partition of a lease's range: the range's first page comes from one
// partition, and the partitions its continuation has not read yet start at
// the recorded start too. Before, the requests after the first dropped the
// start, and those partitions were read from the beginning.
func TestRunStartsEveryPartitionOfALeaseAtTheRecordedStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		src := migratetest.MustNew(t, migrate.Definition{Paths: []string{"/region"}, Kind: "Hash", Version: 2}, migratetest.WithPartitions(2))
		dst := newTarget(t)
		for i := range 3 { // before the start, in both partitions
			upsert(t, src, fmt.Sprintf("old-in-%d", i), "in", "a", 1)
			upsert(t, src, fmt.Sprintf("old-eu-%d", i), "eu", "a", 1)
		}
		time.Sleep(2 * time.Second)
		start := time.Now()
		time.Sleep(2 * time.Second)
		for i := range 3 {
			upsert(t, src, fmt.Sprintf("new-in-%d", i), "in", "a", 1)
			upsert(t, src, fmt.Sprintf("new-eu-%d", i), "eu", "a", 1)
		}

		dir := t.TempDir()
		tr := migratetest.Transformer(t, "/region", "/pk={tenant}-x")
		store, err := lease.OpenFile(dir)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { store.Close() })
		meta := migrate.NewMeta("src", "dst", tr, start)
		meta.Ranges = []lease.Range{{Min: "", Max: "FF"}} // one lease over both partitions
		if _, err := migrate.OpenMeta(ctx, store, meta, dir); err != nil {
			t.Fatal(err)
		}
		dead, err := deadletter.OpenFile(filepath.Join(dir, "deadletter.jsonl"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { dead.Close() })
		r := &Runner{Source: src, Transformer: tr, Store: store, DeadLetters: dead, Writes: fixedWritePath(dst, 0)}
		if _, err := r.Run(ctx, RunConfig{PageSize: 2, UntilCaughtUp: true}); err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, it := range dst.Items() {
			ids = append(ids, it.ID)
		}
		slices.Sort(ids)
		want := []string{"new-eu-0", "new-eu-1", "new-eu-2", "new-in-0", "new-in-1", "new-in-2"}
		if !slices.Equal(ids, want) {
			t.Fatalf("copied %v, want only what changed since the start: %v", ids, want)
		}
	})
}
