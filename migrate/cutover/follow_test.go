package cutover

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rekey-dev/rekey/migrate"
	"github.com/rekey-dev/rekey/migrate/internal/rig"
	"github.com/rekey-dev/rekey/migrate/migratetest"
	"github.com/rekey-dev/rekey/migrate/pipeline"
	"github.com/rekey-dev/rekey/migrate/verify"
)

// A worker's write lands on the target after the final verify scanned it
// (the worker sent it before it stopped; it took long to arrive) and
// brings back the copy of an item the source deleted meanwhile. The
// source stayed quiet, so before, the cutover recorded over that extra
// copy. Now the target's change feed shows the write: the cutover
// verifies again, removes the copy, verifies once more (a verify that
// fixed something proves nothing of what it fixed) and records.
func TestCutoverVerifiesAgainWhenTheTargetIsWrittenDuringItsVerify(t *testing.T) {
	ctx := context.Background()
	r := rig.New(t)
	for _, id := range []string{"a", "gone"} {
		migratetest.MustUpsert(t, r.Src, rig.Doc(id, "eu", "t1", 1))
	}
	r.CopyAll(t)
	copyOfGone, ok := r.TargetCopy(t, rig.Doc("gone", "eu", "t1", 1))
	if !ok {
		t.Fatal("the copy of gone is not in the target")
	}
	if _, err := r.Src.Delete(ctx, rig.Key("eu"), "gone", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Dst.Delete(ctx, copyOfGone.Key, "gone", ""); err != nil {
		t.Fatal(err)
	}
	c := &Gate{Runner: r.Runner(), Verifier: r.Verifier(), Follow: r.Dst, Clock: r.Clock}
	var mu sync.Mutex
	armed, landed := false, false
	c.Progress = func(step string) {
		mu.Lock()
		defer mu.Unlock()
		armed = strings.HasPrefix(step, "verifying") && !landed
	}
	r.Dst.AfterFeed(func(_ migrate.ChangeRequest, page migrate.ChangePage) {
		mu.Lock()
		defer mu.Unlock()
		if armed && len(page.Items) == 0 { // the end of the verify's scan of the target
			armed, landed = false, true
			migratetest.MustUpsert(t, r.Dst, string(copyOfGone.Body))
		}
	})
	cfg := Config{QuietPeriod: time.Second, Timeout: time.Minute, Run: pipeline.RunConfig{PollInterval: time.Millisecond}, Verify: verify.Config{RecheckDelay: -1, TempDir: t.TempDir()}}
	rep, err := c.Run(ctx, cfg)
	if err != nil || !rep.Recorded {
		t.Fatalf("cutover: %v, report %+v", err, rep)
	}
	if !landed {
		t.Fatal("the late write never landed: the test did not test")
	}
	if _, there := r.Dst.Get(copyOfGone.Key, "gone"); there {
		t.Fatal("the cutover recorded over the copy of a deleted item that landed during its verify")
	}
	if rep.Verifies != 3 {
		t.Errorf("%d verifies, want 3: the one the write landed in, the one that removed the copy, a clean one", rep.Verifies)
	}
}
