package cutover

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rekey-dev/rekey/lease"
	"github.com/rekey-dev/rekey/migrate"
	"github.com/rekey-dev/rekey/migrate/deadletter"
	"github.com/rekey-dev/rekey/migrate/internal/rig"
	"github.com/rekey-dev/rekey/migrate/migratetest"
	"github.com/rekey-dev/rekey/migrate/pacing"
	"github.com/rekey-dev/rekey/migrate/pipeline"
	"github.com/rekey-dev/rekey/migrate/rollback"
	"github.com/rekey-dev/rekey/migrate/verify"
)

// The application deletes an item in the target while a rollback's cutover
// runs its final check, after the check's scan of the target read it. The
// rollback's cutover sees that, as the forward cutover sees a delete in the
// source during its verify, and checks again: recording "rolled back" with
// the item still in the source would hand the application back an item it
// deleted. Before, the Gate's delete check scanned the container the
// rollback writes into (the original source), not the target the
// application writes and deletes in, and the rollback recorded.
func TestRollbackCutoverSeesATargetDeleteDuringItsCheck(t *testing.T) {
	r := rig.New(t)
	for _, id := range []string{"a", "b", "c"} {
		migratetest.MustUpsert(t, r.Src, rig.Doc(id, "eu", "t"+id, 1))
	}
	r.CopyAll(t)
	ctx := context.Background()
	fwd := &Gate{Runner: r.Runner(), Verifier: r.Verifier(), Follow: r.Dst, Clock: r.Clock}
	if rep, err := fwd.Run(ctx, fencedConfig(t)); err != nil || !rep.Recorded {
		t.Fatalf("forward cutover: %v %+v", err, rep)
	}
	meta, err := r.Store.ReadMeta(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// The rollback, wired as cmd/rekey wires it.
	reverse, err := rollback.Reverse(r.Tr)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	store, err := lease.OpenFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if _, err := store.Init(ctx, rollback.Meta(meta, reverse, meta.Cutover)); err != nil {
		t.Fatal(err)
	}
	if err := rollback.StartLeases(ctx, store, meta.Cutover); err != nil {
		t.Fatal(err)
	}
	dead, err := deadletter.OpenFile(filepath.Join(dir, "deadletter.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dead.Close() })
	ledger, err := rollback.OpenFileLedger(filepath.Join(dir, "written"))
	if err != nil {
		t.Fatal(err)
	}
	writes := pipeline.NewWritePath(r.Src, pipeline.WritePathConfig{Flow: pacing.Config{Controller: pacing.ControllerFixed}})
	applier := &rollback.Applier{Reverse: reverse, Writer: writes.NewWriter(reverse, dead, nil), Dead: dead, Ledger: ledger, Horizon: meta.Cutover.SourceHorizon}
	runner := &pipeline.Runner{Source: r.Dst, Transformer: reverse, Store: store, DeadLetters: dead, Writes: writes, Applier: applier}
	if _, err := runner.Run(ctx, pipeline.RunConfig{UntilCaughtUp: true, PollInterval: time.Millisecond}); err != nil {
		t.Fatalf("rollback run: %v", err)
	}
	check := &rollback.Check{Verifier: &verify.Verifier{Source: r.Src, Target: r.Dst, Writer: r.Dst, Transformer: r.Tr, Clock: r.Clock}, Applier: applier}
	g := &Gate{Runner: runner, Verifier: check, Rollback: true, Clock: r.Clock}

	// The application deletes b in the target right after the final
	// check's scan of the target read it.
	bKey, _ := r.CopyOf(t, rig.Doc("b", "eu", "tb", 1))
	var mu sync.Mutex
	armed, deleted := false, 0
	g.Progress = func(step string) {
		mu.Lock()
		defer mu.Unlock()
		if strings.HasPrefix(step, "verifying") && deleted == 0 {
			armed = true
		}
	}
	r.Dst.AfterFeed(func(_ migrate.ChangeRequest, page migrate.ChangePage) {
		mu.Lock()
		defer mu.Unlock()
		for _, body := range page.Items {
			if armed && rig.IDOf(string(body)) == "b" {
				armed = false
				deleted++
				if _, err := r.Dst.Delete(context.Background(), bKey, "b", ""); err != nil {
					t.Error(err)
				}
			}
		}
	})
	cfg := fencedConfig(t)
	cfg.Run.Owner = "the-rollback-cutover"
	rep, err := g.Run(ctx, cfg)
	r.Dst.AfterFeed(nil)
	if deleted != 1 {
		t.Fatalf("the application's delete did not happen during the final check (%d)", deleted)
	}
	_, inSource := r.Src.Get(rig.Key("eu"), "b")
	if err == nil && rep.Recorded && inSource {
		t.Fatalf("the rollback's cutover recorded (%d checks) with b, which the application deleted in the target during its final check, still in the source", rep.Verifies)
	}
}
