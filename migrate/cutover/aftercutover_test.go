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

// After a cutover, --fix refuses before writing anything; a plain verify
// still reads. Run, Replay and a second cutover refuse too.
func TestWritingRefusedAfterCutover(t *testing.T) {
	r := rig.New(t)
	r.Src.Upsert(t, rig.Key("eu"), rig.Doc("a", "eu", "t1", 1))
	r.CopyAll(t)
	ctx := context.Background()
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	if _, err := r.Store.SwapMeta(ctx, func(m *lease.Meta) error {
		m.Cutover = &lease.Cutover{At: at, Items: 1}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// The application owns the target now: it adds an item.
	r.Dst.Upsert(t, rig.Key("t9"), `{"id":"new","region":"eu","tenant":"t9","pk":"t9"}`)
	writes := func() int {
		return r.Dst.Calls["create"] + r.Dst.Calls["replace"] + r.Dst.Calls["delete"] + r.Dst.Calls["batch"]
	}
	before := writes()

	_, err := r.Verifier().Verify(ctx, verify.Config{Fix: true, RecheckDelay: -1, TempDir: t.TempDir()})
	var coe *migrate.CutOverError
	if !errors.Is(err, migrate.ErrCutOver) || !errors.As(err, &coe) || coe.Command != "verify --fix" || !coe.At.Equal(at) {
		t.Fatalf("verify --fix after the cutover: %v", err)
	}
	rep, err := r.Verifier().Verify(ctx, verify.Config{RecheckDelay: -1, TempDir: t.TempDir()})
	if err != nil || rep.Extra.Count != 1 || rep.Matched != 1 {
		t.Fatalf("plain verify after the cutover: %v %+v", err, rep)
	}
	if _, err := r.Runner().Run(ctx, pipeline.RunConfig{UntilCaughtUp: true}); !errors.Is(err, migrate.ErrCutOver) {
		t.Fatalf("run after the cutover: %v", err)
	}
	if _, err := r.Runner().Replay(ctx, nil); !errors.Is(err, migrate.ErrCutOver) {
		t.Fatalf("replay after the cutover: %v", err)
	}
	c := &Gate{Runner: r.Runner(), Verifier: r.Verifier(), Clock: r.Clock}
	if rep, err := c.Run(ctx, Config{QuietPeriod: time.Second}); !errors.Is(err, migrate.ErrCutOver) || rep.Recorded {
		t.Fatalf("a second cutover: %v", err)
	}
	if got := writes(); got != before {
		t.Fatalf("%d writes to the target after the cutover", got-before)
	}
}
