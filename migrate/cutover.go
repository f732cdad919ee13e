package migrate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rekey-dev/rekey/lease"
)

// Defaults of CutoverConfig.
const (
	DefaultQuietPeriod    = 30 * time.Second
	DefaultCutoverTimeout = 15 * time.Minute
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

// CutoverConfig is what `rekey cutover` requires.
type CutoverConfig struct {
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
	Run    RunConfig
	Verify VerifyConfig
}

// CutoverReport is what cutover found and did.
type CutoverReport struct {
	Drained     int64         `json:"drained"`  // changes copied while draining
	QuietFor    time.Duration `json:"quietFor"` // how long the source stayed quiet
	DeadLetters int           `json:"deadLetters"`
	Verify      *VerifyReport `json:"verify,omitempty"`
	Recorded    bool          `json:"recorded"`
	At          time.Time     `json:"at,omitzero"`
}

// Cutover gates the switch to the target: it refuses before the initial copy
// is complete, drains every range to the end of its feed, waits until the
// source has had no changes for the quiet period (the application's writes
// must be stopped: cutover cannot stop them), refuses while dead letters are
// pending unless accepted, runs the final verify with fix, and records the
// cutover in the state. Log says what it waits for.
type Cutover struct {
	Runner   *Runner
	Verifier *Verifier
	// Progress, when set, is told what cutover is doing.
	Progress func(step string)
}

// Run performs the cutover. A refusal is an error wrapping one of the errors
// above, returned with the report so far.
func (c *Cutover) Run(ctx context.Context, cfg CutoverConfig) (*CutoverReport, error) {
	if cfg.QuietPeriod <= 0 {
		cfg.QuietPeriod = DefaultQuietPeriod
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultCutoverTimeout
	}
	r := c.Runner
	r.defaults(cfg.Run.withDefaults())
	say := func(format string, args ...any) {
		if c.Progress != nil {
			c.Progress(fmt.Sprintf(format, args...))
		}
	}
	rep := &CutoverReport{}
	meta, err := r.Store.ReadMeta(ctx)
	if err != nil {
		return rep, fmt.Errorf("read state: %w", err)
	}
	if err := c.checkCaughtUp(ctx); err != nil {
		return rep, err
	}

	say("draining every range to the end of its feed")
	start := r.Clock.Now()
	lastChange := start
	for {
		run := cfg.Run
		run.UntilCaughtUp = true
		r.Stats = nil
		sum, err := r.Run(ctx, run)
		if err != nil {
			return rep, fmt.Errorf("drain: %w", err)
		}
		if sum.Interrupted {
			return rep, ctx.Err()
		}
		now := r.Clock.Now()
		if sum.Stats.Read > 0 {
			rep.Drained += sum.Stats.Read
			lastChange = now
		}
		rep.QuietFor = now.Sub(lastChange)
		if rep.QuietFor >= cfg.QuietPeriod {
			break
		}
		if now.Sub(start) >= cfg.Timeout {
			return rep, fmt.Errorf("%w: it changed within the last %s for the whole %s timeout; stop the application's writes to the source (cutover cannot stop them), then run cutover again", ErrStillWriting, cfg.QuietPeriod, cfg.Timeout)
		}
		say("waiting for the source to be quiet for %s (quiet for %s so far): the application's writes to the source must be stopped", cfg.QuietPeriod, rep.QuietFor.Round(time.Second))
		if err := r.Clock.Sleep(ctx, min(time.Second, cfg.QuietPeriod/4+time.Millisecond)); err != nil {
			return rep, err
		}
	}

	dead, err := r.DeadLetters.Count()
	if err != nil {
		return rep, fmt.Errorf("count dead letters: %w", err)
	}
	rep.DeadLetters = dead
	if rep.DeadLetters > 0 && !cfg.AcceptDeadLetter {
		return rep, fmt.Errorf("%w: %d items could not be copied (rekey deadletter list); replay them after fixing the cause, or pass --accept-dead-letter to cut over without them", ErrDeadLettersPending, rep.DeadLetters)
	}

	say("verifying every item (the final check%s)", map[bool]string{true: "", false: ", with fix"}[cfg.DryRun])
	vcfg := cfg.Verify
	vcfg.Fix = !cfg.DryRun
	vrep, err := c.Verifier.Verify(ctx, vcfg)
	if err != nil {
		return rep, fmt.Errorf("final verify: %w", err)
	}
	rep.Verify = vrep
	remaining := vrep.Differences()
	if cfg.AcceptDeadLetter {
		// The accepted dead letters are exactly these.
		remaining -= vrep.Untransformable.Count + vrep.Collisions.Count
	}
	if remaining > 0 {
		return rep, fmt.Errorf("%w: %d differences remain after the fix (rekey verify lists them)", ErrCopyDiffers, remaining)
	}
	if cfg.DryRun {
		return rep, nil
	}
	meta.Cutover = &lease.Cutover{At: r.Clock.Now().UTC(), Items: vrep.Matched, VerifyDigest: vrep.Digest}
	if err := r.Store.UpdateMeta(ctx, meta); err != nil {
		return rep, fmt.Errorf("record the cutover: %w", err)
	}
	rep.Recorded, rep.At = true, meta.Cutover.At
	return rep, nil
}

// checkCaughtUp refuses a cutover before every range reached the end of its
// feed at least once.
func (c *Cutover) checkCaughtUp(ctx context.Context) error {
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
