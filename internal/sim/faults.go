package sim

import (
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	"github.com/rekey-dev/rekey/migrate"
)

// injected is what a fault does to one request: fail it (after it took
// effect, when landFirst: the answer was lost on the way back) and delay
// it.
type injected struct {
	err       error
	landFirst bool
	delay     time.Duration
}

// retryBudget bounds how long the pipeline's retries of one request may
// take before it gives up on a transient failure: the default number of
// tries, each with its longest backoff and latency.
func retryBudget() time.Duration {
	total := time.Duration(0)
	wait := 100 * time.Millisecond // migrate's backoff: base doubled per try, capped at 5s
	for i := 0; i < migrate.DefaultTransientTries; i++ {
		total += maxLatency
		if i < migrate.DefaultTransientTries-1 {
			total += min(wait, 5*time.Second)
			wait *= 2
		}
	}
	return total
}

// faultFor decides the fault, if any, that meets a request of kind by p
// now. Once the chaos phase is over the world is healthy.
func (w *world) faultFor(p *process, kind string, r *rand.Rand) injected {
	if w.healed.Load() || p.slot < 0 {
		return injected{}
	}
	now := w.elapsed()
	var out injected
	for _, f := range w.sc.Faults {
		if !f.meets(kind, now) {
			continue
		}
		switch f.Kind {
		case faultPermanent:
			if f.strikes(p, now) {
				p.struck(retryBudget())
				return injected{err: requestError(kind, http.StatusServiceUnavailable, 0, "injected: the service is unavailable to this process")}
			}
			continue
		case faultDiskFull:
			// The file's full disk strikes in its sync (deadFile.Sync); the
			// lease container's dead-letter documents refuse writes.
			if !strings.HasPrefix(kind, "dl.") && f.strikes(p, now) && isWrite(kind) {
				p.struck(0)
				return injected{err: requestError(kind, http.StatusServiceUnavailable, 0, "injected: the lease container refuses dead-letter writes")}
			}
			continue
		}
		if !chance(r, f.Prob) {
			continue
		}
		switch f.Kind {
		case faultThrottle:
			e := requestError(kind, http.StatusTooManyRequests, 0, "injected: request rate is large")
			e.RetryAfter = between(r, f.Min, f.Max)
			return injected{err: e}
		case faultTransient:
			status := http.StatusServiceUnavailable
			if chance(r, 0.5) {
				status = http.StatusRequestTimeout
			}
			return injected{err: requestError(kind, status, 0, "injected: transient failure"), delay: between(r, 0, 200*time.Millisecond)}
		case faultAmbiguous:
			if isWrite(kind) {
				return injected{err: requestError(kind, http.StatusRequestTimeout, 0, "injected: the answer was lost after the write took effect"), landFirst: true}
			}
		case faultGone:
			e := requestError(kind, http.StatusGone, 0, "injected: the partition key range is gone and could not be re-resolved")
			e.SubStatus = 1002
			return injected{err: e}
		case faultSlow:
			out.delay += between(r, f.Min, f.Max)
		}
	}
	return out
}

// opFaultFor decides the fault, if any, that meets one operation of a
// bulk request of p (kind "tgt.op.create", ...) as the request is served:
// the answers the service gives an operation alone, inside a response to
// the whole request. Faults of whole requests (a permanent failure, a
// full disk, a lost answer, a slow request) do not strike operations.
func (w *world) opFaultFor(p *process, kind string, r *rand.Rand) error {
	if w.healed.Load() || p.slot < 0 {
		return nil
	}
	now := w.elapsed()
	for _, f := range w.sc.Faults {
		if !f.meets(kind, now) {
			continue
		}
		switch f.Kind {
		case faultThrottle, faultTransient, faultGone, faultResponseTooLarge:
		default:
			continue
		}
		if !chance(r, f.Prob) {
			continue
		}
		switch f.Kind {
		case faultThrottle:
			e := requestError(kind, http.StatusTooManyRequests, 0, "injected: request rate is large")
			e.SubStatus, e.RetryAfter = 3200, between(r, f.Min, f.Max)
			return e
		case faultTransient:
			return requestError(kind, http.StatusServiceUnavailable, 1, "injected: transient failure of the operation")
		case faultGone:
			e := requestError(kind, http.StatusGone, 1, "injected: the partition is completing a split")
			e.SubStatus = 1007
			return e
		case faultResponseTooLarge:
			e := requestError(kind, http.StatusRequestEntityTooLarge, 1, "injected: the response grew too large")
			e.SubStatus = subStatusResponseTooLarge
			return e
		}
	}
	return nil
}

// meets reports whether the fault's window is open now for requests of
// kind.
func (f Fault) meets(kind string, now time.Duration) bool {
	return strings.HasPrefix(kind, f.Ops) && now >= f.From && now < f.To
}

// strikes reports whether a fault aimed at one process strikes p now: the
// process working in the fault's slot when it began.
func (f Fault) strikes(p *process, now time.Duration) bool {
	return f.Slot == p.slot && p.start <= f.From && now >= f.From && now < f.To
}

// diskFull reports whether the disk under p's dead-letter file is full now.
func (w *world) diskFull(p *process) bool {
	if w.healed.Load() {
		return false
	}
	now := w.elapsed()
	for _, f := range w.sc.Faults {
		if f.Kind == faultDiskFull && strings.HasPrefix("dl.sync", f.Ops) && f.strikes(p, now) {
			p.struck(0)
			return true
		}
	}
	return false
}

func requestError(op string, status int, ru float64, msg string) *migrate.RequestError {
	return &migrate.RequestError{Op: op, Status: status, RU: ru, Message: msg, ActivityID: "sim"}
}
