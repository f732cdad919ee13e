package emulator_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/data/azcosmos"

	"github.com/rekey-dev/rekey/internal/emulator"
	"github.com/rekey-dev/rekey/internal/emulator/emulatortest"
	"github.com/rekey-dev/rekey/internal/epk"
)

// The tests of this file check the emulator's physics (RU budgets per
// physical partition, throttling, splits, priority) through the real SDK
// client. Budgets refill by a manual clock that the tests advance, so the
// outcome does not depend on how fast this machine runs the requests.

// manualClock is a clock that moves only when told to.
type manualClock struct {
	mu sync.Mutex
	t  time.Time
}

func newManualClock() *manualClock { return &manualClock{t: time.Unix(1_700_000_000, 0)} }

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// physicsEnv is an emulator on a manual clock with a client that does not
// retry, so every 429 reaches the test.
type physicsEnv struct {
	*env
	clock  *manualClock
	writes int // items written so far, for unique ids
}

func newPhysicsEnv(t *testing.T, opts ...emulatortest.Option) *physicsEnv {
	t.Helper()
	clk := newManualClock()
	opts = append(opts, func(o *emulator.ServerOptions) { o.Clock = clk.Now })
	e := newEnv(t, opts...)
	e.client = newClient(t, e.srv, func(o *azcosmos.ClientOptions) {
		o.Retry = policy.RetryOptions{MaxRetries: -1}
	})
	db, err := e.client.NewDatabase(testDB)
	if err != nil {
		t.Fatal(err)
	}
	e.db = db
	return &physicsEnv{env: e, clock: clk}
}

// payload returns an item of about size bytes.
func payload(id, pk string, size int) []byte {
	pad := strings.Repeat("x", max(0, size-len(id)-len(pk)-40))
	return []byte(fmt.Sprintf(`{"id":%q,"pk":%q,"pad":%q}`, id, pk, pad))
}

// isThrottled reports whether err is a 429 with substatus 3200 and a retry-after.
func isThrottled(t *testing.T, err error) (time.Duration, bool) {
	t.Helper()
	var re *azcore.ResponseError
	if !errors.As(err, &re) || re.StatusCode != http.StatusTooManyRequests {
		return 0, false
	}
	h := re.RawResponse.Header
	if h.Get("x-ms-substatus") != "3200" {
		t.Fatalf("429 without substatus 3200: %v", h)
	}
	ms, perr := time.ParseDuration(h.Get("x-ms-retry-after-ms") + "ms")
	if perr != nil || ms <= 0 {
		t.Fatalf("429 without a positive x-ms-retry-after-ms: %q", h.Get("x-ms-retry-after-ms"))
	}
	return ms, true
}

// batchOf returns a transactional batch of n items of about size bytes each
// under partition key pk; batches keep the request count of a heavy load low.
func (p *physicsEnv) batchOf(c *azcosmos.ContainerClient, pk string, n, size int) azcosmos.TransactionalBatch {
	b := c.NewTransactionalBatch(azcosmos.NewPartitionKeyString(pk))
	for i := 0; i < n; i++ {
		p.writes++
		b.CreateItem(payload(fmt.Sprintf("w%d", p.writes), pk, size), nil)
	}
	return b
}

// load offers ruPerSec (simulated) for d in 10 ms ticks, as transactional
// batches of n items of 1 KB under the partition key keyFor(i) for the i-th
// batch. The offered load follows the charges the emulator reports. It
// returns the batches sent and how many were throttled.
func (p *physicsEnv) load(t *testing.T, c *azcosmos.ContainerClient, ruPerSec float64, d time.Duration, n int, keyFor func(i int) string) (sent, throttled int) {
	t.Helper()
	const tick = 10 * time.Millisecond
	owed, cost := 0.0, 5.6*float64(n) // n 1 KB inserts; refined from the first charge
	for elapsed := time.Duration(0); elapsed < d; elapsed += tick {
		owed += ruPerSec * tick.Seconds()
		for owed >= cost/2 {
			resp, err := c.ExecuteTransactionalBatch(context.Background(), p.batchOf(c, keyFor(sent), n, 1000), nil)
			sent++
			switch {
			case err == nil && resp.Success:
				cost = float64(resp.RequestCharge)
			case err != nil:
				if _, ok := isThrottled(t, err); !ok {
					t.Fatalf("batch %d: %v", sent, err)
				}
				throttled++
			default:
				t.Fatalf("batch %d failed: %v", sent, resp.OperationResults[0].StatusCode)
			}
			owed -= cost
		}
		p.clock.Advance(tick)
	}
	return sent, throttled
}

// The documented hot-partition case: 90% of the writes on one key value
// throttle at 10,000 RU/s provisioned (two partitions of 5,000 each) while
// the container uses little more than half of its throughput; the same load
// spread over many values does not throttle.
func TestHotPartitionThrottles(t *testing.T) {
	p := newPhysicsEnv(t)
	const provisioned, load = 10_000, 7_000
	const d = 10 * time.Second
	hot := p.container(t, "hot", provisioned)
	spread := p.container(t, "spread", provisioned)

	sent, throttled := p.load(t, hot, load, d, 20, func(i int) string {
		if i%10 != 0 {
			return "hot"
		}
		return fmt.Sprintf("k%d", i)
	})
	if share := float64(throttled) / float64(sent); share < 0.05 {
		t.Errorf("hot key: %d of %d batches throttled (%.1f%%), want at least 5%%", throttled, sent, 100*share)
	}
	m, err := p.srv.ContainerMetrics(testDB, "hot")
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Partitions) != 2 {
		t.Fatalf("want 2 partitions at 10,000 RU/s, got %d", len(m.Partitions))
	}
	if used := m.RU / d.Seconds(); used > 0.6*provisioned {
		t.Errorf("hot key: the container used %.0f RU/s, want far below %d", used, provisioned)
	}
	hotThrottled := m.Partitions[0].Throttled + m.Partitions[1].Throttled
	if m.Partitions[0].Throttled > 0 && m.Partitions[1].Throttled > 0 {
		t.Errorf("both partitions throttled (%d, %d); only the hot key's should", m.Partitions[0].Throttled, m.Partitions[1].Throttled)
	}
	if hotThrottled != int64(throttled) {
		t.Errorf("metrics count %d throttled requests, the client saw %d", hotThrottled, throttled)
	}

	sent, throttled = p.load(t, spread, load, d, 20, func(i int) string { return fmt.Sprintf("k%d", i) })
	if throttled != 0 {
		t.Errorf("spread keys: %d of %d batches throttled, want none", throttled, sent)
	}
}

// quarterKeys returns partition key values whose version-2 EPKs fall in each
// quarter of the hash space, so a load can be exactly uniform over it.
func quarterKeys(t *testing.T, perQuarter int) [4][]string {
	t.Helper()
	bounds, err := epk.SplitPoints(epk.Version2, epk.MinEPK, epk.MaxEPK, 4)
	if err != nil {
		t.Fatal(err)
	}
	def := epk.Definition{Paths: []string{"/pk"}, Version: epk.Version2}
	var out [4][]string
	for i := 0; ; i++ {
		k := fmt.Sprintf("key-%d", i)
		h, err := epk.Hash(def, []any{k})
		if err != nil {
			t.Fatal(err)
		}
		q := 0
		for q < 3 && epk.Compare(h, bounds[q]) >= 0 {
			q++
		}
		if len(out[q]) < perQuarter {
			out[q] = append(out[q], k)
		}
		if len(out[0]) == perQuarter && len(out[1]) == perQuarter && len(out[2]) == perQuarter && len(out[3]) == perQuarter {
			return out
		}
	}
}

// setThroughput replaces the container's manual throughput and waits until
// it has want physical partitions.
func (p *physicsEnv) setThroughput(t *testing.T, c *azcosmos.ContainerClient, ru int32, want int) {
	t.Helper()
	if _, err := c.ReplaceThroughput(context.Background(), azcosmos.NewManualThroughputProperties(ru), nil); err != nil {
		t.Fatalf("replace throughput %d: %v", ru, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		m, err := p.srv.ContainerMetrics(testDB, c.ID())
		if err != nil {
			t.Fatal(err)
		}
		if len(m.Partitions) == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("at %d RU/s: %d partitions, want %d", ru, len(m.Partitions), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// The uneven-split case: a uniform load that fits two partitions starts
// throttling after a throughput raise splits one partition but not the other
// (the unsplit half carries half the load on a third of the throughput), and
// stops once throughput was raised enough to split every partition and then
// lowered again.
func TestUnevenSplitThrottles(t *testing.T) {
	p := newPhysicsEnv(t)
	c := p.container(t, "uneven", 6_000)
	keys := quarterKeys(t, 64)
	uniform := func(i int) string { return keys[i%4][(i/4)%64] }
	// 19,800 RU/s is 99% of two 10,000 RU/s partitions but 119% of the
	// unsplit half's 8,333 after the uneven split; batches of 100 keep the
	// request count low. Phases that must not throttle can be short: at 99%
	// of a budget they never would.
	const load, short, long = 19_800, 5 * time.Second, 10 * time.Second

	p.setThroughput(t, c, 20_000, 2)
	if sent, throttled := p.load(t, c, load, short, 100, uniform); throttled > 0 {
		t.Errorf("2 even partitions at 20,000 RU/s: %d of %d batches throttled, want none", throttled, sent)
	}

	p.setThroughput(t, c, 25_000, 3)
	m, _ := p.srv.ContainerMetrics(testDB, "uneven")
	widths := []string{m.Partitions[0].MaxExclusive, m.Partitions[1].MaxExclusive, m.Partitions[2].MaxExclusive}
	if m.Partitions[2].MinInclusive != "20000000000000000000000000000000" {
		t.Errorf("want the lower half split first (quarter, quarter, half), got boundaries %v", widths)
	}
	sent, throttled := p.load(t, c, load, long, 100, uniform)
	if share := float64(throttled) / float64(sent); share < 0.02 {
		t.Errorf("3 uneven partitions at 25,000 RU/s: %d of %d batches throttled, want some", throttled, sent)
	}
	m, _ = p.srv.ContainerMetrics(testDB, "uneven")
	if m.Partitions[0].Throttled+m.Partitions[1].Throttled > 0 {
		t.Errorf("the quarter partitions throttled (%d, %d); only the unsplit half should", m.Partitions[0].Throttled, m.Partitions[1].Throttled)
	}

	p.setThroughput(t, c, 40_000, 4)
	p.setThroughput(t, c, 25_000, 4)
	if sent, throttled := p.load(t, c, load, short, 100, uniform); throttled > 0 {
		t.Errorf("4 even partitions at 25,000 RU/s: %d of %d batches throttled, want none", throttled, sent)
	}
}

// A client that retries each 429 after the server's retry-after achieves the
// provisioned RU/s to within 5% over 10 seconds.
func TestBudgetAccuracy(t *testing.T) {
	p := newPhysicsEnv(t)
	const provisioned = 1_000
	c := p.container(t, "accuracy", provisioned)
	write := func(i int) (float32, time.Duration) {
		resp, err := c.UpsertItem(context.Background(), azcosmos.NewPartitionKeyString("k"), payload(fmt.Sprintf("i%d", i), "k", 500), nil)
		if err == nil {
			return resp.RequestCharge, 0
		}
		wait, ok := isThrottled(t, err)
		if !ok {
			t.Fatalf("write %d: %v", i, err)
		}
		return 0, wait
	}
	// Spend the burst allowance first, then measure 10 simulated seconds.
	start := p.clock.Now()
	i := 0
	for p.clock.Now().Sub(start) < time.Second {
		if _, wait := write(i); wait > 0 {
			p.clock.Advance(wait)
		}
		i++
	}
	begin := p.clock.Now()
	var ru float64
	throttles := 0
	for p.clock.Now().Sub(begin) < 10*time.Second {
		charge, wait := write(i)
		i++
		ru += float64(charge)
		if wait > 0 {
			throttles++
			p.clock.Advance(wait)
		}
	}
	rate := ru / p.clock.Now().Sub(begin).Seconds()
	if rate < 0.95*provisioned || rate > 1.05*provisioned {
		t.Errorf("achieved %.0f RU/s, want within 5%% of %d", rate, provisioned)
	}
	if throttles == 0 {
		t.Error("the client was never throttled: the budget was not enforced")
	}
}

// Under contention, low-priority requests are throttled before high-priority
// ones: a load of 1.65 times the budget, two thirds of it low priority,
// throttles the low share and leaves the high share (within budget) alone.
func TestLowPriorityThrottledFirst(t *testing.T) {
	p := newPhysicsEnv(t)
	c := p.container(t, "priority", 1_000)
	low, high := azcosmos.PriorityLevelLow, azcosmos.PriorityLevelHigh
	var lowSent, lowThrottled, highSent, highThrottled int
	const tick = 10 * time.Millisecond
	for n := 0; n < 400; n++ { // 4 simulated seconds at 1,650 RU/s
		for j := 0; j < 3; j++ {
			prio := &high
			if j > 0 {
				prio = &low
			}
			id := fmt.Sprintf("p%d-%d", n, j)
			_, err := c.CreateItem(context.Background(), azcosmos.NewPartitionKeyString("k"), payload(id, "k", 500), &azcosmos.ItemOptions{PriorityLevel: prio})
			throttled := false
			if err != nil {
				if _, ok := isThrottled(t, err); !ok {
					t.Fatal(err)
				}
				throttled = true
			}
			if j > 0 {
				lowSent++
				if throttled {
					lowThrottled++
				}
			} else {
				highSent++
				if throttled {
					highThrottled++
				}
			}
		}
		p.clock.Advance(tick)
	}
	if lowThrottled == 0 {
		t.Fatalf("no low-priority request was throttled (%d sent)", lowSent)
	}
	if highThrottled*5 > lowThrottled {
		t.Errorf("high priority: %d of %d throttled; low priority: %d of %d; want high far less", highThrottled, highSent, lowThrottled, lowSent)
	}
}
