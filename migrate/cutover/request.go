package cutover

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/rekey-dev/rekey/lease"
	"github.com/rekey-dev/rekey/migrate"
)

// renewEvery is how often, as a share of its TTL, a cutover renews its
// request: a renewal may fail several times before the request lapses.
const renewEvery = 6

// withdrawTimeout bounds the withdrawal of a request when the cutover ends
// without recording (its own context may be done).
const withdrawTimeout = 30 * time.Second

// request is a cutover's hold on the migration: its request in the state
// (lease.CutoverRequest), renewed by a heartbeat, and the fences it puts on
// every lease once their workers let go of them. While it holds, no worker
// takes a lease or writes; the cutover drains the feed itself.
type request struct {
	store lease.Store
	owner string
	ttl   time.Duration
	clock migrate.Clock
	log   *slog.Logger
	// predecessorSent is when a cutover whose lapsed request this one took
	// over may have sent its last write (drains and fixes write outside
	// any lease): its request's last renewal plus its TTL; zero when none.
	predecessorSent time.Time

	mu      sync.Mutex
	lost    chan struct{} // closed when the request was taken from us
	lostErr error
	stop    func() // ends the heartbeat
}

// take records a request of owner in the state, with a compare-and-swap:
// a cutover already recorded is refused (*migrate.CutOverError), and so is
// a live request of another owner (*migrate.CutoverInProgressError), so
// two cutovers never run at once. The request of a cutover that stopped
// renewing it is taken over. The heartbeat renews the request until
// release or record.
func take(ctx context.Context, store lease.Store, owner string, ttl time.Duration, dryRun, rollback bool, clock migrate.Clock, log *slog.Logger) (*request, error) {
	now := clock.Now().UTC()
	var stale *lease.CutoverRequest
	_, err := store.SwapMeta(ctx, func(m *lease.Meta) error {
		stale = nil
		if m.Cutover != nil {
			return &migrate.CutOverError{Command: "cutover", At: m.Cutover.At, Items: m.Cutover.Items}
		}
		if r := m.CutoverRequest; r != nil {
			if r.Live(now) && r.Owner != owner {
				return &migrate.CutoverInProgressError{Command: "cutover", Request: *r}
			}
			stale = r
		}
		m.CutoverRequest = &lease.CutoverRequest{Owner: owner, At: now, RenewedAt: now, TTL: ttl, DryRun: dryRun, Rollback: rollback}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("request the cutover: %w", err)
	}
	if stale != nil && stale.Owner != owner {
		log.Warn("took over the request of a cutover that stopped renewing it", "owner", stale.Owner, "since", stale.At)
	}
	r := &request{store: store, owner: owner, ttl: ttl, clock: clock, log: log, lost: make(chan struct{})}
	if stale != nil && stale.Owner != owner {
		r.predecessorSent = stale.RenewedAt.Add(stale.TTL)
	}
	hbCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	r.stop = stop
	go r.heartbeat(hbCtx)
	return r, nil
}

// heartbeat renews the request every TTL/renewEvery until stopped; when
// the request is no longer ours, the hold is lost.
func (r *request) heartbeat(ctx context.Context) {
	every := max(r.ttl/renewEvery, time.Millisecond)
	for {
		if err := r.clock.Sleep(ctx, every); err != nil {
			return
		}
		_, err := r.store.SwapMeta(ctx, func(m *lease.Meta) error {
			if m.CutoverRequest == nil || m.CutoverRequest.Owner != r.owner {
				return errRequestTaken
			}
			m.CutoverRequest.RenewedAt = r.clock.Now().UTC()
			return nil
		})
		switch {
		case errors.Is(err, errRequestTaken):
			r.lose(fmt.Errorf("%w: the cutover request is no longer this cutover's (%s): it lapsed while renewals failed, and was withdrawn or taken over", ErrRequestLost, r.owner))
			return
		case err != nil && ctx.Err() == nil:
			r.log.Warn("could not renew the cutover request; will retry", "err", err)
		}
	}
}

var errRequestTaken = errors.New("the request is another's")

// ErrRequestLost: the cutover's request lapsed (it could not be renewed
// within its TTL) and was withdrawn or taken over; the cutover stops
// without recording anything.
var ErrRequestLost = errors.New("the cutover request was lost")

func (r *request) lose(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.lostErr == nil {
		r.lostErr = err
		close(r.lost)
	}
}

// err is nil while the request holds.
func (r *request) err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lostErr
}

// fence waits until no worker holds a lease, then fences every lease with
// the cutover's name (a compare-and-swap each): from then on no worker
// takes or asks for one. A lease whose owner stopped renewing it (by the
// longer of ttl and the TTL the lease records) counts as let go. It gives
// up after wait, naming the workers that still hold leases.
//
// It returns when the workers sent the last writes that may still take
// effect, at the latest: for a lease its worker released, the last write
// it got no answer to (Lease.UnansweredAt; a worker's range loop waits
// for the answers to its writes before it releases, unless its shutdown
// timeout or an error cut that short); for one whose owner let it expire
// (it died), half its TTL past its last renewal (lease.Hold's fence stops
// the holder's writes then).
func (r *request) fence(ctx context.Context, wait time.Duration, say func(string, ...any)) (lastSent time.Time, err error) {
	deadline := r.clock.Now().Add(wait)
	announced := ""
	for {
		if err := r.err(); err != nil {
			return lastSent, err
		}
		leases, err := r.store.List(ctx)
		if err != nil {
			return lastSent, fmt.Errorf("list leases: %w", err)
		}
		now := r.clock.Now()
		held := map[string]int{}
		for _, l := range leases {
			if l.Fence == r.owner && (l.Owner == "" || l.Owner == r.owner) {
				continue
			}
			if l.Owner != "" && l.Owner != r.owner && !l.Expired(now, r.ttl) {
				held[l.Owner]++
				continue
			}
			sent := l.UnansweredAt
			if l.Owner != "" && l.Owner != r.owner {
				sent = l.Timestamp.Add(max(r.ttl, l.TTL) / 2)
			}
			l.Owner, l.HandoffTo, l.Fence = "", "", r.owner
			if _, err := r.store.Update(ctx, l); err != nil && !errors.Is(err, lease.ErrLeaseLost) {
				return lastSent, fmt.Errorf("fence lease %s: %w", l.ID, err)
			} else if err != nil {
				held["(changed; looking again)"]++
			} else if sent.After(lastSent) {
				lastSent = sent
			}
		}
		if len(held) == 0 {
			return lastSent, nil
		}
		workers := describeHolders(held)
		if now.After(deadline) {
			return lastSent, fmt.Errorf("%w: workers still hold leases: %s. They stop at their next balancing pass (a quarter of their --lease-ttl); a worker that cannot read the state keeps its leases until it stops: stop it, or wait for its leases to expire, and run cutover again",
				ErrWorkersRunning, workers)
		}
		if workers != announced {
			say("waiting for the workers to stop (they see the cutover request at their next balancing pass): %s", workers)
			announced = workers
		}
		if err := r.clock.Sleep(ctx, fencePoll(r.ttl)); err != nil {
			return lastSent, err
		}
	}
}

// ErrWorkersRunning: workers kept their leases past the cutover's timeout.
var ErrWorkersRunning = errors.New("workers are still running")

// fencePoll is how often fence looks at the leases again.
func fencePoll(ttl time.Duration) time.Duration {
	return min(max(ttl/20, 10*time.Millisecond), time.Second)
}

func describeHolders(held map[string]int) string {
	var parts []string
	for owner, n := range held {
		parts = append(parts, fmt.Sprintf("%s (%d leases)", owner, n))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// record writes the cutover into the state with a compare-and-swap that
// requires the request to still be this cutover's, and removes the
// request; the fences are cleared afterwards (the migration is over, so a
// fence left by a crash here harms nothing).
func (r *request) record(ctx context.Context, cut lease.Cutover) error {
	r.stop()
	if err := r.err(); err != nil {
		return err
	}
	_, err := r.store.SwapMeta(ctx, func(m *lease.Meta) error {
		switch {
		case m.Cutover != nil:
			return &migrate.CutOverError{Command: "cutover", At: m.Cutover.At, Items: m.Cutover.Items}
		case m.CutoverRequest == nil || m.CutoverRequest.Owner != r.owner:
			return fmt.Errorf("%w: the state no longer holds this cutover's request", ErrRequestLost)
		}
		m.Cutover, m.CutoverRequest = &cut, nil
		return nil
	})
	if err != nil {
		return fmt.Errorf("record the cutover: %w", err)
	}
	if err := migrate.ClearFences(ctx, r.store, func(f string) bool { return f == r.owner }); err != nil {
		r.log.Warn("recorded the cutover, but could not clear its fences on the leases (harmless: the migration is over)", "err", err)
	}
	return nil
}

// withdraw gives the migration back to the workers: it clears the fences,
// then the request, if it is still this cutover's. It works on a context
// of its own, since the cutover's may be done.
func (r *request) withdraw(ctx context.Context) error {
	r.stop()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), withdrawTimeout)
	defer cancel()
	if err := migrate.ClearFences(ctx, r.store, func(f string) bool { return f == r.owner }); err != nil {
		return fmt.Errorf("withdraw the cutover request: %w", err)
	}
	_, err := r.store.SwapMeta(ctx, func(m *lease.Meta) error {
		if m.CutoverRequest == nil || m.CutoverRequest.Owner != r.owner {
			return errRequestTaken
		}
		m.CutoverRequest = nil
		return nil
	})
	if err != nil && !errors.Is(err, errRequestTaken) {
		return fmt.Errorf("withdraw the cutover request: %w", err)
	}
	return nil
}
