package pipeline

import (
	"fmt"
	"log/slog"
	"sync"

	"golang.org/x/time/rate"

	"github.com/rekey-dev/rekey/migrate"
)

// How many dead-lettered items are logged one by one: a burst of
// deadLetterLogBurst, then deadLetterLogRate a second.
const (
	deadLetterLogRate  = 5
	deadLetterLogBurst = 10
)

// loggedDeadLetters is a dead-letter store that logs a WARN line for every
// item it records (its id, source key, kind and reason), so an operator
// sees an item fail without running `rekey deadletter list`. The lines are
// rate-limited on the run's clock: the items held back are counted and
// said in one line, "... and K more", before the next line or when the run
// ends (flush).
type loggedDeadLetters struct {
	migrate.DeadLetterStore
	log   *slog.Logger
	clock migrate.Clock

	mu    sync.Mutex
	limit *rate.Limiter
	held  int // items recorded and not logged since the last line
}

func newLoggedDeadLetters(store migrate.DeadLetterStore, log *slog.Logger, clock migrate.Clock) *loggedDeadLetters {
	return &loggedDeadLetters{DeadLetterStore: store, log: log, clock: clock,
		limit: rate.NewLimiter(deadLetterLogRate, deadLetterLogBurst)}
}

// Add records dl in the store, then logs it or counts it as held back.
func (d *loggedDeadLetters) Add(dl migrate.DeadLetter) error {
	if err := d.DeadLetterStore.Add(dl); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.limit.AllowN(d.clock.Now(), 1) {
		d.held++
		return nil
	}
	d.flushLocked()
	d.log.Warn("dead-lettered an item: it was not copied", "id", dl.SourceID, "pk", string(dl.SourceKey), "kind", dl.Kind, "reason", dl.Reason)
	return nil
}

// flush says how many items were held back, if any.
func (d *loggedDeadLetters) flush() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.flushLocked()
}

func (d *loggedDeadLetters) flushLocked() {
	if d.held == 0 {
		return
	}
	d.log.Warn(fmt.Sprintf("... and %d more dead-lettered items, not logged one by one: 'rekey deadletter list' shows them all", d.held), "more", d.held)
	d.held = 0
}
