package pipeline

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/rekey-dev/rekey/migrate"
	"github.com/rekey-dev/rekey/migrate/pacing"
)

// recordingLimiter lets every request out and records the expected
// charges and the outcomes.
type recordingLimiter struct {
	mu       sync.Mutex
	expected []float64
	outcomes []migrate.Outcome
}

func (l *recordingLimiter) Acquire(_ context.Context, _ migrate.Key, expected float64) (func(migrate.Outcome), error) {
	l.mu.Lock()
	l.expected = append(l.expected, expected)
	l.mu.Unlock()
	return func(o migrate.Outcome) {
		l.mu.Lock()
		l.outcomes = append(l.outcomes, o)
		l.mu.Unlock()
	}, nil
}

func TestWriterTellsTheLimiterEachOutcome(t *testing.T) {
	w, dst, clk := testWriter(t)
	lim := &recordingLimiter{}
	w.limit = lim
	ruCap := pacing.NewRUCap(1000, clk)
	w.ruCap = ruCap
	throttles := 1
	dst.Intercept(func(op string, _ migrate.Key, _ string) error {
		if op == "create" && throttles > 0 {
			throttles--
			return &migrate.RequestError{Op: op, Status: http.StatusTooManyRequests, RetryAfter: 40 * time.Millisecond}
		}
		if op == "batch" {
			return &migrate.RequestError{Op: op, Status: http.StatusGone, RU: 1}
		}
		return nil
	})
	page0 := changes(t, w, item("1", "eu", "a", 1))
	if _, err := w.writePage(context.Background(), page0, nil); err != nil {
		t.Fatal(err)
	}
	want := []migrate.Outcome{{Throttled: true, RetryAfter: 40 * time.Millisecond}, {RU: 5.5}}
	if len(lim.outcomes) != 2 || lim.outcomes[0] != want[0] || lim.outcomes[1] != want[1] {
		t.Fatalf("outcomes %+v, want %+v", lim.outcomes, want)
	}
	s := w.stats.Snapshot()
	if s.WriteRequests != 2 || s.WritesThrottled != 1 || s.ThrottledShare() != 0.5 {
		t.Fatalf("requests %d, throttled %d", s.WriteRequests, s.WritesThrottled)
	}
	// Each attempt was expected to cost what the cost model says of a
	// create of its item, and the RU cap found the model right.
	if want := migrate.CreateCharge(len(page0[0].Result.Item)); len(lim.expected) != 2 || lim.expected[0] != want || lim.expected[1] != want {
		t.Fatalf("expected charges %v, want %v twice", lim.expected, want)
	}
	if c := ruCap.Correction(); c != 1 {
		t.Fatalf("the RU cap's correction is %v after a write that cost what the model said", c)
	}

	// A 410 is reported as Gone (and, a plain failure, stops the write).
	lim.outcomes = nil
	page := changes(t, w, item("2", "eu", "b", 1), item("3", "eu", "b", 1))
	if _, err := w.writePage(context.Background(), page, nil); err == nil {
		t.Fatal("a 410 on a batch did not fail the page")
	}
	if len(lim.outcomes) != 1 || !lim.outcomes[0].Gone || lim.outcomes[0].RU != 1 {
		t.Fatalf("outcomes %+v, want one Gone costing 1 RU", lim.outcomes)
	}
}
