package pacing

import (
	"context"
	"time"

	"github.com/rekey-dev/rekey/migrate"
)

// capBurst is how much unspent budget an RU cap saves while idle, and
// capRequestShare the largest share of a second's budget one request
// should reserve: a second spends at most the cap plus the larger of the
// two, plus what the cost model misjudged of the requests in flight, plus
// what the requests' latency varies by (the service counts a charge when
// it serves the request, not when the request was admitted). At a
// hundredth and an eightieth of the cap they keep every second within a
// tenth of it, the first second included, with room for the other two:
// measured on a loaded machine, a fortieth each left seconds up to 1.10
// of the cap.
const (
	capBurst        = 10 * time.Millisecond
	capRequestShare = 0.0125
	// sourceRequestShare is capRequestShare for the source's change-feed
	// reads: a page costs about 1 RU besides its items, so smaller pages
	// cost more per item read (a sixth more at --max-source-ru 500), and a
	// fortieth kept the source's worst second within 1.03 of the cap.
	sourceRequestShare = 0.025
)

// RUCap caps the request units a run spends per second on one side: the
// target's writes (--max-ru) or the source's change-feed reads
// (--max-source-ru), for a migration that shares its containers with
// production. Each request reserves its expected charge before it goes
// and is settled with its actual charge after the answer (debt allowed),
// so the spending follows the real charges from the first request on:
// no second spends more than 1.1 times the cap, as long as each request
// expects at most RequestLimit. A nil *RUCap, or one of 0 RU/s, is
// unlimited. It is safe for concurrent use; SetLimit changes the cap while
// requests flow, and requests already waiting follow the new cap at once.
type RUCap struct {
	p     *pacer
	share float64 // of a second's budget, the most a request should expect
}

var _ migrate.RUCap = (*RUCap)(nil)

// NewRUCap returns a cap of ruPerSec (0: unlimited) on writes, timed by
// clock (the real clock when nil).
func NewRUCap(ruPerSec float64, clock migrate.Clock) *RUCap {
	return newRUCap(ruPerSec, clock, capRequestShare)
}

// NewSourceRUCap returns a cap of ruPerSec (0: unlimited) on the source's
// change-feed reads, whose requests may expect a larger share of it
// (sourceRequestShare).
func NewSourceRUCap(ruPerSec float64, clock migrate.Clock) *RUCap {
	return newRUCap(ruPerSec, clock, sourceRequestShare)
}

func newRUCap(ruPerSec float64, clock migrate.Clock, share float64) *RUCap {
	if clock == nil {
		clock = migrate.SystemClock{}
	}
	return &RUCap{p: newPacer(clock, ruPerSec, capBurst), share: share}
}

// SetLimit changes the cap; 0 makes it unlimited.
func (c *RUCap) SetLimit(ruPerSec float64) {
	if c != nil {
		c.p.setRate(ruPerSec)
	}
}

// Limit is the cap in RU/s, 0 when unlimited.
func (c *RUCap) Limit() float64 {
	if c == nil {
		return 0
	}
	return c.p.rate()
}

// RequestLimit is the largest charge one request should be expected to
// cost under the cap in force (an eightieth of a second's budget, a
// fortieth for the source's reads); 0 when
// there is no cap.
func (c *RUCap) RequestLimit() float64 {
	if c == nil {
		return 0
	}
	return c.share * c.Limit()
}

// Acquire waits until a request expected to cost expectedRU fits the cap
// and returns its reservation, to be passed to Settle. It fails only when
// ctx ends.
func (c *RUCap) Acquire(ctx context.Context, expectedRU float64) (migrate.Reservation, error) {
	if err := ctx.Err(); c == nil || err != nil {
		return migrate.Reservation{}, err
	}
	t := c.p.reserve(expectedRU)
	if _, err := c.p.wait(ctx, t); err != nil {
		c.p.settle(t, 0)
		return migrate.Reservation{}, err
	}
	return t.Reservation, nil
}

// Settle charges a request's actual cost against its reservation (0 when
// the request was not sent).
func (c *RUCap) Settle(r migrate.Reservation, actualRU float64) {
	if c != nil {
		c.p.settle(ticket{Reservation: r}, actualRU)
	}
}

// Correction is what the cap has learnt of the cost model: the factor by
// which the requests' actual charges exceeded the expected ones (1 before
// any answer).
func (c *RUCap) Correction() float64 {
	if c == nil {
		return 1
	}
	c.p.mu.Lock()
	defer c.p.mu.Unlock()
	return c.p.correction()
}
