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
// race each other, and its fence.
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
// A compare-and-swap write that fails (ErrLeaseLost) re-reads the lease. If
// it still names this worker and the hold has not expired, the only writes
// in between were handoff requests (Lease.HandoffTo) by other workers: the
// hold takes the new version and retries, and HandoffRequested reports the
// request. Otherwise the hold is lost for good: Lost is closed, every later
// call fails with ErrLeaseLost, and the worker must abandon the work it has
// not checkpointed.
type Hold struct {
	store Store
	owner string
	ttl   time.Duration
	now   func() time.Time

	mu       sync.Mutex // serializes writes of the lease
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
	return &Hold{store: lr.Store, owner: lr.Owner, ttl: lr.TTL, now: lr.now,
		l: l, sent: sent, renewed: make(chan struct{}), lost: make(chan struct{})}
}

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

// Fence returns nil when the holder may start a write now. Past
// WritableUntil it waits for the next renewal; it returns an error wrapping
// ErrLeaseLost once the hold is lost or released, and ctx.Err() when ctx
// ends first.
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
// returns the lease written. An error wrapping ErrLeaseLost means the hold is
// lost (see Hold); other errors (the store is unreachable) leave the hold
// as it was, to be retried.
func (h *Hold) Write(ctx context.Context, change func(*Lease)) (Lease, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.writeLocked(ctx, change)
}

// Release gives the lease up: it clears the owner, so another worker may
// take it at once, or the worker that asked for it (HandoffTo) when one did.
// Later writes fail. Releasing a lost hold does nothing.
func (h *Hold) Release(ctx context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.lostErr != nil || h.released {
		return nil
	}
	if _, err := h.writeLocked(ctx, func(l *Lease) { l.Owner = "" }); err != nil {
		return fmt.Errorf("release lease %s: %w", h.l.ID, err)
	}
	h.released = true
	return nil
}

func (h *Hold) writeLocked(ctx context.Context, change func(*Lease)) (Lease, error) {
	if h.lostErr != nil {
		return Lease{}, h.lostErr
	}
	if h.released {
		return Lease{}, fmt.Errorf("lease %s: %w (released)", h.l.ID, ErrLeaseLost)
	}
	for attempt := 0; ; attempt++ {
		next := h.l
		next.Owner, next.TTL = h.owner, h.ttl
		if change != nil {
			change(&next)
		}
		sent := h.now()
		got, err := h.store.Update(ctx, next)
		if err == nil {
			h.l, h.sent = got, sent
			close(h.renewed)
			h.renewed = make(chan struct{})
			return got, nil
		}
		if !errors.Is(err, ErrLeaseLost) || attempt == maxAdopts {
			return Lease{}, err
		}
		cur, rerr := h.store.Read(ctx, h.l.ID)
		switch {
		case errors.Is(rerr, ErrLeaseNotFound):
			return Lease{}, h.lose(fmt.Errorf("lease %s: %w (it was deleted)", h.l.ID, ErrLeaseLost))
		case rerr != nil:
			return Lease{}, fmt.Errorf("lease %s changed; re-read it: %w", h.l.ID, rerr)
		case cur.Owner != h.owner:
			return Lease{}, h.lose(fmt.Errorf("lease %s: %w (now owned by %q)", h.l.ID, ErrLeaseLost, cur.Owner))
		case !h.now().Before(h.sent.Add(h.ttl)):
			// Expired: another worker may have owned it meanwhile, even
			// if it names this one again.
			return Lease{}, h.lose(fmt.Errorf("lease %s: %w (it expired before it could be renewed)", h.l.ID, ErrLeaseLost))
		}
		// Still ours within the TTL: another worker asked for it. Keep our
		// progress, take its version and the request, and write again.
		h.l.ETag, h.l.Timestamp, h.l.HandoffTo = cur.ETag, cur.Timestamp, cur.HandoffTo
	}
}

// maxAdopts bounds how many handoff requests one write adopts before it
// gives up for now (the caller retries): each is another worker's write.
const maxAdopts = 4

// lose marks the hold lost with err, once, and returns it.
func (h *Hold) lose(err error) error {
	if h.lostErr == nil {
		h.lostErr = err
		close(h.lost)
	}
	return h.lostErr
}
