package sim

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rekey-dev/rekey/migrate"
	"github.com/rekey-dev/rekey/transform"
)

// app is the application that keeps using the source while it is
// migrated: it creates, updates and deletes items, changes the fields the
// target key is built from, and writes a version "v" into every item that
// only grows (so that the target can tell an older copy from a newer).
// After the cutover it writes to the target instead. It runs in one
// goroutine and draws from its own generator, so its writes replay.
type app struct {
	w   *world
	rng *rand.Rand

	items []*appItem // every item ever created, in order
	next  int        // the next new item's number
	seq   int64      // the last version written

	// targetWrites are the target items the application wrote after the
	// cutover, by address, with the ETag it left them at.
	targetWrites map[string]string

	nudges chan time.Duration // an operator's cutover verifies: write after the delay

	mu       sync.Mutex
	lastSeen map[string]time.Duration // source identity -> when it was last written
	deleted  map[string]bool          // source identity -> its last write was a delete
}

// appItem is the application's view of a source item.
type appItem struct {
	ID, Tenant, Customer, Region string
	NoCustomer                   bool
	TTL                          int // seconds; 0: the item does not expire
	V                            int64
	Live                         bool
}

func newApp(w *world) *app {
	return &app{w: w, rng: w.dice.fixed("app"), targetWrites: map[string]string{}, nudges: make(chan time.Duration), lastSeen: map[string]time.Duration{}, deleted: map[string]bool{}}
}

// ident is a source item's identity: id and source key.
func ident(id, tenant string) string { return id + "|" + tenant }

func (it *appItem) key() migrate.Key { return migrate.Key{transform.StringValue(it.Tenant)} }

// body is the item as the application writes it.
func (it *appItem) body(pad int) []byte {
	m := map[string]any{"id": it.ID, "tenant": it.Tenant, "region": it.Region, "v": it.V, "pad": strings.Repeat("x", pad)}
	if !it.NoCustomer {
		m["customer"] = it.Customer
	}
	if it.TTL > 0 {
		m["ttl"] = it.TTL
	}
	b, _ := json.Marshal(m) // strings and numbers always encode
	return b
}

// seed creates the items the source holds before the migration starts,
// at once. With a start from now they all transform, as a bulk load of
// them did.
func (a *app) seed() error {
	for range a.w.sc.Items {
		it := a.newItem(!a.w.sc.StartFromNow)
		if _, err := a.w.src.Upsert(context.Background(), it.body(a.rng.IntN(200))); err != nil {
			return fmt.Errorf("seed item %s: %w", it.ID, err)
		}
	}
	return nil
}

// newItem makes a new item: sometimes a twin of an existing id under
// another tenant (two source items that may collide on one target key),
// sometimes without the customer field (dead-lettered by a spec that needs
// it). messy allows both.
func (a *app) newItem(messy bool) *appItem {
	a.seq++
	it := &appItem{
		ID: fmt.Sprintf("i%d", a.next), Tenant: fmt.Sprintf("t%d", a.rng.IntN(6)),
		Customer: fmt.Sprintf("c%d", a.rng.IntN(8)), Region: []string{"eu", "us", "ap"}[a.rng.IntN(3)],
		V: a.seq, Live: true,
	}
	a.next++
	if messy && len(a.items) > 0 && chance(a.rng, 0.08) {
		twin := a.items[a.rng.IntN(len(a.items))]
		if tenant := fmt.Sprintf("t%d", a.rng.IntN(6)); a.find(twin.ID, tenant) == nil {
			it.ID, it.Tenant, it.Customer, it.Region = twin.ID, tenant, twin.Customer, twin.Region
			a.next--
		}
	}
	if messy && chance(a.rng, 0.06) {
		it.NoCustomer = true
	}
	if a.w.sc.SourceTTL && chance(a.rng, 0.1) {
		it.TTL = 1 + a.rng.IntN(30)
	}
	a.items = append(a.items, it)
	return it
}

func (a *app) find(id, tenant string) *appItem {
	for _, it := range a.items {
		if it.ID == id && it.Tenant == tenant {
			return it
		}
	}
	return nil
}

// live picks a live item, nil when there is none.
func (a *app) live() *appItem {
	var live []*appItem
	for _, it := range a.items {
		if it.Live {
			live = append(live, it)
		}
	}
	if len(live) == 0 {
		return nil
	}
	return live[a.rng.IntN(len(live))]
}

// run writes to the source until ctx ends: bursts of writes with pauses
// between them, some long enough for a cutover's quiet period.
func (a *app) run(ctx context.Context) {
	burstEnd := a.w.elapsed() + between(a.rng, 2*time.Second, 15*time.Second)
	for ctx.Err() == nil {
		gap := between(a.rng, 20*time.Millisecond, 600*time.Millisecond)
		if a.w.elapsed() > burstEnd {
			gap = between(a.rng, 500*time.Millisecond, 8*time.Second)
			burstEnd = a.w.elapsed() + gap + between(a.rng, 2*time.Second, 15*time.Second)
		}
		t := time.NewTimer(gap)
		del := false
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		case d := <-a.nudges:
			// An operator's cutover is verifying: write (delete, more
			// often than not) while it does, as an application that was
			// not stopped would.
			t.Stop()
			del = a.w.sc.Deletes && chance(a.rng, 0.6)
			if sleepUntil(ctx, a.w, a.w.elapsed()+d) != nil {
				return
			}
		}
		if a.w.check.cutOver() {
			return // the application moved to the target
		}
		a.step(ctx, del)
	}
}

// nudge asks the application to write once more, after delay, whatever
// pause it is in; it returns at once if the application is busy.
func (a *app) nudge(delay time.Duration) {
	select {
	case a.nudges <- delay:
	default:
	}
}

// step makes one change to the source; del makes it a delete when an item
// is live.
func (a *app) step(ctx context.Context, del bool) {
	sc := a.w.sc
	it := a.live()
	roll := a.rng.Float64()
	if del && it != nil {
		roll = 0.35
	}
	switch {
	case it == nil || roll < 0.3:
		it = a.newItem(true)
	case sc.Deletes && roll < 0.4:
		it.Live = false
		a.request(ctx, "app.delete", it, func() (string, error) {
			_, err := a.w.src.Delete(context.Background(), it.key(), it.ID, "")
			return "deleted", err
		})
		return
	case sc.KeyChanges && roll < 0.55:
		a.seq++
		it.V = a.seq
		switch a.rng.IntN(3) {
		case 0:
			it.Customer, it.NoCustomer = fmt.Sprintf("c%d", a.rng.IntN(8)), false
		case 1:
			it.Region = []string{"eu", "us", "ap"}[a.rng.IntN(3)]
		default:
			it.NoCustomer = !it.NoCustomer
		}
	default:
		a.seq++
		it.V = a.seq
	}
	body := it.body(a.rng.IntN(200))
	a.request(ctx, "app.upsert", it, func() (string, error) {
		res, err := a.w.src.Upsert(context.Background(), body)
		return fmt.Sprintf("v%d %s", it.V, res.ETag), err
	})
}

// request applies one application write after its latency. The
// application does not crash: its writes always land.
func (a *app) request(ctx context.Context, op string, it *appItem, fn func() (string, error)) {
	r := a.w.dice.roll("app", op, ident(it.ID, it.Tenant))
	_ = sleepUntil(context.WithoutCancel(ctx), a.w, a.w.elapsed()+between(r, 200*time.Microsecond, 5*time.Millisecond))
	a.w.apply(func() {
		outcome, err := fn()
		if err != nil {
			outcome = "error: " + err.Error()
		}
		a.mu.Lock()
		id := it.ID + "|" + strconv.Quote(it.Tenant)
		a.lastSeen[id], a.deleted[id] = a.w.elapsed(), op == "app.delete"
		a.mu.Unlock()
		a.w.trace.add("app", op, ident(it.ID, it.Tenant), outcome)
	})
}

// wroteAfter reports whether the application wrote the source item after
// at.
func (a *app) wroteAfter(ident string, at time.Duration) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	t, ok := a.lastSeen[ident]
	return ok && t > at
}

// deletedAt returns when the application deleted the source item, if its
// last write was a delete.
func (a *app) deletedAt(ident string) (time.Duration, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.lastSeen[ident], a.deleted[ident]
}

// writeTarget is the application after the cutover: it creates items in
// the target and updates some that rekey copied. Nothing rekey runs later
// may change them.
func (a *app) writeTarget(ctx context.Context) {
	copied := a.w.dst.Items()
	sortItems(copied)
	for n := 0; n < 3+a.rng.IntN(5); n++ {
		var key migrate.Key
		var body []byte
		if len(copied) > 0 && chance(a.rng, 0.5) {
			it := copied[a.rng.IntN(len(copied))]
			key, body = it.Key, withField(it.Body, "app", true)
		} else {
			src := &appItem{ID: fmt.Sprintf("app%d", n), Tenant: "t0", Customer: "c0", Region: "eu", V: 1 << 40}
			res, err := a.w.tr.Apply(src.body(10))
			if err != nil {
				continue
			}
			key, body = migrate.Key(res.Key), withField(res.Item, "app", true)
		}
		addr := itemAddr(key, idOf(body))
		r := a.w.dice.roll("app", "target", addr)
		_ = sleepUntil(ctx, a.w, a.w.elapsed()+between(r, time.Millisecond, 50*time.Millisecond))
		a.w.apply(func() {
			res, err := a.w.dst.Upsert(context.Background(), body)
			outcome := "written " + res.ETag
			if err != nil {
				outcome = "error: " + err.Error()
			} else {
				a.targetWrites[addr] = res.ETag
			}
			a.w.trace.add("app", "app.target", addr, outcome)
		})
	}
}

// withField returns an item body with a top-level field set.
func withField(body []byte, name string, value any) []byte {
	var m map[string]any
	if json.Unmarshal(body, &m) != nil {
		return body
	}
	for k := range m {
		if strings.HasPrefix(k, "_") {
			delete(m, k)
		}
	}
	m[name] = value
	b, _ := json.Marshal(m)
	return b
}
