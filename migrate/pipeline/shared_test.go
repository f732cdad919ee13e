package pipeline

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"
	"time"
)

// A shared --until-caught-up run counts a lease as caught up only when it
// reached the end of its feed after the run started. Here the lease of the
// lower range belongs to a worker that is gone: it marked the range caught
// up long ago, and items were written to it since. The run takes the
// lease over once it expires and follows it to the end before it exits.
// Before, it judged the range by the stale mark, in the very pass that took
// it over, and exited without copying them.
func TestSharedRunFollowsALeaseWithAStaleCaughtUpMark(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		src, dst := newSource(t), newTarget(t)
		upsert(t, src, "first", "in", "a", 1)
		dir := t.TempDir()
		r := testRunner(t, src, dst, dir)
		if _, err := r.Run(ctx, RunConfig{UntilCaughtUp: true}); err != nil {
			t.Fatal(err)
		}
		for i := range 5 { // "in" is in the lower range
			upsert(t, src, fmt.Sprintf("later-%d", i), "in", "a", 1)
		}
		ls, err := r.Store.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range ls {
			if l.Range.Min == "" { // a worker that is gone holds it, caught up before the items
				l.Owner = "gone"
				if _, err := r.Store.Update(ctx, l); err != nil {
					t.Fatal(err)
				}
			}
		}
		time.Sleep(time.Second)
		sum, err := r.Run(ctx, RunConfig{UntilCaughtUp: true, Shared: true, LeaseTTL: 4 * time.Second, Owner: "w2"})
		if err != nil || !sum.CaughtUp {
			t.Fatalf("shared run: %+v %v", sum, err)
		}
		if n := len(dst.Items()); n != 6 {
			t.Fatalf("target holds %d items, want 6: the gone worker's range was not followed to its end", n)
		}
		if ls, _ := r.Store.List(ctx); len(ls) != 2 || ls[0].Owner != "" || ls[1].Owner != "" {
			t.Fatalf("leases %+v: want both released", ls)
		}
	})
}
