package sim

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"

	"github.com/rekey-dev/rekey/migrate"
	"github.com/rekey-dev/rekey/transform"
)

// The target's bulk requests as a process sees them: routed by its map of
// the target's partitions, operations answered one by one and in order,
// a request to a partition that split (or holding a key the partition
// does not) answered 410 as a whole, and the map read again after it.
func TestBulkViewRoutesAndFollowsSplits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := testWorld(t) // seed 1: the target keyed on /pk
		p := w.newProcess("op", -1)
		_, tgt := p.views()
		ctx := context.Background()
		key := func(i int) migrate.Key { return migrate.Key{transform.StringValue(fmt.Sprintf("c%d-eu", i))} }
		body := func(i, v int) []byte {
			return fmt.Appendf(nil, `{"id":"i%d","pk":"c%d-eu","tenant":"t%d","v":%d}`, i, i, i, v)
		}
		keys := make([]migrate.Key, 16)
		for i := range keys {
			keys[i] = key(i)
		}
		parts, err := tgt.PartitionsOf(ctx, keys)
		if err != nil {
			t.Fatal(err)
		}
		byPart := map[string][]migrate.BulkOp{}
		for i, id := range parts {
			byPart[id] = append(byPart[id], migrate.BulkOp{Type: migrate.BulkCreate, Key: keys[i], Body: body(i, 1)})
		}
		if len(byPart) != w.sc.TargetPartitions {
			t.Fatalf("16 keys routed to %d partitions, want the target's %d", len(byPart), w.sc.TargetPartitions)
		}
		for id, ops := range byPart {
			resp, err := tgt.Bulk(ctx, id, ops)
			if err != nil {
				t.Fatal(err)
			}
			for i, r := range resp.Results {
				if r.Err != nil {
					t.Fatalf("create %d in %s: %v", i, partitionName(id), r.Err)
				}
			}
		}
		if n := len(w.dst.Items()); n != 16 {
			t.Fatalf("target holds %d items, want 16", n)
		}

		// One request: a create that conflicts, a read, a replace on the
		// read's ETag and one on a stale ETag, answered in order.
		home := parts[0]
		it, _ := w.dst.Get(keys[0], "i0")
		resp, err := tgt.Bulk(ctx, home, []migrate.BulkOp{
			{Type: migrate.BulkCreate, Key: keys[0], Body: body(0, 2)},
			{Type: migrate.BulkRead, Key: keys[0], ID: "i0"},
			{Type: migrate.BulkReplace, Key: keys[0], ID: "i0", Body: body(0, 3), IfMatch: it.ETag},
			{Type: migrate.BulkReplace, Key: keys[0], ID: "i0", Body: body(0, 4), IfMatch: it.ETag},
		})
		if err != nil {
			t.Fatal(err)
		}
		r := resp.Results
		if !errors.Is(r[0].Err, migrate.ErrConflict) || r[1].Err != nil || r[1].ETag != it.ETag || r[2].Err != nil ||
			!errors.Is(r[3].Err, migrate.ErrPreconditionFailed) || r[0].Resend || r[3].Resend {
			t.Fatalf("answers %+v: want 409, the item, the replace, 412", r)
		}
		if got, _ := w.dst.Get(keys[0], "i0"); versionOf(got.Body) != "v3" {
			t.Fatalf("the target holds %s, want v3", versionOf(got.Body))
		}

		// A key of another partition in the request: 410 as a whole.
		other := -1
		for i, id := range parts {
			if id != home {
				other = i
				break
			}
		}
		if other >= 0 {
			_, err := tgt.Bulk(ctx, home, []migrate.BulkOp{{Type: migrate.BulkRead, Key: keys[other], ID: fmt.Sprintf("i%d", other)}})
			if !errors.Is(err, migrate.ErrGone) {
				t.Fatalf("a request holding another partition's key: %v, want 410", err)
			}
		}

		// The partition splits: the process's routing still sends the key
		// there (the 410 above made it read the partitions again, before
		// the split), a request to it is answered 410, and the routing
		// read again sends the key to a child.
		if _, err := tgt.PartitionsOf(ctx, keys[:1]); err != nil {
			t.Fatal(err)
		}
		e, _ := w.dst.EPK(keys[0])
		if err := w.dst.Split(e); err != nil {
			t.Fatal(err)
		}
		if again, _ := tgt.PartitionsOf(ctx, keys[:1]); again[0] != home {
			t.Fatalf("the routing changed before a 410 told the process: %s", partitionName(again[0]))
		}
		if _, err := tgt.Bulk(ctx, home, []migrate.BulkOp{{Type: migrate.BulkRead, Key: keys[0], ID: "i0"}}); !errors.Is(err, migrate.ErrGone) {
			t.Fatalf("a request to a partition that split: %v, want 410", err)
		}
		again, err := tgt.PartitionsOf(ctx, keys[:1])
		if err != nil || again[0] == home {
			t.Fatalf("routed again to %v (%v), want a child of %s", again, err, partitionName(home))
		}
		resp, err = tgt.Bulk(ctx, again[0], []migrate.BulkOp{{Type: migrate.BulkRead, Key: keys[0], ID: "i0"}})
		if err != nil || resp.Results[0].Err != nil {
			t.Fatalf("a read from the child: %v %+v", err, resp.Results)
		}
	})
}
