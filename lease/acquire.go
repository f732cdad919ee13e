package lease

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Leaser takes and keeps leases for one worker among many sharing a Store.
// It is built on Store alone, so it works on both stores. It holds no state:
// every call reads what it needs, so a Leaser value may be copied.
//
// The rule, applied on each Acquire (the balancing pass; call it every few
// seconds, and renew held leases well within TTL):
//
//   - A lease is free when it has no owner or its owner has not written it
//     within TTL (Lease.Expired), unless it is reserved: released by its
//     owner for a worker that asked for it (Lease.ReservedFor), which only
//     that worker may take within TTL of the release. Active owners are the
//     owners of leases that are not free, the workers leases are reserved
//     for, and this worker.
//   - A worker's fair share is ceil(leases / active owners). A worker below
//     its share takes the leases reserved for it, then free leases in Range
//     order, until it reaches it.
//   - A fenced lease (Lease.Fence, written by a cutover that holds the
//     migration) is neither taken nor asked for by any worker but the
//     fence's owner, and does not count towards the shares: a cutover is
//     draining, and the workers are stopping.
//   - When no free lease is left and the worker is still below its share,
//     it asks the owner holding the most, if that owner holds at least two
//     more than this worker (so a steal never just moves the imbalance),
//     to hand one lease over: it writes its name into the lease's HandoffTo,
//     one request at a time. This is how a worker that joins late (a new
//     pod) gets work: the others cannot see it until it holds a lease. The
//     owner finishes the page it is writing, checkpoints, and releases the
//     lease reserved for the asker, so nothing is written twice and no two
//     workers ever work on one lease; an owner that died lets the lease
//     expire TTL after the request, and it is free.
//
// Every write is a compare-and-swap: a worker that loses the race for a
// lease skips it, which is not an error.
type Leaser struct {
	Store Store
	// Owner names this worker; unique among the workers (hostname/pid).
	Owner string
	// TTL is how long a lease stays owned without a write by its owner.
	TTL time.Duration
	// Now is the clock lease expiry is judged by; nil means time.Now. It
	// must agree with the store's clock (WithClock), which stamps leases.
	Now func() time.Time
}

func (lr Leaser) now() time.Time {
	if lr.Now != nil {
		return lr.Now()
	}
	return time.Now()
}

func (lr Leaser) validate() error {
	switch {
	case lr.Store == nil:
		return errors.New("leaser: no store")
	case lr.Owner == "":
		return errors.New("leaser: no owner")
	case lr.TTL <= 0:
		return fmt.Errorf("leaser: TTL %v must be positive", lr.TTL)
	}
	return nil
}

// Acquire runs one balancing pass and returns the leases it took, now owned
// by lr.Owner, with their new ETags; the caller starts a worker for each.
// Leases the owner already holds and keeps renewing are not returned. A
// lease of this owner that expired (it failed to renew in time) counts as
// free and may be returned again: the caller must make sure its old worker
// on that lease has stopped before starting a new one.
func (lr Leaser) Acquire(ctx context.Context) ([]Lease, error) {
	if err := lr.validate(); err != nil {
		return nil, err
	}
	all, err := lr.Store.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("acquire leases: %w", err)
	}
	if len(all) == 0 {
		return nil, nil
	}
	now := lr.now()
	held := map[string][]Lease{lr.Owner: nil} // active owner -> live leases
	var mine, free []Lease                    // reserved for this worker; free for anyone
	asked := 0                                // this worker's pending handoff requests
	fenced := 0
	for _, l := range all {
		if l.Fence != "" && l.Fence != lr.Owner {
			fenced++
			continue
		}
		if w, ok := l.ReservedFor(now, lr.TTL); ok {
			if w == lr.Owner {
				mine = append(mine, l)
			} else {
				held[w] = append(held[w], l)
			}
			continue
		}
		if l.Expired(now, lr.TTL) {
			free = append(free, l)
			continue
		}
		held[l.Owner] = append(held[l.Owner], l)
		if l.HandoffTo == lr.Owner {
			asked++
		}
	}
	share := (len(all) - fenced + len(held) - 1) / len(held)
	need := share - len(held[lr.Owner]) - asked

	var taken []Lease
	for _, l := range append(mine, free...) {
		if need <= 0 && l.HandoffTo != lr.Owner {
			break
		}
		got, ok, err := lr.take(ctx, l)
		if err != nil {
			return taken, err
		}
		if ok {
			taken = append(taken, got)
			need--
		}
	}
	if need > 0 && asked == 0 {
		have := len(held[lr.Owner]) + len(taken)
		if victim := busiest(held, lr.Owner); len(held[victim]) > have+1 {
			// The victim's last lease in Range order: its first ones
			// are likely the furthest along.
			if err := lr.ask(ctx, held[victim]); err != nil {
				return taken, err
			}
		}
	}
	return taken, nil
}

// ask writes a handoff request into the last of the victim's leases that
// has none; losing the race for it is not an error.
func (lr Leaser) ask(ctx context.Context, victims []Lease) error {
	for i := len(victims) - 1; i >= 0; i-- {
		l := victims[i]
		if l.Owner == "" || l.HandoffTo != "" {
			continue
		}
		l.HandoffTo = lr.Owner
		_, err := lr.Store.Update(ctx, l)
		if err != nil && !errors.Is(err, ErrLeaseLost) {
			return fmt.Errorf("ask for lease %s: %w", l.ID, err)
		}
		return nil
	}
	return nil
}

// take writes lr.Owner into l with CAS (Lease.TakenBy); ok is false when
// another worker wrote l first.
func (lr Leaser) take(ctx context.Context, l Lease) (Lease, bool, error) {
	got, err := lr.Store.Update(ctx, l.TakenBy(lr.Owner, lr.TTL))
	switch {
	case errors.Is(err, ErrLeaseLost):
		return Lease{}, false, nil
	case err != nil:
		return Lease{}, false, fmt.Errorf("acquire lease %s: %w", l.ID, err)
	}
	return got, true, nil
}

// busiest returns the active owner, other than self, holding the most
// leases ("" when there is none); ties go to the smallest name so all
// workers agree.
func busiest(held map[string][]Lease, self string) string {
	var who string
	for owner, ls := range held {
		if owner == self {
			continue
		}
		if who == "" || len(ls) > len(held[who]) || len(ls) == len(held[who]) && owner < who {
			who = owner
		}
	}
	return who
}

// Renew writes l unchanged but for its timestamp (the store stamps it),
// extending lr.Owner's hold. Call it from the goroutine that checkpoints l,
// with the lease it last got back, well before TTL runs out; a checkpoint
// (Store.Update) renews too. ErrLeaseLost means another worker took the
// lease: stop working on it.
func (lr Leaser) Renew(ctx context.Context, l Lease) (Lease, error) {
	if err := lr.validate(); err != nil {
		return Lease{}, err
	}
	if l.Owner != lr.Owner {
		return Lease{}, fmt.Errorf("renew lease %s: %w (owned by %q, not %q)", l.ID, ErrLeaseLost, l.Owner, lr.Owner)
	}
	got, err := lr.Store.Update(ctx, l)
	if err != nil {
		return Lease{}, fmt.Errorf("renew lease %s: %w", l.ID, err)
	}
	return got, nil
}

// Release gives l up (Owner cleared) so another worker can take it at once,
// for a clean shutdown or a handoff: when a worker asked for l (HandoffTo),
// the release reserves it for that worker. ErrLeaseLost means it was no
// longer ours, which a shutting-down caller may ignore.
func (lr Leaser) Release(ctx context.Context, l Lease) (Lease, error) {
	if err := lr.validate(); err != nil {
		return Lease{}, err
	}
	if l.Owner != lr.Owner {
		return Lease{}, fmt.Errorf("release lease %s: %w (owned by %q, not %q)", l.ID, ErrLeaseLost, l.Owner, lr.Owner)
	}
	l.Owner = ""
	got, err := lr.Store.Update(ctx, l)
	if err != nil {
		return Lease{}, fmt.Errorf("release lease %s: %w", l.ID, err)
	}
	return got, nil
}
