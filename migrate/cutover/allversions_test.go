package cutover

import (
	"context"
	"testing"
	"time"

	"github.com/rekey-dev/rekey/migrate/internal/rig"
	"github.com/rekey-dev/rekey/migrate/migratetest"
	"github.com/rekey-dev/rekey/migrate/pipeline"
	"github.com/rekey-dev/rekey/migrate/verify"
)

// A migration that followed the all-versions feed leaves cutover's
// reconcile nothing to do: the deletes and key changes made while it
// synced were applied, so the final verify fixes nothing. Cutover marks
// and re-reads the ranges in the feed their leases follow: a change during
// its verify (here, a delete) sends it back to drain and verify again.
func TestCutoverAfterAnAllVersionsSyncFindsNothingToReconcile(t *testing.T) {
	r := rig.New(t, migratetest.WithAllVersions(time.Hour, false))
	for _, id := range []string{"a", "b", "c", "d"} {
		migratetest.MustUpsert(t, r.Src, rig.Doc(id, "eu", "t1", 1))
	}
	run := pipeline.RunConfig{PollInterval: time.Millisecond, Mode: pipeline.ModeAllVersions}
	sync := run
	sync.UntilCaughtUp = true
	if _, err := r.Runner().Run(context.Background(), sync); err != nil {
		t.Fatal(err)
	}
	migratetest.MustUpsert(t, r.Src, rig.Doc("a", "eu", "t2", 2)) // a key change
	if _, err := r.Src.Delete(context.Background(), rig.Key("eu"), "b", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Runner().Run(context.Background(), sync); err != nil {
		t.Fatal(err)
	}

	c := &Gate{Runner: r.Runner(), Verifier: r.Verifier(), Clock: r.Clock}
	deleted := false
	c.Progress = func(step string) {
		if !deleted && len(step) > 9 && step[:9] == "verifying" {
			deleted = true
			if _, err := r.Src.Delete(context.Background(), rig.Key("eu"), "c", ""); err != nil {
				t.Error(err)
			}
		}
	}
	rep, err := c.Run(context.Background(), Config{QuietPeriod: time.Second, Timeout: time.Minute, Run: run, Verify: verify.Config{RecheckDelay: -1, TempDir: t.TempDir()}})
	if err != nil || !rep.Recorded {
		t.Fatalf("cutover: %v %+v", err, rep)
	}
	if rep.Verifies != 2 {
		t.Errorf("%d final verifies: the delete during the first was not seen in the all-versions feed", rep.Verifies)
	}
	if f := rep.Verify.Fix; (f != nil && f.Deleted+f.Copied != 0) || !rep.Verify.Clean || rep.Verify.Matched != 2 {
		t.Fatalf("the final verify reconciled something: %+v, fix %+v", rep.Verify, rep.Verify.Fix)
	}
}
