package cutover

import (
	"context"
	"fmt"
	"time"
)

// waitQuiet drains every range until the source has had no change for the
// quiet period since *lastChange, or refuses when the timeout (from start)
// passes first.
func (c *Gate) waitQuiet(ctx context.Context, cfg Config, rep *Report, start time.Time, lastChange *time.Time) error {
	for {
		run := cfg.Run
		run.UntilCaughtUp = true
		// The drains count into the Runner's Stats, when it has them, for
		// the command's metrics; each drain's own changes are the
		// difference.
		var before int64
		if c.Runner.Stats != nil {
			before = c.Runner.Stats.Snapshot().Read
		}
		sum, err := c.Runner.Run(ctx, run)
		if err != nil {
			return fmt.Errorf("drain: %w", err)
		}
		if sum.Interrupted {
			return ctx.Err()
		}
		now := c.Clock.Now()
		if read := sum.Stats.Read - before; read > 0 {
			rep.Drained += read
			*lastChange = now
		}
		rep.QuietFor = now.Sub(*lastChange)
		if rep.QuietFor >= cfg.QuietPeriod {
			return nil
		}
		if now.Sub(start) >= cfg.Timeout {
			return fmt.Errorf("%w: %s changed within the last %s for the whole %s timeout; stop the application's writes to %s (cutover cannot stop them), then run cutover again", ErrStillWriting, c.from(), cfg.QuietPeriod, cfg.Timeout, c.from())
		}
		c.say("waiting for %s to be quiet for %s (quiet for %s so far): the application's writes to %s must be stopped", c.from(), cfg.QuietPeriod, rep.QuietFor.Round(time.Second), c.from())
		if err := c.Clock.Sleep(ctx, min(time.Second, cfg.QuietPeriod/4+time.Millisecond)); err != nil {
			return err
		}
	}
}

// checkCaughtUp refuses a cutover before every range reached the end of its
// feed at least once.
func (c *Gate) checkCaughtUp(ctx context.Context) error {
	leases, err := c.Runner.Store.List(ctx)
	if err != nil {
		return fmt.Errorf("list leases: %w", err)
	}
	behind := 0
	for _, l := range leases {
		if l.CaughtUpAt.IsZero() {
			behind++
		}
	}
	if len(leases) == 0 || behind > 0 {
		return fmt.Errorf("%w: %d of %d feed ranges have not reached the end of their feed yet; keep rekey run going until rekey status says syncing", ErrNotCaughtUp, behind, len(leases))
	}
	return nil
}
