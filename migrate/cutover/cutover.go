package cutover

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
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
	// LeaseTTL is how long the cutover's request lasts without a renewal,
	// and how long a worker's lease lasts without one (the longer of it
	// and the TTL the lease records): give the workers' --lease-ttl.
	LeaseTTL time.Duration
	// Application is what the application must write from the cutover on,
	// recorded with it; nil records nothing.
	Application *lease.ApplicationWrites
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
	// Cutover is what was recorded.
	Cutover *lease.Cutover `json:"cutover,omitempty"`
}

// MarshalJSON writes QuietFor as a duration string ("2.1s"), as every
// duration in rekey's JSON output is.
func (r Report) MarshalJSON() ([]byte, error) {
	type plain Report
	return json.Marshal(struct {
		plain
		QuietFor string `json:"quietFor"`
	}{plain(r), r.QuietFor.Round(time.Millisecond).String()})
}

// Gate gates the switch to the target: it refuses once a cutover is
// recorded and before the initial copy is complete. It then requests the
// cutover in the state, a compare-and-swap that refuses while another
// cutover's request is live, so two never run at once; running workers see
// the request at their next balancing pass, checkpoint, release their
// leases and stop. The Gate waits for them (or for their leases to expire)
// and fences every lease, so that no worker takes one again, and only then
// drains every range itself to the end of its feed, waits until the source
// has had no changes for the quiet period (the application's writes must
// be stopped: cutover cannot stop them), refuses while dead letters are
// pending unless accepted, and runs the final verify with fix. It then
// proves the source stayed quiet across that verify: it marks the end of
// every range's change feed before the verify and reads the feed after
// each mark once the verify is done. A change means the verify may have
// compared an outdated version, so it drains, waits and verifies again,
// until the timeout. It records the cutover in the state only after a
// verify, across which the source did not change, found no difference
// other than accepted dead letters, and only while its request still
// holds; with the record go what the application must write from now on
// and where the change feed of Follow stood, for a rollback. A cutover
// that does not record withdraws its request and fences, and the workers
// resume.
//
// Run changes nothing of the Gate, its Runner or its Verifier: what it
// defaults, it defaults in copies of its own.
type Gate struct {
	// Runner drains the change feed; Verifier is the final check. Give
	// them one write path (pipeline.NewWritePath), so the drains and the
	// fix write under one flow control. A *verify.Verifier's State
	// defaults to the Runner's Store, and its Owner to the cutover's.
	Runner   *pipeline.Runner
	Verifier Checker
	// Follow is the container the application writes to once the cutover
	// is recorded (the target); the Gate records where its change feed
	// stood then, per feed range, so that a rollback copies what the
	// application writes from there on. Nil records nothing.
	Follow migrate.Source
	// Rollback marks the Gate as a rollback's reverse cutover: the
	// request workers see says so, and its messages call the container it
	// switches away from (the Runner's Source) the target.
	Rollback bool
	// Clock measures the quiet period and the timeout, waits between
	// drains and stamps the record; the Runner's when nil, the real clock
	// when that is nil too. The request and the leases are timed by the
	// Runner's clock, the one the state's stamps come from.
	Clock migrate.Clock
	// Progress, when set, is told what cutover is doing.
	Progress func(step string)
	// Log receives warnings; discarded when nil.
	Log *slog.Logger
}

// Checker is the final check of a cutover: *verify.Verifier, or a
// rollback's reverse check. Verify with cfg.Fix repairs what differs.
type Checker interface {
	Verify(ctx context.Context, cfg verify.Config) (*verify.Report, error)
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
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = pipeline.DefaultLeaseTTL
	}
	if cfg.Run.Owner == "" {
		cfg.Run.Owner = "rekey-cutover"
	}
	g := c.withDefaults(cfg.Run.Owner)
	return g.run(ctx, cfg)
}

// withDefaults is the gate as Run works with it: a copy, with the clock,
// the logger and the verifier's state and owner filled in, so that the
// caller's structs are left as they were given.
func (c *Gate) withDefaults(owner string) *Gate {
	g := *c
	if g.Clock == nil {
		g.Clock = c.runnerClock()
	}
	if g.Log == nil {
		g.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if v, ok := c.Verifier.(*verify.Verifier); ok {
		vv := *v
		if vv.State == nil {
			vv.State = c.Runner.Store
		}
		if vv.Owner == "" {
			vv.Owner = owner
		}
		g.Verifier = &vv
	}
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
	c.say("requesting the cutover: running workers stop at their next balancing pass")
	req, err := take(ctx, r.Store, cfg.Run.Owner, cfg.LeaseTTL, cfg.DryRun, c.Rollback, c.runnerClock(), c.Log)
	if err != nil {
		return rep, err
	}
	recorded := false
	defer func() {
		if recorded {
			return
		}
		if err := req.withdraw(ctx); err != nil {
			c.Log.Warn("could not withdraw the cutover request; workers withdraw it once it lapses", "err", err)
		} else if !cfg.DryRun {
			c.say("withdrew the cutover request: workers waiting for it resume")
		}
	}()
	// The request's loss (it lapsed) stops everything the cutover does.
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		select {
		case <-req.lost:
			cancel(req.err())
		case <-ctx.Done():
		}
	}()
	if err := req.fence(ctx, cfg.Timeout-c.Clock.Now().Sub(start), c.say); err != nil {
		return rep, lostOr(ctx, err)
	}
	if err := c.drainAndVerify(ctx, cfg, rep, start); err != nil {
		return rep, lostOr(ctx, err)
	}
	if cfg.DryRun {
		return rep, nil
	}
	cut, err := c.cutoverRecord(ctx, cfg, rep, start)
	if err != nil {
		return rep, lostOr(ctx, err)
	}
	if err := req.record(ctx, cut); err != nil {
		return rep, lostOr(ctx, err)
	}
	recorded = true
	rep.Recorded, rep.At, rep.Cutover = true, cut.At, &cut
	return rep, nil
}

// lostOr is err, or the loss of the request when that is what ended ctx.
func lostOr(ctx context.Context, err error) error {
	if cause := context.Cause(ctx); cause != nil && errors.Is(cause, ErrRequestLost) {
		return cause
	}
	return err
}

// drainAndVerify drains, waits for quiet and verifies with fix until a
// verify across which the source did not change leaves no difference but
// accepted dead letters.
func (c *Gate) drainAndVerify(ctx context.Context, cfg Config, rep *Report, start time.Time) error {
	r := c.Runner
	lastChange := start
	for {
		c.say("draining every range to the end of its feed")
		if err := c.waitQuiet(ctx, cfg, rep, start, &lastChange); err != nil {
			return err
		}
		dead, err := r.DeadLetters.Count()
		if err != nil {
			return fmt.Errorf("count dead letters: %w", err)
		}
		rep.DeadLetters = dead
		if rep.DeadLetters > 0 && !cfg.AcceptDeadLetter {
			return fmt.Errorf("%w: %d items could not be copied (rekey deadletter list); replay them after fixing the cause, or pass --accept-dead-letter to cut over without them", ErrDeadLettersPending, rep.DeadLetters)
		}
		marks, err := c.markFeeds(ctx)
		if err != nil {
			return err
		}
		c.say("verifying every item (the final check%s)", map[bool]string{true: "", false: ", with fix"}[cfg.DryRun])
		vcfg := cfg.Verify
		vcfg.Fix = !cfg.DryRun
		vrep, err := c.Verifier.Verify(ctx, vcfg)
		if err != nil {
			return fmt.Errorf("final verify: %w", err)
		}
		rep.Verify = vrep
		rep.Verifies++
		changed, err := c.changedSince(ctx, marks)
		if err != nil {
			return err
		}
		if changed == nil {
			break
		}
		lastChange = c.Clock.Now()
		if lastChange.Sub(start) >= cfg.Timeout {
			return fmt.Errorf("%w: %s changed during the final verify (feed range [%s, %s)) and the %s timeout passed; stop the application's writes to %s (cutover cannot stop them), then run cutover again", ErrStillWriting, c.from(), changed.Min, changed.Max, cfg.Timeout, c.from())
		}
		c.say("%s changed during the final verify (feed range [%s, %s)): the application's writes to %s must be stopped; draining and verifying again", c.from(), changed.Min, changed.Max, c.from())
	}
	remaining := rep.Verify.Differences()
	if cfg.AcceptDeadLetter {
		remaining -= rep.Verify.Accepted()
	}
	if remaining > 0 {
		return fmt.Errorf("%w: %d differences remain after the fix (rekey verify lists them)", ErrCopyDiffers, remaining)
	}
	return nil
}

// from names the container the application switches away from.
func (c *Gate) from() string {
	if c.Rollback {
		return "the target"
	}
	return "the source"
}

func (c *Gate) say(format string, args ...any) {
	if c.Progress != nil {
		c.Progress(fmt.Sprintf(format, args...))
	}
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
