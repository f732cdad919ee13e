package cutover

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rekey-dev/rekey/lease"
	"github.com/rekey-dev/rekey/migrate/internal/rig"
	"github.com/rekey-dev/rekey/migrate/migratetest"
	"github.com/rekey-dev/rekey/migrate/pipeline"
)

// A lease released with writes unanswered (Lease.UnansweredAt) makes the
// cutover wait until MaxRequestTime has passed since, before it drains and
// verifies; leases whose writes were all answered cost no wait.
func TestCutoverWaitsForUnansweredWrites(t *testing.T) {
	for _, unanswered := range []bool{false, true} {
		name := map[bool]string{false: "all answered", true: "unanswered"}[unanswered]
		t.Run(name, func(t *testing.T) {
			r := rig.New(t)
			migratetest.MustUpsert(t, r.Src, rig.Doc("a", "eu", "t1", 1))
			ctx := context.Background()
			if _, err := r.Runner().Run(ctx, pipeline.RunConfig{UntilCaughtUp: true, PollInterval: time.Millisecond}); err != nil {
				t.Fatal(err)
			}
			const maxRequest = 200 * time.Millisecond
			var sentAt time.Time
			if unanswered {
				ls, err := r.Store.List(ctx)
				if err != nil || len(ls) == 0 {
					t.Fatalf("leases %v, %v", ls, err)
				}
				sentAt = time.Now()
				l := ls[0]
				l.UnansweredAt = sentAt
				if _, err := r.Store.Update(ctx, l); err != nil {
					t.Fatal(err)
				}
			}
			var steps []string
			c := &Gate{Runner: r.Runner(), Verifier: r.Verifier(), Clock: r.Clock, Progress: func(s string) { steps = append(steps, s) }}
			cfg := fencedConfig(t)
			cfg.MaxRequestTime = maxRequest
			rep, err := c.Run(ctx, cfg)
			if err != nil || !rep.Recorded {
				t.Fatalf("cutover: %v %+v\n%v", err, rep, steps)
			}
			waited := strings.Contains(strings.Join(steps, "\n"), "to take effect or lapse")
			if waited != unanswered {
				t.Fatalf("waited for late writes: %v, want %v\n%s", waited, unanswered, strings.Join(steps, "\n"))
			}
			// The runner's clock is the real one: the cutover cannot have
			// verified before MaxRequestTime passed since the unanswered
			// write.
			if unanswered && time.Since(sentAt) < maxRequest {
				t.Fatalf("the cutover returned %v after the unanswered write, before its %v ran out", time.Since(sentAt), maxRequest)
			}
		})
	}
}

// A cutover that takes over the lapsed request of one that died waits for
// that one's writes (its drain and fix write outside any lease): until
// MaxRequestTime past the moment its request lapsed, before it drains and
// verifies. Before, it waited for none of them.
func TestCutoverWaitsForTheWritesOfACutoverThatDied(t *testing.T) {
	r := rig.New(t)
	migratetest.MustUpsert(t, r.Src, rig.Doc("a", "eu", "t1", 1))
	r.CopyAll(t)
	ctx := context.Background()
	cfg := fencedConfig(t)
	cfg.MaxRequestTime = 200 * time.Millisecond
	renewed := time.Now().Add(-cfg.LeaseTTL - 10*time.Millisecond) // it died: its request lapsed 10ms ago
	if _, err := r.Store.SwapMeta(ctx, func(m *lease.Meta) error {
		m.CutoverRequest = &lease.CutoverRequest{Owner: "dead-cutover", At: renewed, RenewedAt: renewed, TTL: cfg.LeaseTTL}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var steps []string
	c := &Gate{Runner: r.Runner(), Verifier: r.Verifier(), Clock: r.Clock, Progress: func(s string) { steps = append(steps, s) }}
	rep, err := c.Run(ctx, cfg)
	if err != nil || !rep.Recorded {
		t.Fatalf("cutover: %v %+v\n%s", err, rep, strings.Join(steps, "\n"))
	}
	lapsed := renewed.Add(cfg.LeaseTTL)
	if !strings.Contains(strings.Join(steps, "\n"), "to take effect or lapse") || time.Since(lapsed) < cfg.MaxRequestTime {
		t.Fatalf("the cutover recorded %v after the dead one's request lapsed, without waiting %v for its writes:\n%s", time.Since(lapsed), cfg.MaxRequestTime, strings.Join(steps, "\n"))
	}
}
