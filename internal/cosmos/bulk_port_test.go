package cosmos

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rekey-dev/rekey/internal/emulator"
	"github.com/rekey-dev/rekey/migrate"
)

// The pipeline builds its bulk requests within migrate's limits, which
// must be the transport's (docs/cosmos-bulk.md#limits).
func TestBulkPortLimitsAreTheTransports(t *testing.T) {
	if migrate.MaxBulkOperations != MaxBulkOperations || migrate.BulkRequestBytes != TargetBulkRequestBytes {
		t.Fatalf("migrate's bulk limits %d ops, %d bytes; the transport's %d, %d",
			migrate.MaxBulkOperations, migrate.BulkRequestBytes, MaxBulkOperations, TargetBulkRequestBytes)
	}
}

// TestBulkPort: PartitionsOf routes keys as RangeOfKey does; Bulk creates,
// reads and replaces through ExecuteBulk and converts each answer: ETag,
// the read item, the error's class, whether to send it again.
func TestBulkPort(t *testing.T) {
	e := newEnv(t)
	c := e.container(t, "c", 24000)
	var keys []migrate.Key
	for i := range 40 {
		keys = append(keys, key(fmt.Sprintf("k%d", i)))
	}
	parts, err := c.PartitionsOf(tctx(t), keys)
	if err != nil {
		t.Fatal(err)
	}
	distinct := map[string]bool{}
	for i, k := range keys {
		r, err := c.RangeOfKey(tctx(t), k)
		if err != nil || r.ID != parts[i] {
			t.Fatalf("key %s: PartitionsOf says %s, RangeOfKey %s (%v)", k, parts[i], r.ID, err)
		}
		distinct[parts[i]] = true
	}
	if len(distinct) < 2 {
		t.Fatalf("40 keys in %d partition(s), want several", len(distinct))
	}

	part := parts[0]
	k := keys[0]
	create := func(id string, v int) migrate.BulkOp {
		return migrate.BulkOp{Type: migrate.BulkCreate, Key: k, Body: itemBody(t, id, "k0", v)}
	}
	resp, err := c.Bulk(tctx(t), part, []migrate.BulkOp{create("a", 1), create("b", 1)})
	if err != nil || len(resp.Results) != 2 || resp.RU <= 0 {
		t.Fatalf("creates: %+v, %v", resp, err)
	}
	etag := resp.Results[0].ETag
	for _, r := range resp.Results {
		if r.Err != nil || r.ETag == "" || r.RU <= 0 || r.Resend {
			t.Fatalf("create result %+v", r)
		}
	}
	if _, err := e.srv.InjectFault(emulator.Fault{Container: "c", BulkOperationStatus: 429, RetryAfter: 40 * time.Millisecond, Count: 1}); err != nil {
		t.Fatal(err)
	}
	resp, err = c.Bulk(tctx(t), part, []migrate.BulkOp{
		{Type: migrate.BulkRead, Key: k, ID: "b"}, // throttled by the fault
		create("a", 2),
		{Type: migrate.BulkRead, Key: k, ID: "a"},
		{Type: migrate.BulkReplace, Key: k, ID: "a", Body: itemBody(t, "a", "k0", 3), IfMatch: etag},
		{Type: migrate.BulkReplace, Key: k, ID: "b", Body: itemBody(t, "b", "k0", 3), IfMatch: `"stale"`},
		{Type: migrate.BulkRead, Key: k, ID: "nope"},
	})
	if err != nil || len(resp.Results) != 6 {
		t.Fatalf("mixed request: %+v, %v", resp, err)
	}
	r := resp.Results
	switch {
	case !errors.Is(r[0].Err, migrate.ErrThrottled) || !r[0].Resend || migrate.RetryAfter(r[0].Err) != 40*time.Millisecond:
		t.Fatalf("throttled read: %+v", r[0])
	case !errors.Is(r[1].Err, migrate.ErrConflict) || r[1].Resend:
		t.Fatalf("create of an existing item: %+v", r[1])
	case r[2].Err != nil || !strings.Contains(string(r[2].Body), `"v":1`) || r[2].ETag != etag:
		t.Fatalf("read: %+v (body %s)", r[2], r[2].Body)
	case r[3].Err != nil || r[3].ETag == etag:
		t.Fatalf("replace with the current ETag: %+v", r[3])
	case !errors.Is(r[4].Err, migrate.ErrPreconditionFailed) || r[4].Resend:
		t.Fatalf("replace with a stale ETag: %+v", r[4])
	case !errors.Is(r[5].Err, migrate.ErrNotFound) || r[5].Resend:
		t.Fatalf("read of a missing item: %+v", r[5])
	}

	// A request the transport would refuse as over 2 MB is too large.
	big := strings.Repeat("x", 1200<<10)
	_, err = c.Bulk(tctx(t), part, []migrate.BulkOp{
		{Type: migrate.BulkCreate, Key: k, Body: doc(t, map[string]any{"id": "big1", "pk": "k0", "pad": big})},
		{Type: migrate.BulkCreate, Key: k, Body: doc(t, map[string]any{"id": "big2", "pk": "k0", "pad": big})},
	})
	if !errors.Is(err, migrate.ErrTooLarge) || !errors.Is(err, ErrBulkRequestTooLarge) {
		t.Fatalf("two 1.2 MB creates: %v, want ErrTooLarge", err)
	}
}
