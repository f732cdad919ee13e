package verify_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/rekey-dev/rekey/lease"
	"github.com/rekey-dev/rekey/migrate"
	"github.com/rekey-dev/rekey/migrate/internal/rig"
	"github.com/rekey-dev/rekey/migrate/migratetest"
	"github.com/rekey-dev/rekey/migrate/verify"
)

// A verify --fix that is fixing when a cutover is requested writes nothing
// more: the cutover then waits for the target to be quiet, verifies (which
// sees the writes the fix sent before) and records, and the application
// owns the target from then on. Before, verify --fix looked at the phase
// only as it started, then wrote every difference it had examined,
// however long that took: with a lease container as the state (no
// directory lock) a cutover could run, verify and record in the meantime,
// and the fix went on writing, a copy of an item the application deleted
// since among them.
func TestVerifyFixStopsWhenACutoverIsRequested(t *testing.T) {
	r := rig.New(t)
	migratetest.MustUpsert(t, r.Src, rig.Doc("a", "eu", "t1", 1))
	r.CopyAll(t)
	for _, id := range []string{"b", "c", "d"} { // never copied: missing
		migratetest.MustUpsert(t, r.Src, rig.Doc(id, "eu", "t1", 1))
	}
	ctx := context.Background()
	var mu sync.Mutex
	var writes []string
	var once sync.Once
	r.Dst.Intercept(func(op string, _ migrate.Key, id string) error {
		if op != migratetest.OpCreate && op != migratetest.OpReplace && op != migratetest.OpDelete && op != migratetest.OpBatch {
			return nil
		}
		mu.Lock()
		writes = append(writes, op+" "+id)
		mu.Unlock()
		once.Do(func() { // while the fix writes its first item, a cutover is requested
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
	_, err := r.Verifier().Verify(ctx, verify.Config{Fix: true, RecheckDelay: -1, TempDir: t.TempDir()})
	r.Dst.Intercept(nil)
	var busy *migrate.CutoverInProgressError
	if !errors.As(err, &busy) {
		t.Fatalf("verify --fix returned %v, want it stopped by the cutover request", err)
	}
	if len(writes) != 1 {
		t.Fatalf("verify --fix wrote %v, want only the write in flight when the cutover was requested", writes)
	}
}
