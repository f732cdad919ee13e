package cutover

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rekey-dev/rekey/lease"
	"github.com/rekey-dev/rekey/migrate"
	"github.com/rekey-dev/rekey/migrate/internal/rig"
	"github.com/rekey-dev/rekey/migrate/pipeline"
	"github.com/rekey-dev/rekey/migrate/verify"
)

func fencedConfig(t *testing.T) Config {
	return Config{QuietPeriod: time.Millisecond, Timeout: time.Minute, LeaseTTL: 300 * time.Millisecond,
		Run:    pipeline.RunConfig{PollInterval: time.Millisecond, Owner: "the-cutover"},
		Verify: verify.Config{RecheckDelay: -1, TempDir: t.TempDir()}}
}

// A worker sharing the leases is running when the cutover is requested:
// it stops at its next balancing pass (StoppedForCutover, no error), the
// cutover waits for it to let go of its leases, fences them, drains,
// verifies and records. Afterwards the worker holds no lease and cannot
// start again.
func TestCutoverStopsRunningWorkers(t *testing.T) {
	r := rig.New(t)
	for _, id := range []string{"a", "b", "c"} {
		r.Src.Upsert(t, rig.Key("eu"), rig.Doc(id, "eu", "t"+id, 1))
	}
	ctx := context.Background()
	worker := pipeline.RunConfig{Shared: true, Owner: "worker-1", LeaseTTL: 300 * time.Millisecond, PollInterval: time.Millisecond}
	done := make(chan pipeline.Summary, 1)
	errs := make(chan error, 1)
	go func() {
		sum, err := r.Runner().Run(ctx, worker)
		done <- sum
		errs <- err
	}()
	waitUntil(t, "the worker to hold its leases", func() bool {
		ls, _ := r.Store.List(ctx)
		for _, l := range ls {
			if l.Owner != "worker-1" || l.CaughtUpAt.IsZero() {
				return false
			}
		}
		return len(ls) > 0
	})
	var steps []string
	c := &Gate{Runner: r.Runner(), Verifier: r.Verifier(), Clock: r.Clock, Progress: func(s string) { steps = append(steps, s) }}
	rep, err := c.Run(ctx, fencedConfig(t))
	if err != nil || !rep.Recorded {
		t.Fatalf("cutover with a running worker: %v %+v\n%v", err, rep, steps)
	}
	select {
	case sum := <-done:
		if err := <-errs; err != nil || !sum.StoppedForCutover {
			t.Fatalf("the worker: %v, %+v; want stopped for cutover", err, sum)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the worker did not stop for the cutover")
	}
	ls, err := r.Store.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range ls {
		if l.Owner == "worker-1" || l.Fence != "" {
			t.Fatalf("after the cutover, lease %+v", l)
		}
	}
	meta, _ := r.Store.ReadMeta(ctx)
	if meta.CutoverRequest != nil || meta.Cutover == nil || meta.Cutover.Items != 3 {
		t.Fatalf("meta after the cutover: request %+v, cutover %+v", meta.CutoverRequest, meta.Cutover)
	}
	if _, err := r.Runner().Run(ctx, worker); !errors.Is(err, migrate.ErrCutOver) {
		t.Fatalf("a worker started after the cutover: %v", err)
	}
}

// While one cutover's request is live, a second cutover, a worker, verify
// --fix and a replay are refused, naming it; a worker takes no fenced
// lease. Once the request lapses (its cutover died), a worker withdraws
// it, clears its fences and works again, and a new cutover may take over a
// lapsed request.
func TestACutoverRequestExcludesEveryOtherWriter(t *testing.T) {
	r := rig.New(t)
	r.Src.Upsert(t, rig.Key("eu"), rig.Doc("a", "eu", "t1", 1))
	r.CopyAll(t)
	ctx := context.Background()
	now := time.Now().UTC()
	if _, err := r.Store.SwapMeta(ctx, func(m *lease.Meta) error {
		m.CutoverRequest = &lease.CutoverRequest{Owner: "first", At: now, RenewedAt: now, TTL: time.Hour}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	fenceAll(t, r, "first")
	second := &Gate{Runner: r.Runner(), Verifier: r.Verifier(), Clock: r.Clock}
	rep, err := second.Run(ctx, fencedConfig(t))
	var busy *migrate.CutoverInProgressError
	if !errors.As(err, &busy) || busy.Request.Owner != "first" || rep.Recorded {
		t.Fatalf("a second cutover: %v", err)
	}
	if _, err := r.Runner().Run(ctx, pipeline.RunConfig{Shared: true, Owner: "w"}); !errors.Is(err, migrate.ErrCutoverInProgress) {
		t.Fatalf("a worker during the cutover: %v", err)
	}
	if _, err := r.Verifier().Verify(ctx, verify.Config{Fix: true, RecheckDelay: -1, TempDir: t.TempDir()}); !errors.Is(err, migrate.ErrCutoverInProgress) {
		t.Fatalf("verify --fix during the cutover: %v", err)
	}
	if _, err := r.Runner().Replay(ctx, nil); !errors.Is(err, migrate.ErrCutoverInProgress) {
		t.Fatalf("replay during the cutover: %v", err)
	}
	got, err := (lease.Leaser{Store: r.Store, Owner: "w", TTL: time.Millisecond}).Acquire(ctx)
	if err != nil || len(got) != 0 {
		t.Fatalf("a worker took fenced leases: %v %v", got, err)
	}

	// The first cutover died: its request lapses.
	if _, err := r.Store.SwapMeta(ctx, func(m *lease.Meta) error {
		m.CutoverRequest.RenewedAt = now.Add(-2 * time.Hour)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	sum, err := r.Runner().Run(ctx, pipeline.RunConfig{Shared: true, Owner: "w", UntilCaughtUp: true, LeaseTTL: 300 * time.Millisecond, PollInterval: time.Millisecond})
	if err != nil || !sum.CaughtUp {
		t.Fatalf("a worker after the cutover died: %v %+v", err, sum)
	}
	meta, _ := r.Store.ReadMeta(ctx)
	ls, _ := r.Store.List(ctx)
	for _, l := range ls {
		if l.Fence != "" {
			t.Fatalf("the lapsed request's fence on %s is still there", l.ID)
		}
	}
	if meta.CutoverRequest != nil {
		t.Fatalf("the lapsed request %+v is still there", meta.CutoverRequest)
	}
	if _, err := r.Store.SwapMeta(ctx, func(m *lease.Meta) error {
		m.CutoverRequest = &lease.CutoverRequest{Owner: "dead", At: now, RenewedAt: now.Add(-2 * time.Hour), TTL: time.Hour}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	rep, err = second.Run(ctx, fencedConfig(t))
	if err != nil || !rep.Recorded {
		t.Fatalf("a cutover over a lapsed request: %v %+v", err, rep)
	}
}

// A cutover that refuses (the source keeps changing) withdraws its request
// and its fences: the workers resume.
func TestARefusedCutoverWithdrawsItsRequest(t *testing.T) {
	r := rig.New(t)
	r.Src.Upsert(t, rig.Key("eu"), rig.Doc("a", "eu", "t1", 1))
	r.CopyAll(t)
	c := &Gate{Runner: r.Runner(), Verifier: r.Verifier(), Clock: r.Clock}
	writes := appDuringVerify(t, r, c, "a", 1000)
	cfg := fencedConfig(t)
	cfg.QuietPeriod, cfg.Timeout = time.Second, 5*time.Second
	if _, err := c.Run(context.Background(), cfg); !errors.Is(err, ErrStillWriting) || writes() == 0 {
		t.Fatalf("want a refusal: %v", err)
	}
	meta, _ := r.Store.ReadMeta(context.Background())
	ls, _ := r.Store.List(context.Background())
	for _, l := range ls {
		if l.Fence != "" {
			t.Fatalf("after a refused cutover, lease %s is fenced by %q", l.ID, l.Fence)
		}
	}
	if meta.CutoverRequest != nil || meta.Cutover != nil {
		t.Fatalf("after a refused cutover: request %+v, cutover %+v", meta.CutoverRequest, meta.Cutover)
	}
}

// fenceAll fences every lease for owner.
func fenceAll(t *testing.T, r *rig.Rig, owner string) {
	t.Helper()
	ls, err := r.Store.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range ls {
		l.Owner, l.Fence = "", owner
		if _, err := r.Store.Update(context.Background(), l); err != nil {
			t.Fatal(err)
		}
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
