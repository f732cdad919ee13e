package lease

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Hold is one worker's hold on one lease while it works on it: the only
// writer of that lease in the process, so its checkpoints and renewals never
// race each other, and its fence. No lock of it is held across a request to
// the store: a caller waiting for another's write can give up with its
// context, and a test on a simulated clock (testing/synctest) sees every
// wait.
//
// # Fencing
//
// A lease written at time T is the worker's until T+TTL in every other
// worker's eyes. The holder writes (to the target) only until T+TTL/2,
// where T is when its last successful write of the lease was sent:
// Writable and Fence enforce it. The other half of the TTL is the margin for
// a request sent just before the fence to land, so a write that lands after
// another worker took the lease over needs a request that took longer than
// TTL/2 between leaving the process and being applied. Renew well within
// TTL/2 (every TTL/6, say) from a heartbeat that does not wait for the
// work, so a slow page never loses its lease.
//
// A hold that was not renewed within the TTL has expired: from then on
// another worker may take the lease over, so the hold is lost for good
// (Expire, Fence and every write check it), whether or not the store could
// be reached to see it. A compare-and-swap write that fails (ErrLeaseLost)
// within the TTL re-reads the lease. If it still names this worker, the only
// writes in between were handoff requests (Lease.HandoffTo) by other
// workers: the hold takes the new version and retries, and HandoffRequested
// reports the request. Otherwise the hold is lost for good: Lost is closed,
// every later call fails with ErrLeaseLost, and the worker must abandon the
// work it has not checkpointed at once. A worker that cannot renew (the
// lease store throttles it) thus abandons its page by ExpiresAt at the
// latest, before any other worker may take the lease: call Expire then.
type Hold struct {
	store Store
	owner string
	ttl   time.Duration
	now   func() time.Time

	// turn serializes the writes of the lease: a one-slot semaphore, held
	// across the store's requests, that a waiter gives up on when its
	// context ends (a sync.Mutex would make it wait out a slow request).
	turn chan struct{}

	mu       sync.Mutex // guards the fields below; never held across a request
	l        Lease      // as last written or read
	sent     time.Time  // when the last successful write was sent
	renewed  chan struct{}
	released bool
	lost     chan struct{}
	lostErr  error
}

// Hold starts holding l, which lr just took (or created) with a write sent
// at sent; l is the lease that write returned.
func (lr Leaser) Hold(l Lease, sent time.Time) *Hold {
	return &Hold{store: lr.Store, owner: lr.Owner, ttl: lr.TTL, now: lr.now, turn: make(chan struct{}, 1),
		l: l, sent: sent, renewed: make(chan struct{}), lost: make(chan struct{})}
}

// takeTurn waits until no other write of the lease is under way, or ctx
// ends; giveTurn ends the write.
func (h *Hold) takeTurn(ctx context.Context) error {
	select {
	case h.turn <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("lease %s: wait for its write under way: %w", h.Lease().ID, ctx.Err())
	}
}

func (h *Hold) giveTurn() { <-h.turn }

// Lease returns the lease as last written.
func (h *Hold) Lease() Lease {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.l
}

// Lost is closed once the hold is lost; Err then says why.
func (h *Hold) Lost() <-chan struct{} { return h.lost }

// Err is nil while the hold lasts, then an error wrapping ErrLeaseLost.
func (h *Hold) Err() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lostErr
}

// HandoffRequested names the worker that asked for the lease, if one did:
// the holder should checkpoint the page it is writing and Release.
func (h *Hold) HandoffRequested() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.l.HandoffTo
}

// WritableUntil is when the holder must stop starting writes unless the
// lease is renewed first: half a TTL after the last renewal was sent.
func (h *Hold) WritableUntil() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.sent.Add(h.ttl / 2)
}

// ExpiresAt is when the hold expires unless it is renewed first: a TTL
// after the last renewal was sent. No other worker may take the lease
// before then.
func (h *Hold) ExpiresAt() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.sent.Add(h.ttl)
}

// Expire loses the hold if it was not renewed within the TTL (ExpiresAt is
// not after now) and reports whether the hold is lost. The holder calls it
// at ExpiresAt, so that it stops waiting for a renewal that can no longer
// keep the lease.
func (h *Hold) Expire() bool {
	h.mu.Lock()
	expired := h.lostErr == nil && h.expiredLocked()
	h.mu.Unlock()
	if expired {
		h.lose(h.expiredErr())
	}
	return h.Err() != nil
}

// expiredLocked says whether the hold expired; h.mu is held.
func (h *Hold) expiredLocked() bool { return !h.now().Before(h.sent.Add(h.ttl)) }

func (h *Hold) expiredErr() error {
	return fmt.Errorf("lease %s: %w (it expired: not renewed within its TTL of %v)", h.Lease().ID, ErrLeaseLost, h.ttl)
}

// Fence returns nil when the holder may start a write now. Past
// WritableUntil it waits for the next renewal; it returns an error wrapping
// ErrLeaseLost once the hold is lost, released or expired, and ctx.Err()
// when ctx ends first.
func (h *Hold) Fence(ctx context.Context) error {
	for {
		h.mu.Lock()
		switch {
		case h.lostErr != nil:
			err := h.lostErr
			h.mu.Unlock()
			return err
		case h.released:
			h.mu.Unlock()
			return fmt.Errorf("lease %s: %w (released)", h.l.ID, ErrLeaseLost)
		case h.expiredLocked():
			h.mu.Unlock()
			return h.lose(h.expiredErr())
		case h.now().Before(h.sent.Add(h.ttl / 2)):
			h.mu.Unlock()
			return nil
		}
		renewed := h.renewed
		h.mu.Unlock()
		select {
		case <-renewed:
		case <-h.lost:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Renew writes the lease unchanged, extending the hold.
func (h *Hold) Renew(ctx context.Context) error {
	_, err := h.Write(ctx, nil)
	return err
}

// Write applies change to the lease (a checkpoint: continuation and
// counters) and writes it with compare-and-swap, which also renews it. It
// returns the lease written. Writes of one hold go one at a time; a write
// that waits for the one under way gives up when ctx ends. An error
// wrapping ErrLeaseLost means the hold is lost (see Hold); other errors
// (the store is unreachable, ctx ended) leave the hold as it was, to be
// retried.
func (h *Hold) Write(ctx context.Context, change func(*Lease)) (Lease, error) {
	if err := h.takeTurn(ctx); err != nil {
		return Lease{}, err
	}
	defer h.giveTurn()
	return h.write(ctx, change)
}

// Release gives the lease up: it clears the owner, so another worker may
// take it at once, or the worker that asked for it (HandoffTo) when one did.
// Later writes fail. Releasing a lost hold does nothing.
func (h *Hold) Release(ctx context.Context) error {
	return h.ReleaseUnanswered(ctx, time.Time{})
}

// ReleaseUnanswered is Release by a holder that sent writes it got no
// answer to, the last at unanswered (Lease.UnansweredAt); zero is Release.
func (h *Hold) ReleaseUnanswered(ctx context.Context, unanswered time.Time) error {
	if err := h.takeTurn(ctx); err != nil {
		return fmt.Errorf("release: %w", err)
	}
	defer h.giveTurn()
	h.mu.Lock()
	done, id := h.lostErr != nil || h.released, h.l.ID
	h.mu.Unlock()
	if done {
		return nil
	}
	release := func(l *Lease) {
		l.Owner = ""
		if unanswered.After(l.UnansweredAt) {
			l.UnansweredAt = unanswered.UTC()
		}
	}
	if _, err := h.write(ctx, release); err != nil {
		return fmt.Errorf("release lease %s: %w", id, err)
	}
	h.mu.Lock()
	h.released = true
	h.mu.Unlock()
	return nil
}

// write writes the lease; the caller has the turn, so h.l changes only
// here while it runs.
func (h *Hold) write(ctx context.Context, change func(*Lease)) (Lease, error) {
	h.mu.Lock()
	cur, last, lostErr, released := h.l, h.sent, h.lostErr, h.released
	h.mu.Unlock()
	if lostErr != nil {
		return Lease{}, lostErr
	}
	if released {
		return Lease{}, fmt.Errorf("lease %s: %w (released)", cur.ID, ErrLeaseLost)
	}
	for attempt := 0; ; attempt++ {
		if !h.now().Before(last.Add(h.ttl)) {
			// Expired: another worker may own it by now; a write in our
			// name would take it back from under that worker's feet.
			return Lease{}, h.lose(h.expiredErr())
		}
		next := cur
		next.Owner, next.TTL = h.owner, h.ttl
		if change != nil {
			change(&next)
		}
		sent := h.now()
		got, err := h.store.Update(ctx, next)
		if err == nil {
			h.mu.Lock()
			h.l, h.sent = got, sent
			close(h.renewed)
			h.renewed = make(chan struct{})
			h.mu.Unlock()
			return got, nil
		}
		if !errors.Is(err, ErrLeaseLost) || attempt == maxAdopts {
			return Lease{}, err
		}
		if !h.now().Before(last.Add(h.ttl)) {
			// Changed and expired: whoever changed it may own it, even if
			// it names this worker again. No need to read it.
			return Lease{}, h.lose(fmt.Errorf("lease %s: %w (it changed and expired before it could be renewed)", cur.ID, ErrLeaseLost))
		}
		fresh, rerr := h.store.Read(ctx, cur.ID)
		switch {
		case errors.Is(rerr, ErrLeaseNotFound):
			return Lease{}, h.lose(fmt.Errorf("lease %s: %w (it was deleted)", cur.ID, ErrLeaseLost))
		case rerr != nil:
			return Lease{}, fmt.Errorf("lease %s changed; re-read it: %w", cur.ID, rerr)
		case fresh.Owner != h.owner:
			return Lease{}, h.lose(fmt.Errorf("lease %s: %w (now owned by %q)", cur.ID, ErrLeaseLost, fresh.Owner))
		case !h.now().Before(last.Add(h.ttl)):
			// Expired: another worker may have owned it meanwhile, even
			// if it names this one again.
			return Lease{}, h.lose(fmt.Errorf("lease %s: %w (it expired before it could be renewed)", cur.ID, ErrLeaseLost))
		}
		// Still ours within the TTL: another worker asked for it. Keep our
		// progress, take its version and the request, and write again.
		cur.ETag, cur.Timestamp, cur.HandoffTo = fresh.ETag, fresh.Timestamp, fresh.HandoffTo
		h.mu.Lock()
		h.l.ETag, h.l.Timestamp, h.l.HandoffTo = cur.ETag, cur.Timestamp, cur.HandoffTo
		h.mu.Unlock()
	}
}

// maxAdopts bounds how many handoff requests one write adopts before it
// gives up for now (the caller retries): each is another worker's write.
const maxAdopts = 4

// lose marks the hold lost with err, once, and returns it.
func (h *Hold) lose(err error) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.lostErr == nil {
		h.lostErr = err
		close(h.lost)
	}
	return h.lostErr
}
