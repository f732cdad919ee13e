package cutover

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rekey-dev/rekey/lease"
	"github.com/rekey-dev/rekey/migrate"
	"github.com/rekey-dev/rekey/migrate/pipeline"
	"github.com/rekey-dev/rekey/migrate/verify"
)

// Defaults of Config.
const (
	DefaultQuietPeriod = 30 * time.Second
	DefaultTimeout     = 15 * time.Minute
)

// Errors for which cutover refuses to switch, decided with errors.Is.
var (
	// ErrNotCaughtUp: the initial copy is not complete.
	ErrNotCaughtUp = errors.New("the initial copy is not complete")
	// ErrStillWriting: the source kept changing for the whole timeout.
	ErrStillWriting = errors.New("the source is still being written to")
	// ErrDeadLettersPending: items could not be copied and were not accepted.
	ErrDeadLettersPending = errors.New("dead-lettered items are pending")
	// ErrCopyDiffers: the final verify found differences that its fix could
	// not repair.
	ErrCopyDiffers = errors.New("the copy differs from the source")
)

// Config is what `rekey cutover` requires.
type Config struct {
	// QuietPeriod is how long the source must have no changes.
	QuietPeriod time.Duration
	// Timeout is how long to wait for the quiet period before giving up.
	Timeout time.Duration
	// AcceptDeadLetter cuts over although dead-lettered items were not copied.
	AcceptDeadLetter bool
	// DryRun checks everything but fixes nothing and records nothing.
	DryRun bool
	// Run drains the change feed; Verify is the final check (Fix is set
	// unless DryRun).
	Run    pipeline.RunConfig
	Verify verify.Config
}

// Report is what cutover found and did.
type Report struct {
	Drained     int64         `json:"drained"`  // changes copied while draining
	QuietFor    time.Duration `json:"quietFor"` // how long the source stayed quiet
	DeadLetters int           `json:"deadLetters"`
	// Verifies counts the final verifies: one more each time the source
	// changed while one ran.
	Verifies int            `json:"verifies"`
	Verify   *verify.Report `json:"verify,omitempty"` // the last one
	Recorded bool           `json:"recorded"`
	At       time.Time      `json:"at,omitzero"`
}

// Gate gates the switch to the target: it refuses once a cutover is
// recorded and before the initial copy is complete, drains every range to
// the end of its feed, waits until the source has had no changes for the
// quiet period (the application's writes must be stopped: cutover cannot
// stop them), refuses while dead letters are pending unless accepted, and
// runs the final verify with fix. It then proves the source stayed quiet
// across that verify: it marks the end of every range's change feed before
// the verify; once the verify is done it scans the source for the items it
// holds (the change feed carries no deletes) and reads the feed after each
// mark (changeDuringVerify). A change means the verify may have compared
// an outdated version, so it drains, waits and verifies again, until the
// timeout. It records the
// cutover in the state only after a verify, across which the source did
// not change, found no difference other than accepted dead letters.
//
// Run changes nothing of the Gate, its Runner or its Verifier: what it
// defaults, it defaults in copies of its own.
type Gate struct {
	// Runner drains the change feed; Verifier is the final check. Give
	// them one write path (pipeline.NewWritePath), so the drains and the
	// fix write under one flow control. The Verifier's State defaults to
	// the Runner's Store.
	Runner   *pipeline.Runner
	Verifier *verify.Verifier
	// Clock measures the quiet period and the timeout, waits between
	// drains and stamps the record; the Runner's when nil, the real clock
	// when that is nil too.
	Clock migrate.Clock
	// Progress, when set, is told what cutover is doing.
	Progress func(step string)
}

// Run performs the cutover. A refusal is an error wrapping ErrCutOver or
// one of the errors above, returned with the report so far.
func (c *Gate) Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.QuietPeriod <= 0 {
		cfg.QuietPeriod = DefaultQuietPeriod
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	g := c.withDefaults()
	return g.run(ctx, cfg)
}

// withDefaults is the gate as Run works with it: a copy, with the clock
// and the verifier's state filled in, so that the caller's structs are left
// as they were given.
func (c *Gate) withDefaults() *Gate {
	g := *c
	if g.Clock == nil {
		g.Clock = c.runnerClock()
	}
	v := *c.Verifier
	if v.State == nil {
		v.State = c.Runner.Store
	}
	g.Verifier = &v
	return &g
}

// runnerClock is the Runner's clock, the real one when it has none.
func (c *Gate) runnerClock() migrate.Clock {
	if c.Runner.Clock != nil {
		return c.Runner.Clock
	}
	return migrate.SystemClock{}
}

func (c *Gate) run(ctx context.Context, cfg Config) (*Report, error) {
	r := c.Runner
	rep := &Report{}
	if err := migrate.RefuseAfterCutover(ctx, r.Store, "cutover"); err != nil {
		return rep, err
	}
	if err := c.checkCaughtUp(ctx); err != nil {
		return rep, err
	}
	start := c.Clock.Now()
	lastChange := start
	for {
		c.say("draining every range to the end of its feed")
		if err := c.waitQuiet(ctx, cfg, rep, start, &lastChange); err != nil {
			return rep, err
		}
		dead, err := r.DeadLetters.Count()
		if err != nil {
			return rep, fmt.Errorf("count dead letters: %w", err)
		}
		rep.DeadLetters = dead
		if rep.DeadLetters > 0 && !cfg.AcceptDeadLetter {
			return rep, fmt.Errorf("%w: %d items could not be copied (rekey deadletter list); replay them after fixing the cause, or pass --accept-dead-letter to cut over without them", ErrDeadLettersPending, rep.DeadLetters)
		}
		marks, err := c.markFeeds(ctx)
		if err != nil {
			return rep, err
		}
		c.say("verifying every item (the final check%s)", map[bool]string{true: "", false: ", with fix"}[cfg.DryRun])
		vcfg := cfg.Verify
		vcfg.Fix = !cfg.DryRun
		vrep, err := c.Verifier.Verify(ctx, vcfg)
		if err != nil {
			return rep, fmt.Errorf("final verify: %w", err)
		}
		rep.Verify = vrep
		rep.Verifies++
		change, err := c.changeDuringVerify(ctx, vrep, marks)
		if err != nil {
			return rep, err
		}
		if change == "" {
			break
		}
		lastChange = c.Clock.Now()
		if lastChange.Sub(start) >= cfg.Timeout {
			return rep, fmt.Errorf("%w: it changed during the final verify (%s) and the %s timeout passed; stop the application's writes to the source (cutover cannot stop them), then run cutover again", ErrStillWriting, change, cfg.Timeout)
		}
		c.say("the source changed during the final verify (%s): the application's writes to the source must be stopped; draining and verifying again", change)
	}
	remaining := rep.Verify.Differences()
	if cfg.AcceptDeadLetter {
		remaining -= rep.Verify.Accepted()
	}
	if remaining > 0 {
		return rep, fmt.Errorf("%w: %d differences remain after the fix (rekey verify lists them)", ErrCopyDiffers, remaining)
	}
	if cfg.DryRun {
		return rep, nil
	}
	return rep, c.record(ctx, rep)
}

func (c *Gate) say(format string, args ...any) {
	if c.Progress != nil {
		c.Progress(fmt.Sprintf(format, args...))
	}
}

// waitQuiet drains every range until the source has had no change for the
// quiet period since *lastChange, or refuses when the timeout (from start)
// passes first.
func (c *Gate) waitQuiet(ctx context.Context, cfg Config, rep *Report, start time.Time, lastChange *time.Time) error {
	for {
		run := cfg.Run
		run.UntilCaughtUp = true
		drain := *c.Runner
		drain.Stats = nil // each drain counts its own changes
		sum, err := drain.Run(ctx, run)
		if err != nil {
			return fmt.Errorf("drain: %w", err)
		}
		if sum.Interrupted {
			return ctx.Err()
		}
		now := c.Clock.Now()
		if sum.Stats.Read > 0 {
			rep.Drained += sum.Stats.Read
			*lastChange = now
		}
		rep.QuietFor = now.Sub(*lastChange)
		if rep.QuietFor >= cfg.QuietPeriod {
			return nil
		}
		if now.Sub(start) >= cfg.Timeout {
			return fmt.Errorf("%w: it changed within the last %s for the whole %s timeout; stop the application's writes to the source (cutover cannot stop them), then run cutover again", ErrStillWriting, cfg.QuietPeriod, cfg.Timeout)
		}
		c.say("waiting for the source to be quiet for %s (quiet for %s so far): the application's writes to the source must be stopped", cfg.QuietPeriod, rep.QuietFor.Round(time.Second))
		if err := c.Clock.Sleep(ctx, min(time.Second, cfg.QuietPeriod/4+time.Millisecond)); err != nil {
			return err
		}
	}
}

// record writes the cutover into the state, unless another one was
// recorded meanwhile.
func (c *Gate) record(ctx context.Context, rep *Report) error {
	r := c.Runner
	if err := migrate.RefuseAfterCutover(ctx, r.Store, "cutover"); err != nil {
		return err
	}
	meta, err := r.Store.ReadMeta(ctx)
	if err != nil {
		return fmt.Errorf("read state: %w", err)
	}
	meta.Cutover = &lease.Cutover{At: c.Clock.Now().UTC(), Items: rep.Verify.Matched, VerifyDigest: rep.Verify.Digest}
	if err := r.Store.UpdateMeta(ctx, meta); err != nil {
		return fmt.Errorf("record the cutover: %w", err)
	}
	rep.Recorded, rep.At = true, meta.Cutover.At
	return nil
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

// markPageSize is how many changes a read asks for while it reads a range's
// feed to its end.
const markPageSize = 1000

// feedMark is where one lease range's change feed ended at a moment.
type feedMark struct {
	rng          migrate.FeedRange
	continuation string
}

// markFeeds reads each lease range's change feed from its checkpoint to the
// end and returns where each ends: a change after a mark was written after
// markFeeds read that range. The changes it passes over were written before
// the verify that follows, which compares their current versions.
func (c *Gate) markFeeds(ctx context.Context) ([]feedMark, error) {
	r := c.Runner
	leases, err := r.Store.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list leases: %w", err)
	}
	retry := &migrate.Retrier{Clock: c.runnerClock(), Tries: migrate.DefaultTransientTries}
	marks := make([]feedMark, 0, len(leases))
	for _, l := range leases {
		req := migrate.ChangeRequest{Range: migrate.FeedRangeOf(l.Range), Continuation: l.Continuation, PageSize: markPageSize}
		for {
			page, err := migrate.ReadPage(ctx, r.Source, retry, req)
			if err != nil {
				return nil, err
			}
			req.Continuation = page.Continuation
			if len(page.Items) == 0 {
				break
			}
		}
		marks = append(marks, feedMark{rng: req.Range, continuation: req.Continuation})
	}
	return marks, nil
}

// changeDuringVerify says how the source changed while the final verify
// ran ("" when it did not). The latest-version change feed carries creates
// and updates but no deletes, so it looks twice. First it scans the source
// again and compares the items it holds with those the verify's scan saw
// (verify.Identities): an item deleted (or expired) after the verify read
// it is missing now. Then it reads each range's feed after its mark
// (changedSince): an item created or updated after the mark is there. The
// feed is read last, so the window in which a change goes unseen is, for a
// create or an update, one read of a page per range, and for a delete, the
// time since the scan read the item. The all-versions-and-deletes change
// feed carries deletes too and would shrink the latter to the former; it
// needs a change feed policy on the source container (issue 13).
func (c *Gate) changeDuringVerify(ctx context.Context, vrep *verify.Report, marks []feedMark) (string, error) {
	now, err := c.Verifier.SourceIdentities(ctx)
	if err != nil {
		return "", err
	}
	if was := vrep.SourceIdentities; now != was {
		return fmt.Sprintf("the verify saw %d items, the source holds %d, not all the same: an item was deleted or created", was.Count, now.Count), nil
	}
	changed, err := c.changedSince(ctx, marks)
	if err != nil || changed == nil {
		return "", err
	}
	return fmt.Sprintf("feed range [%s, %s)", changed.Min, changed.Max), nil
}

// changedSince returns the range of the first mark after which the source's
// change feed holds a change, or nil when none does.
func (c *Gate) changedSince(ctx context.Context, marks []feedMark) (*migrate.FeedRange, error) {
	retry := &migrate.Retrier{Clock: c.runnerClock(), Tries: migrate.DefaultTransientTries}
	for _, m := range marks {
		page, err := migrate.ReadPage(ctx, c.Runner.Source, retry, migrate.ChangeRequest{Range: m.rng, Continuation: m.continuation, PageSize: 1})
		if err != nil {
			return nil, err
		}
		if len(page.Items) > 0 {
			return &m.rng, nil
		}
	}
	return nil, nil
}
