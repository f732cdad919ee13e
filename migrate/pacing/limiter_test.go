package pacing

import (
	"context"
	"fmt"
	"math"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rekey-dev/rekey/internal/epk"
	"github.com/rekey-dev/rekey/migrate"
	"github.com/rekey-dev/rekey/migrate/migratetest"
	"github.com/rekey-dev/rekey/transform"
)

// twoPartitions is a target of two physical partitions split at the middle of
// the version 2 EPK space.
type twoPartitions struct{ reads int }

const midEPK = "1FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF"

func (p *twoPartitions) Definition(context.Context) (migrate.Definition, error) {
	return migrate.Definition{Paths: []string{"/pk"}, Kind: "Hash", Version: 2}, nil
}

func (p *twoPartitions) FeedRanges(context.Context) ([]migrate.FeedRange, error) {
	p.reads++
	return []migrate.FeedRange{{Min: "", Max: midEPK}, {Min: midEPK, Max: "FF"}}, nil
}

// keyIn returns a key whose EPK lies in partition i of twoPartitions.
func keyIn(t *testing.T, i int) migrate.Key {
	t.Helper()
	def := epk.Definition{Paths: []string{"/pk"}, Kind: epk.KindHash, Version: epk.Version2}
	for n := 0; n < 1000; n++ {
		k := fmt.Sprintf("k%d", n)
		h, err := epk.Hash(def, []any{k})
		if err != nil {
			t.Fatal(err)
		}
		if (epk.Compare(h, midEPK) < 0) == (i == 0) {
			return migrate.Key{transform.StringValue(k)}
		}
	}
	t.Fatal("no key found")
	return nil
}

// write sends one scripted request through the limiter: acquire (whose
// waits move the fake clock), a request of latency, then release with o.
// The request is expected to cost what o charges (10 RU when o has no
// charge).
func write(t *testing.T, l *AdaptiveLimiter, clk *migratetest.Clock, key migrate.Key, latency time.Duration, o migrate.Outcome) {
	t.Helper()
	expected := o.RU
	if expected == 0 {
		expected = 10
	}
	release, err := l.Acquire(context.Background(), key, expected)
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(latency)
	release(o)
}

func TestPacedControllerBacksOffAndRecovers(t *testing.T) {
	clk := &migratetest.Clock{}
	target := &twoPartitions{}
	l := NewAdaptiveLimiter(target, AdaptiveConfig{Clock: clk, InitialPartitionRU: 1000, MaxConcurrency: 32})
	hot, cold := keyIn(t, 0), keyIn(t, 1)
	ok := migrate.Outcome{RU: 10}
	pace := func(i int) float64 { return l.Partitions()[i].PaceRU }

	// Slow start: a partition whose pace holds requests back doubles it each
	// window while no request is throttled.
	start := clk.Now()
	for clk.Now().Sub(start) < 2*time.Second {
		write(t, l, clk, hot, time.Millisecond, ok)
	}
	grown := pace(0)
	if grown < 8000 || !l.Partitions()[0].SlowStart {
		t.Fatalf("after 2s of demand the pace is %.0f RU/s (slow start %v), want >= 8000 and still in slow start", grown, l.Partitions()[0].SlowStart)
	}
	if pace(1) != 1000 {
		t.Fatalf("the idle partition's pace moved to %.0f", pace(1))
	}

	// A 429 ends the slow start, cutting the pace by paceDecrease, and its
	// retry-after holds back the partition's next request, not the other
	// partition's.
	write(t, l, clk, hot, time.Millisecond, migrate.Outcome{Throttled: true, RetryAfter: 300 * time.Millisecond})
	// (The request may have closed a clean window first, doubling the
	// pace before the 429 cut it.)
	cut := pace(0)
	if (cut != grown*paceDecrease && cut != 2*grown*paceDecrease) || l.Partitions()[0].SlowStart || l.Partitions()[0].Throttled != 1 {
		t.Fatalf("after a 429 the pace is %.0f (was %.0f), slow start %v", cut, grown, l.Partitions()[0].SlowStart)
	}
	before := clk.Now()
	write(t, l, clk, cold, 0, ok)
	if waited := clk.Now().Sub(before); waited >= 300*time.Millisecond {
		t.Fatalf("the other range waited %v for this range's retry-after", waited)
	}
	before = clk.Now()
	write(t, l, clk, hot, time.Millisecond, ok)
	if waited := clk.Now().Sub(before); waited < 290*time.Millisecond {
		t.Fatalf("the throttled partition's next request went out after %v, before the 300ms retry-after", waited)
	}

	// 429s on requests sent before the cut are of the old pace: together
	// they cut once. A 429 on a request sent since says the new pace is
	// still too high: it cuts again, and cuts that follow one another
	// quickly escalate.
	ctx := context.Background()
	r1, _ := l.Acquire(ctx, hot, 10)
	r2, _ := l.Acquire(ctx, hot, 10)
	r1(migrate.Outcome{Throttled: true})
	r2(migrate.Outcome{Throttled: true})
	cut1 := pace(0)
	if math.Abs(cut1-cut*cutFactor(2)) > 1 {
		t.Fatalf("two 429s of one generation: pace %.0f, want %.0f x %.2f once", cut1, cut, cutFactor(2))
	}
	clk.Advance(time.Millisecond)
	write(t, l, clk, hot, time.Millisecond, migrate.Outcome{Throttled: true})
	cut2 := pace(0)
	if math.Abs(cut2-cut1*cutFactor(3)) > 1 || cutFactor(3) >= cutFactor(2) {
		t.Fatalf("a 429 of the next generation: pace %.0f, want %.0f x %.2f", cut2, cut1, cutFactor(3))
	}

	// Clean windows grow it back by paceIncrease each (ten windows in
	// five seconds), not doubling.
	// (Requests of 100 RU taking 1ms each could spend 100,000 RU/s: the
	// pace, not the demand, holds them back.)
	start = clk.Now()
	for clk.Now().Sub(start) < 5*time.Second {
		write(t, l, clk, hot, time.Millisecond, migrate.Outcome{RU: 100})
	}
	recovered := pace(0)
	lo, hi := cut2*math.Pow(1+paceIncrease, 8), cut2*math.Pow(1+paceIncrease, 11)
	if recovered < lo || recovered > hi {
		t.Fatalf("after 5s of clean windows the pace is %.0f, want between %.0f and %.0f", recovered, lo, hi)
	}
	// The in-flight limit follows the pace: 2 x rate x latency / charge + 1.
	want := int(math.Ceil(2*recovered*0.001/100)) + 1
	if got := l.Partitions()[0].InFlightLimit; got < want || got > want+2 {
		t.Fatalf("in-flight limit %d, want about %d", got, want)
	}
}

func TestPacedControllerSpendsItsPace(t *testing.T) {
	clk := &migratetest.Clock{}
	l := NewAdaptiveLimiter(&twoPartitions{}, AdaptiveConfig{Clock: clk, InitialPartitionRU: 2000})
	key := keyIn(t, 1)
	// A few throttles end the slow start; then the pace settles.
	write(t, l, clk, key, 0, migrate.Outcome{RU: 10, Throttled: true})
	clk.Advance(time.Second)
	pace := l.Partitions()[1].PaceRU
	spent, start := 0.0, clk.Now()
	for i := 0; i < 400; i++ {
		ru := 5.5
		if i%10 == 0 {
			ru = 275 // a batch now and then
		}
		write(t, l, clk, key, 0, migrate.Outcome{RU: ru})
		spent += ru
	}
	// The pace grew (+3% a clean window) meanwhile: what was spent lies
	// between the first and the last pace.
	el := clk.Now().Sub(start).Seconds()
	last := l.Partitions()[1].PaceRU
	if rate := spent / el; rate > last*1.02 || rate < pace*0.98 || last <= pace {
		t.Fatalf("spent %.0f RU/s with a pace going from %.0f to %.0f", rate, pace, last)
	}
}

func TestCutsEscalateWhileTheyComeQuickly(t *testing.T) {
	want := []float64{0.95, 0.95, 0.9, 0.9, 0.8, 0.8, 0.6, 0.6, 0.5, 0.5}
	for k, w := range want {
		if got := cutFactor(k + 1); math.Abs(got-w) > 1e-9 {
			t.Errorf("cut %d: x%.3f, want x%.3f", k+1, got, w)
		}
	}
	clk := &migratetest.Clock{}
	l := NewAdaptiveLimiter(&twoPartitions{}, AdaptiveConfig{Clock: clk, InitialPartitionRU: 8000})
	key := keyIn(t, 0)
	pace := func() float64 { return l.Partitions()[0].PaceRU }
	// Five generations, each throttled as soon as its pause is over: the
	// pace is far above the budget, the cuts escalate.
	start := clk.Now()
	for range 5 {
		write(t, l, clk, key, time.Millisecond, migrate.Outcome{Throttled: true})
	}
	if got, w := pace(), 8000*0.95*0.95*0.9*0.9*0.8; math.Abs(got-w) > 1 {
		t.Fatalf("after five quick cuts the pace is %.0f, want %.0f", got, w)
	}
	// Each cut paused the partition at least cutPause, whatever the retry-after.
	if waited := clk.Now().Sub(start); waited < 4*cutPause {
		t.Fatalf("five cuts took %v, want pauses of at least %v each", waited, cutPause)
	}
	// A 429 a while after the last cut is a shallow probe: a gentle cut.
	clk.Advance(cutPause + paceWindow)
	before := pace()
	write(t, l, clk, key, time.Millisecond, migrate.Outcome{Throttled: true})
	if got := pace(); math.Abs(got-before*paceDecrease) > 1 {
		t.Fatalf("a cut long after the last: pace %.0f, want %.0f x %.2f", got, before, paceDecrease)
	}

	// After a deep cut the pace grows back fast toward just under the
	// level the cut came from, then gently.
	l = NewAdaptiveLimiter(&twoPartitions{}, AdaptiveConfig{Clock: clk, InitialPartitionRU: 10000})
	for range 8 {
		write(t, l, clk, key, time.Millisecond, migrate.Outcome{Throttled: true})
	}
	low, ceiling := pace(), pace()/cutFactor(8)
	start = clk.Now()
	for clk.Now().Sub(start) < 3*time.Second { // six windows
		write(t, l, clk, key, 0, migrate.Outcome{RU: 100})
	}
	if got := pace(); got < recoverBelow*ceiling || got > paceDecrease*ceiling*(1+paceIncrease) {
		t.Fatalf("three seconds after a deep cut (%.0f, from %.0f) the pace is %.0f, want close under %.0f", low, ceiling, got, paceDecrease*ceiling)
	}
}

func TestKnownThroughputSkipsTheSlowStart(t *testing.T) {
	clk := &migratetest.Clock{}
	l := NewAdaptiveLimiter(&twoPartitions{}, AdaptiveConfig{Clock: clk, ProvisionedRU: 12000})
	write(t, l, clk, keyIn(t, 0), 0, migrate.Outcome{RU: 5})
	for i, r := range l.Partitions() {
		if r.PaceRU != startShare*6000 || r.SlowStart {
			t.Fatalf("partition %d starts at %.0f RU/s (slow start %v), want %.0f without a slow start", i, r.PaceRU, r.SlowStart, startShare*6000)
		}
	}
}

func TestPaceDoesNotGrowWithoutDemand(t *testing.T) {
	clk := &migratetest.Clock{}
	l := NewAdaptiveLimiter(&twoPartitions{}, AdaptiveConfig{Clock: clk, InitialPartitionRU: 1000})
	key := keyIn(t, 0)
	// 5 RU every 10ms is 500 RU/s: the 1000 RU/s pace never holds a
	// request back, so it learns nothing and stays.
	for range 500 {
		write(t, l, clk, key, 10*time.Millisecond, migrate.Outcome{RU: 5})
	}
	if got := l.Partitions()[0].PaceRU; got != 1000 {
		t.Fatalf("a partition with half its pace in demand moved its pace to %.0f", got)
	}
}

func TestWindowedControllerFollowsDotNetRule(t *testing.T) {
	clk := &migratetest.Clock{}
	l := NewAdaptiveLimiter(&twoPartitions{}, AdaptiveConfig{Clock: clk, Mode: ControllerWindowed, MaxConcurrency: 64})
	key := keyIn(t, 0)
	limit := func() int { return l.Partitions()[0].InFlightLimit }
	write(t, l, clk, key, 0, migrate.Outcome{RU: 5})
	if limit() != 1 {
		t.Fatalf("initial in-flight limit %d, want 1", limit())
	}
	// +1 per clean window with work done.
	for w := 0; w < 20; w++ {
		clk.Advance(windowStart)
		write(t, l, clk, key, 0, migrate.Outcome{RU: 5})
	}
	if limit() != 21 {
		t.Fatalf("after 20 clean windows the limit is %d, want 21", limit())
	}
	// A window with a 429: minus min(5, limit/2), and the next window is a
	// second longer.
	write(t, l, clk, key, 0, migrate.Outcome{Throttled: true})
	clk.Advance(windowStart)
	write(t, l, clk, key, 0, migrate.Outcome{RU: 5})
	if limit() != 16 {
		t.Fatalf("after a throttled window the limit is %d, want 16", limit())
	}
	clk.Advance(windowStart)
	write(t, l, clk, key, 0, migrate.Outcome{RU: 5})
	if limit() != 16 {
		t.Fatalf("the window after a throttle should last 2s: limit %d", limit())
	}
	clk.Advance(windowStart)
	write(t, l, clk, key, 0, migrate.Outcome{RU: 5})
	if limit() != 17 {
		t.Fatalf("limit %d after the 2s window, want 17", limit())
	}
}

func TestAdaptiveLimiterRefreshesRanges(t *testing.T) {
	clk := &migratetest.Clock{}
	target := &twoPartitions{}
	l := NewAdaptiveLimiter(target, AdaptiveConfig{Clock: clk, RefreshInterval: time.Minute})
	key := keyIn(t, 0)
	write(t, l, clk, key, 0, migrate.Outcome{RU: 5})
	write(t, l, clk, key, 0, migrate.Outcome{RU: 5, Gone: true})
	write(t, l, clk, key, 0, migrate.Outcome{RU: 5})
	if target.reads != 2 {
		t.Fatalf("partitions read %d times, want 2 (first use, after the 410)", target.reads)
	}
	clk.Advance(time.Minute)
	write(t, l, clk, key, 0, migrate.Outcome{RU: 5})
	if target.reads != 3 {
		t.Fatalf("partitions read %d times, want 3 (after the refresh interval)", target.reads)
	}
}

func TestAdaptiveLimiterBoundsConcurrency(t *testing.T) {
	l := NewAdaptiveLimiter(&twoPartitions{}, AdaptiveConfig{MaxConcurrency: 2, Mode: ControllerWindowed})
	ctx := context.Background()
	k0, k1 := keyIn(t, 0), keyIn(t, 1)
	r0, err := l.Acquire(ctx, k0, 10)
	if err != nil {
		t.Fatal(err)
	}
	r1, err := l.Acquire(ctx, k1, 10)
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	// Range 0 is at its limit of 1 (windowed start).
	if _, err := l.Acquire(short, k0, 10); err == nil {
		t.Fatal("a second request to a partition at its in-flight limit went out")
	}
	r0(migrate.Outcome{RU: 1})
	l.SetMaxConcurrency(1)
	r1(migrate.Outcome{RU: 1})
	r, err := l.Acquire(ctx, k0, 10)
	if err != nil {
		t.Fatal(err)
	}
	short2, cancel2 := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel2()
	if _, err := l.Acquire(short2, k1, 10); err == nil {
		t.Fatal("max concurrency 1 let a second request out")
	}
	r(migrate.Outcome{RU: 1})
}

// TestInFlightFollowsTheLatencyWithoutAGlobalCap: with no MaxConcurrency,
// a partition whose requests take 40 ms keeps as many in flight as its pace
// needs at that latency (2 x rate x latency / charge + 1), far more than the
// 32 the whole run was once capped at, and they can all be acquired at once.
func TestInFlightFollowsTheLatencyWithoutAGlobalCap(t *testing.T) {
	clk := &migratetest.Clock{}
	l := NewAdaptiveLimiter(&twoPartitions{}, AdaptiveConfig{Clock: clk, ProvisionedRU: 20000})
	key := keyIn(t, 0)
	for range 50 {
		write(t, l, clk, key, 40*time.Millisecond, migrate.Outcome{RU: 5.5})
	}
	p := l.Partitions()[0]
	want := int(math.Ceil(2*p.PaceRU*0.040/5.5)) + 1
	if p.InFlightLimit < want-2 || p.InFlightLimit > want+2 || p.InFlightLimit <= 32 {
		t.Fatalf("in-flight limit %d at 40 ms and %.0f RU/s, want about %d", p.InFlightLimit, p.PaceRU, want)
	}
	var releases []func(migrate.Outcome)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	for range p.InFlightLimit {
		r, err := l.Acquire(ctx, key, 0)
		if err != nil {
			t.Fatalf("acquire %d of %d: %v", len(releases)+1, p.InFlightLimit, err)
		}
		releases = append(releases, r)
	}
	for _, r := range releases {
		r(migrate.Outcome{})
	}
	// --max-concurrency, when given, bounds them.
	l.SetMaxConcurrency(8)
	short, cancelShort := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancelShort()
	releases = releases[:0]
	for range 8 {
		r, err := l.Acquire(ctx, key, 0)
		if err != nil {
			t.Fatal(err)
		}
		releases = append(releases, r)
	}
	if _, err := l.Acquire(short, keyIn(t, 1), 0); err == nil {
		t.Fatal("a ninth request went out under --max-concurrency 8")
	}
	for _, r := range releases {
		r(migrate.Outcome{})
	}
}

// TestInFlightFollowsTheLeastLatency: the in-flight limit follows the
// least latency of recent requests, the network's round trip, not requests
// that waited in a busy client (which more requests in flight would only
// make wait longer); a lasting change of the network shows within two
// latencyHorizons.
func TestInFlightFollowsTheLeastLatency(t *testing.T) {
	clk := &migratetest.Clock{}
	l := NewAdaptiveLimiter(&twoPartitions{}, AdaptiveConfig{Clock: clk, ProvisionedRU: 20000})
	key := keyIn(t, 0)
	limitAt := func(latency time.Duration) int {
		p := l.Partitions()[0]
		return int(math.Ceil(2*p.PaceRU*latency.Seconds()/5.5)) + 1
	}
	for range 20 {
		write(t, l, clk, key, 40*time.Millisecond, migrate.Outcome{RU: 5.5})
	}
	for range 20 { // queued in the client: 200 ms each
		write(t, l, clk, key, 200*time.Millisecond, migrate.Outcome{RU: 5.5})
	}
	if got, want := l.Partitions()[0].InFlightLimit, limitAt(40*time.Millisecond); got != want {
		t.Fatalf("in-flight limit %d after slow answers, want %d (40 ms, the least latency)", got, want)
	}
	// The network is 100 ms away from now on.
	for end := clk.Now().Add(2*latencyHorizon + time.Second); clk.Now().Before(end); {
		write(t, l, clk, key, 100*time.Millisecond, migrate.Outcome{RU: 5.5})
	}
	if got, want := l.Partitions()[0].InFlightLimit, limitAt(100*time.Millisecond); got != want {
		t.Fatalf("in-flight limit %d after %s at 100 ms, want %d", got, 2*latencyHorizon, want)
	}
}

// TestThrottledRequestsShrink: a 429 halves how large a request to the
// partition may be (RequestLimit), clean windows double it back.
func TestThrottledRequestsShrink(t *testing.T) {
	clk := &migratetest.Clock{}
	l := NewAdaptiveLimiter(&twoPartitions{}, AdaptiveConfig{Clock: clk, ProvisionedRU: 20000})
	key := keyIn(t, 0)
	ctx := context.Background()
	full := l.RequestLimit(ctx, key)
	if want := startShare * 10000 * partitionBurst.Seconds(); full != want {
		t.Fatalf("request limit %.0f, want the pace's burst %.0f", full, want)
	}
	write(t, l, clk, key, time.Millisecond, migrate.Outcome{RU: 100, Throttled: true})
	write(t, l, clk, key, time.Millisecond, migrate.Outcome{RU: 100, Throttled: true})
	if got, pace := l.RequestLimit(ctx, key), l.Partitions()[0].PaceRU; math.Abs(got-pace*partitionBurst.Seconds()/4) > 1e-6 {
		t.Fatalf("after two cuts the request limit is %.1f, want a quarter of the pace's burst (%.1f)", got, pace*partitionBurst.Seconds()/4)
	}
	for range 4 {
		clk.Advance(paceWindow)
		write(t, l, clk, key, time.Millisecond, migrate.Outcome{RU: 5})
	}
	if got, pace := l.RequestLimit(ctx, key), l.Partitions()[0].PaceRU; math.Abs(got-pace*partitionBurst.Seconds()) > 1e-6 {
		t.Fatalf("after clean windows the request limit is %.1f, want the pace's burst %.1f", got, pace*partitionBurst.Seconds())
	}
}

// TestThrottledRequestGivesNothingBack: what a throttled bulk request did
// not cost (its throttled operations) is no room in the partition, so the
// requests waiting behind it do not leave sooner. Time is synctest's.
func TestThrottledRequestGivesNothingBack(t *testing.T) {
	for _, throttled := range []bool{false, true} {
		synctest.Test(t, func(t *testing.T) {
			l := NewAdaptiveLimiter(&twoPartitions{}, AdaptiveConfig{ProvisionedRU: 2000 / startShare}) // 1000 RU/s a partition
			key := keyIn(t, 0)
			ctx := context.Background()
			r, err := l.Acquire(ctx, key, 100) // spends the saved burst
			if err != nil {
				t.Fatal(err)
			}
			r(migrate.Outcome{RU: 100})
			first, err := l.Acquire(ctx, key, 400)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			went := make(chan time.Duration)
			go func() {
				r, err := l.Acquire(ctx, key, 400) // waits for 400 RU at 1000 RU/s
				if err == nil {
					r(migrate.Outcome{RU: 400})
				}
				went <- time.Since(start)
			}()
			synctest.Wait()
			first(migrate.Outcome{RU: 100, Throttled: throttled}) // 300 RU of it not spent
			waited := <-went
			switch {
			case throttled && waited < 390*time.Millisecond:
				t.Fatalf("after a throttled request the next one waited %v, want 400ms", waited)
			case !throttled && waited > 150*time.Millisecond:
				t.Fatalf("after a request that cost 100 of its 400 RU the next one waited %v, want about 100ms", waited)
			}
		})
	}
}
