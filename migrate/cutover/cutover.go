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
	// MinQuietPeriod is the shortest quiet period a cutover waits for,
	// whatever Config asks: the cutover records the newest _ts it copied
	// (lease.Cutover.SourceHorizon), and a rollback takes a source item
	// whose _ts is not after it for the one the cutover left. _ts counts
	// whole seconds, so a source write after the cutover (an instance of
	// the old application still running) must come at least a second
	// after the last change copied to have a later one.
	MinQuietPeriod = time.Second
	DefaultTimeout = 15 * time.Minute
	// DefaultMaxRequestTime is how long after it was sent a write is
	// taken to be able to take effect: rekey ends every attempt of a
	// request after 65 seconds (the gateway's own budget is 60), and a
	// request the client gave up on is assumed to take effect by then or
	// never (docs/verify-and-cutover.md).
	DefaultMaxRequestTime = 65 * time.Second
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
	// QuietPeriod is how long the source must have no changes; at least
	// MinQuietPeriod.
	QuietPeriod time.Duration
	// MaxRequestTime is the longest a write request of a worker may take
	// to take effect after it was sent, even one its worker gave up on
	// or died waiting for; DefaultMaxRequestTime when zero. Once the
	// workers stopped, the cutover waits until that long has passed since
	// the last write any of them can have sent, before it drains and
	// verifies: a write that lands after the final verify would be a
	// difference the cutover never saw. The wait does not count against
	// Timeout.
	MaxRequestTime time.Duration
	// Timeout is how long to wait for the quiet period before giving up.
	Timeout time.Duration
	// AcceptDeadLetter cuts over although dead-lettered items were not copied.
	AcceptDeadLetter bool
	// DryRun checks everything but fixes nothing and records nothing.
	DryRun bool
	// Run drains the change feed; Verify is the final check (Fix is set
	// unless DryRun). Run.Owner names this cutover in the request and the
	// fences: it must differ from every earlier cutover's, or a cutover
	// started again after one crashed takes the crashed one's request and
	// fenced leases for its own and does not wait for its writes.
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
	// WouldFix, with DryRun, is the differences of the last verify that a
	// cutover's verify with fix repairs (missing, extra, changed and
	// orphaned items): a dry run reports them apart and does not refuse
	// for them.
	WouldFix int64     `json:"wouldFix,omitempty"`
	Recorded bool      `json:"recorded"`
	At       time.Time `json:"at,omitzero"`
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

// UnmarshalJSON reads what MarshalJSON writes (cutover -o json, read back
// by scripts and tests).
func (r *Report) UnmarshalJSON(b []byte) error {
	type plain Report
	v := struct {
		*plain
		QuietFor string `json:"quietFor"`
	}{plain: (*plain)(r)}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	r.QuietFor = 0
	if v.QuietFor == "" {
		return nil
	}
	d, err := time.ParseDuration(v.QuietFor)
	if err != nil {
		return fmt.Errorf("cutover report quietFor %q: %w", v.QuietFor, err)
	}
	r.QuietFor = d
	return nil
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
// every range's change feed before the verify; once the verify is done it
// scans the source for the items it holds (the change feed carries no
// deletes) and reads the feed after each mark (changeDuringVerify). A
// change means the verify may have
// compared an outdated version, so it drains, waits and verifies again,
// until the timeout. With a Follow (the target) it also marks Follow's
// feed before the verify, and verifies again when the verify fixed
// anything or Follow was written across it (a stopped worker's write that
// landed late: followChangedDuringVerify). It records the cutover in the
// state only after a verify, across which the source did not change (nor
// Follow), found no difference other than accepted dead letters, and only
// while its request still holds; with the record go what the application must write from now on
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
// SourceIdentities and TargetIdentities scan, after a Verify, the items of
// one container whose identities that Verify's report holds
// (Report.SourceIdentities, TargetIdentities) and return theirs now: the
// Gate compares those of the container the application wrote (the
// source; a rollback's: the target) to see a delete the change feed does
// not carry.
type Checker interface {
	Verify(ctx context.Context, cfg verify.Config) (*verify.Report, error)
	SourceIdentities(ctx context.Context) (verify.Identities, error)
	TargetIdentities(ctx context.Context) (verify.Identities, error)
}

// Run performs the cutover. A refusal is an error wrapping ErrCutOver or
// one of the errors above, returned with the report so far.
func (c *Gate) Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.QuietPeriod <= 0 {
		cfg.QuietPeriod = DefaultQuietPeriod
	}
	cfg.QuietPeriod = max(cfg.QuietPeriod, MinQuietPeriod)
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = pipeline.DefaultLeaseTTL
	}
	if cfg.MaxRequestTime <= 0 {
		cfg.MaxRequestTime = DefaultMaxRequestTime
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
	// Dead letters are refused first, before the workers are stopped and
	// the application's writes have to be: the drain below checks again
	// for those it adds.
	if err := c.checkDeadLetters(cfg, rep); err != nil {
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
	lastSent, err := req.fence(ctx, cfg.Timeout-c.Clock.Now().Sub(start), c.say)
	if err != nil {
		return rep, lostOr(ctx, err)
	}
	if req.predecessorSent.After(lastSent) {
		lastSent = req.predecessorSent // a cutover that died may have written until its request lapsed
	}
	waited, err := c.waitForLateWrites(ctx, lastSent.Add(cfg.MaxRequestTime))
	if err != nil {
		return rep, lostOr(ctx, err)
	}
	// The wait does not count against the timeout.
	if err := c.drainAndVerify(ctx, cfg, rep, start.Add(waited)); err != nil {
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

// waitForLateWrites waits, on the clock the leases are stamped by, until
// until: the workers are stopped and fenced, but a write one of them sent
// before it stopped may still take effect until then (a slow request, one
// whose worker gave up on it at its shutdown timeout, or one of a worker
// that died). The final verify must see such a write: one that landed
// after it would be a difference the cutover never saw (simulator seed
// 3413: a create that took 24 seconds left an orphan behind a recorded
// cutover). It returns how long it waited.
func (c *Gate) waitForLateWrites(ctx context.Context, until time.Time) (time.Duration, error) {
	clock := c.runnerClock()
	wait := until.Sub(clock.Now())
	if wait <= 0 {
		return 0, nil
	}
	c.say("waiting %s for writes the workers sent before they stopped to take effect or lapse", wait.Round(time.Second))
	if err := clock.Sleep(ctx, wait); err != nil {
		return 0, fmt.Errorf("wait for the workers' last writes: %w", err)
	}
	return wait, nil
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
	lastChange := start
	for {
		c.say("draining every range to the end of its feed")
		if err := c.waitQuiet(ctx, cfg, rep, start, &lastChange); err != nil {
			return err
		}
		if err := c.checkDeadLetters(cfg, rep); err != nil {
			return err
		}
		marks, err := c.markFeeds(ctx)
		if err != nil {
			return err
		}
		followMarks, err := c.markFollow(ctx, start)
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
		change, err := c.changeDuringVerify(ctx, vrep, marks)
		if err != nil {
			return err
		}
		if change == "" {
			again, err := c.followChangedDuringVerify(ctx, vrep, followMarks)
			if err != nil {
				return err
			}
			if again == "" {
				break
			}
			if c.Clock.Now().Sub(start) >= cfg.Timeout {
				return fmt.Errorf("%w: %s, and the %s timeout passed before a verify found nothing to fix with the target unchanged across it; run cutover again", ErrCopyDiffers, again, cfg.Timeout)
			}
			c.say("%s: verifying again, to prove the copy with a verify across which nothing wrote to it", again)
			continue
		}
		lastChange = c.Clock.Now()
		if lastChange.Sub(start) >= cfg.Timeout {
			return fmt.Errorf("%w: %s changed during the final verify (%s) and the %s timeout passed; stop the application's writes to %s (cutover cannot stop them), then run cutover again", ErrStillWriting, c.from(), change, cfg.Timeout, c.from())
		}
		c.say("%s changed during the final verify (%s): the application's writes to %s must be stopped; draining and verifying again", c.from(), change, c.from())
	}
	remaining := rep.Verify.Differences()
	if cfg.AcceptDeadLetter {
		remaining -= rep.Verify.Accepted()
	}
	if cfg.DryRun {
		v := rep.Verify
		rep.WouldFix = v.Missing.Count + v.Extra.Count + v.Changed.Count + v.Orphaned.Count
		remaining -= rep.WouldFix
	}
	if remaining > 0 {
		return fmt.Errorf("%w: %d differences remain after the fix (rekey verify lists them)", ErrCopyDiffers, remaining)
	}
	return nil
}

// checkDeadLetters refuses while items are dead-lettered, unless accepted.
func (c *Gate) checkDeadLetters(cfg Config, rep *Report) error {
	dead, err := c.Runner.DeadLetters.Count()
	if err != nil {
		return fmt.Errorf("count dead letters: %w", err)
	}
	rep.DeadLetters = dead
	if dead > 0 && !cfg.AcceptDeadLetter {
		return fmt.Errorf("%w: %d items could not be copied (rekey deadletter list); replay them after fixing the cause, or pass --accept-dead-letter to cut over without them", ErrDeadLettersPending, dead)
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

// markFeeds reads each lease range's change feed from its checkpoint to the
// end and returns where each ends: a change after a mark was written after
// markFeeds read that range. The changes it passes over were written before
// the verify that follows, which compares their current versions.
func (c *Gate) markFeeds(ctx context.Context) ([]pipeline.FeedMark, error) {
	r := c.Runner
	leases, err := r.Store.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list leases: %w", err)
	}
	retry := &migrate.Retrier{Clock: c.runnerClock(), Tries: migrate.DefaultTransientTries}
	marks := make([]pipeline.FeedMark, 0, len(leases))
	for _, l := range leases {
		m, err := pipeline.MarkFeedEnd(ctx, r.Source, retry, l, markPageSize)
		if err != nil {
			return nil, err
		}
		marks = append(marks, m)
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
func (c *Gate) changeDuringVerify(ctx context.Context, vrep *verify.Report, marks []pipeline.FeedMark) (string, error) {
	scan, was := c.Verifier.SourceIdentities, vrep.SourceIdentities
	if c.Rollback { // the application wrote the target
		scan, was = c.Verifier.TargetIdentities, vrep.TargetIdentities
	}
	now, err := scan(ctx)
	if err != nil {
		return "", err
	}
	if now != was {
		return fmt.Sprintf("the verify saw %d items, the source holds %d, not all the same: an item was deleted or created", was.Count, now.Count), nil
	}
	changed, err := c.changedSince(ctx, marks)
	if err != nil || changed == nil {
		return "", err
	}
	return fmt.Sprintf("feed range [%s, %s)", changed.Min, changed.Max), nil
}

// markFollow marks where each of Follow's feed ranges ends before the
// final verify (nil when the Gate has no Follow), as the record finds
// them (feedEnds).
func (c *Gate) markFollow(ctx context.Context, start time.Time) ([]lease.FeedPosition, error) {
	if c.Follow == nil {
		return nil, nil
	}
	from := c.runnerClock().Now().Add(-followMargin - c.Clock.Now().Sub(start))
	marks, err := feedEnds(ctx, c.Follow, c.runnerClock(), from)
	if err != nil {
		return nil, fmt.Errorf("mark where the change feed of the container the application writes next ends: %w", err)
	}
	return marks, nil
}

// followChangedDuringVerify says why the final verify must run again
// although the source stayed quiet across it ("" when it need not): the
// verify's fix wrote to Follow (the target), or something else did. A
// worker's write can land after the worker stopped (the request was sent
// before it stopped and took long to arrive) and bring back an outdated
// version the verify had already compared, or a copy of an item deleted
// since; so only a verify that fixed nothing, across which Follow's feed
// did not move past its marks, proves the copy. Deletes do not show in
// the feed; only the fix deletes from the target, and a fix that deleted
// counts as a fix.
func (c *Gate) followChangedDuringVerify(ctx context.Context, vrep *verify.Report, marks []lease.FeedPosition) (string, error) {
	if c.Follow == nil {
		return "", nil
	}
	if f := vrep.Fix; f != nil && f.Copied+f.Deleted > 0 {
		return fmt.Sprintf("the final verify fixed %d items", f.Copied+f.Deleted), nil
	}
	retry := &migrate.Retrier{Clock: c.runnerClock(), Tries: migrate.DefaultTransientTries}
	for _, m := range marks {
		req := migrate.ChangeRequest{Range: migrate.FeedRangeOf(m.Range), Continuation: m.Continuation, PageSize: 1}
		page, err := migrate.ReadPage(ctx, c.Follow, retry, req)
		if err != nil {
			return "", fmt.Errorf("read the change feed of the container the application writes next: %w", err)
		}
		if len(page.Items) > 0 {
			return fmt.Sprintf("the container the application writes next was written during the final verify (feed range [%s, %s)), by a write of a stopped worker that landed late or by the application", m.Range.Min, m.Range.Max), nil
		}
	}
	return "", nil
}

// changedSince returns the range of the first mark after which the source's
// change feed holds a change, or nil when none does.
func (c *Gate) changedSince(ctx context.Context, marks []pipeline.FeedMark) (*migrate.FeedRange, error) {
	retry := &migrate.Retrier{Clock: c.runnerClock(), Tries: migrate.DefaultTransientTries}
	for _, m := range marks {
		moved, err := m.Moved(ctx, c.Runner.Source, retry)
		if err != nil {
			return nil, err
		}
		if moved {
			return &m.Range, nil
		}
	}
	return nil, nil
}
