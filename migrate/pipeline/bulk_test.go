package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rekey-dev/rekey/lease"
	"github.com/rekey-dev/rekey/migrate"
	"github.com/rekey-dev/rekey/migrate/migratetest"
	"github.com/rekey-dev/rekey/migrate/pacing"
	"github.com/rekey-dev/rekey/transform"
)

// testBulkWriter is testWriter over a fake target that takes bulk
// requests, which the writer sends.
func testBulkWriter(t *testing.T) (*Writer, *migratetest.BulkTarget, *migratetest.Clock) {
	t.Helper()
	w, _, clk := testWriter(t)
	dst := migratetest.NewBulkTarget(newTarget(t))
	w.dst, w.bulk = dst, dst
	w.queue = newBulkQueue(w)
	return w, dst, clk
}

// manyItems are n source items under tenants t0..t(tenants-1).
func manyItems(n, tenants, version int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = item(fmt.Sprintf("i%03d", i), "eu", fmt.Sprintf("t%d", i%tenants), version)
	}
	return out
}

func keyOf(s string) migrate.Key { return migrate.Key{transform.StringValue(s)} }

func deadKinds(t *testing.T, w *Writer) map[string]string {
	t.Helper()
	if err := w.dead.Sync(); err != nil {
		t.Fatal(err)
	}
	dl, err := w.dead.List()
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]string{}
	for _, d := range dl {
		kinds[d.SourceID] = d.Kind
	}
	return kinds
}

func TestBulkWriterGroupsByPartition(t *testing.T) {
	w, dst, _ := testBulkWriter(t)
	dst.Partition = func(k migrate.Key) string {
		if k.String() < `["t5-x"]` {
			return "low"
		}
		return "high"
	}
	lim := &recordingLimiter{}
	w.limit = lim
	page := changes(t, w, manyItems(250, 10, 1)...)
	ru, err := w.writePage(context.Background(), page, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(dst.Items()) != 250 {
		t.Fatalf("target holds %d items, want 250", len(dst.Items()))
	}
	reqs := dst.Requests()
	if len(reqs) != 4 { // 125 items per partition: 100 + 25 each
		t.Fatalf("%d bulk requests, want 4 (two per partition)", len(reqs))
	}
	for _, r := range reqs {
		part := dst.Partition(r[0].Key)
		for _, op := range r {
			if op.Type != migrate.BulkCreate || dst.Partition(op.Key) != part {
				t.Fatalf("a request mixes partitions or creates nothing: %+v", op)
			}
		}
	}
	s := w.stats.Snapshot()
	if s.Created != 250 || s.BulkRequests != 4 || s.WriteRequests != 250 || ru != s.TargetRU() || ru != 250*5.5 {
		t.Fatalf("stats %+v, page RU %v", s, ru)
	}
	// Each request reserved the sum of its creates' expected charges.
	sum := 0.0
	for _, e := range lim.expected {
		sum += e
	}
	if want := 250 * migrate.CreateCharge(len(page[0].Result.Item)); len(lim.expected) != 4 || sum < want*0.99 || sum > want*1.01 {
		t.Fatalf("expected charges %v (sum %.1f), want 4 summing to %.1f", lim.expected, sum, want)
	}
}

func TestBulkWriterNeverOverwritesSilently(t *testing.T) {
	w, dst, _ := testBulkWriter(t)
	ctx := context.Background()
	if _, err := w.writePage(ctx, changes(t, w, item("1", "eu", "a", 1), item("2", "eu", "a", 1), item("3", "us", "b", 1)), nil); err != nil {
		t.Fatal(err)
	}
	// A replay finds every item there as it is: read, compared, left.
	if _, err := w.writePage(ctx, changes(t, w, item("1", "eu", "a", 1), item("2", "eu", "a", 1), item("3", "us", "b", 1)), nil); err != nil {
		t.Fatal(err)
	}
	if s := w.stats.Snapshot(); s.Unchanged != 3 || s.Updated != 0 || dst.Calls()["replace"] != 0 {
		t.Fatalf("replay: %+v, calls %v", s, dst.Calls())
	}
	// A newer version replaces the copy with If-Match on what was read; a
	// different source item under the same id and new key is a collision.
	if _, err := w.writePage(ctx, changes(t, w, item("3", "us", "b", 2), item("1", "us", "a", 7)), nil); err != nil {
		t.Fatal(err)
	}
	got, _ := dst.Get(keyOf("b-x"), "3")
	kept, _ := dst.Get(keyOf("a-x"), "1")
	if !strings.Contains(string(got.Body), `"v":2`) || !strings.Contains(string(kept.Body), `"region":"eu"`) {
		t.Fatalf("update %s, collision victim %s", got.Body, kept.Body)
	}
	if k := deadKinds(t, w); len(k) != 1 || k["1"] != migrate.KindCollision {
		t.Fatalf("dead letters %v, want item 1 as a collision", k)
	}
	var replace migrate.BulkOp
	for _, r := range dst.Requests() {
		for _, op := range r {
			if op.Type == migrate.BulkReplace {
				replace = op
			}
		}
	}
	if replace.ID != "3" || replace.IfMatch == "" {
		t.Fatalf("the replace went without If-Match: %+v", replace)
	}
}

// Per-operation failures inside one bulk response: each item is handled
// by its own answer while the others are written.
func TestBulkWriterHandlesEachOperationsAnswer(t *testing.T) {
	w, dst, clk := testBulkWriter(t)
	var mu sync.Mutex
	fired := map[string]int{}
	moved := false
	dst.Partition = func(k migrate.Key) string {
		mu.Lock()
		defer mu.Unlock()
		if moved && k.String() == `["t1-x"]` {
			return "child"
		}
		return "0"
	}
	once := func(id string) bool { fired[id]++; return fired[id] == 1 }
	dst.Intercept(func(op string, key migrate.Key, id string) error {
		switch {
		case id == "i001" && once(id):
			return &migrate.RequestError{Op: op, Status: http.StatusTooManyRequests, SubStatus: 3200, RetryAfter: 300 * time.Millisecond}
		case id == "i002" && once(id):
			return &migrate.RequestError{Op: op, Status: http.StatusServiceUnavailable}
		case id == "i003" && once(id):
			return &migrate.RequestError{Op: op, Status: http.StatusRequestEntityTooLarge, SubStatus: migratetest.SubStatusResponseTooLarge}
		case id == "i011" && once(id):
			mu.Lock()
			moved = true
			mu.Unlock()
			return &migrate.RequestError{Op: op, Status: http.StatusGone, SubStatus: 1002}
		case id == "i004":
			return &migrate.RequestError{Op: op, Status: http.StatusRequestEntityTooLarge}
		case id == "i005":
			return &migrate.RequestError{Op: op, Status: http.StatusBadRequest, Message: "One of the specified inputs is invalid"}
		}
		return nil
	})
	if _, err := w.writePage(context.Background(), changes(t, w, manyItems(20, 10, 1)...), nil); err != nil {
		t.Fatal(err)
	}
	if k := deadKinds(t, w); len(k) != 2 || k["i004"] != migrate.KindTooLarge || k["i005"] != migrate.KindRejected {
		t.Fatalf("dead letters %v, want i004 too large and i005 rejected", k)
	}
	if len(dst.Items()) != 18 {
		t.Fatalf("target holds %d items, want the 18 others", len(dst.Items()))
	}
	reqs := dst.Requests()
	if len(reqs[0]) != 20 {
		t.Fatalf("first request of %d operations, want the page's 20", len(reqs[0]))
	}
	resent := map[string]int{}
	for _, r := range reqs[1:] {
		for _, op := range r {
			resent[idOf(op.Body)]++
		}
		if len(r) == 1 && idOf(r[0].Body) == "i011" && dst.Partition(r[0].Key) != "child" {
			t.Fatal("the operation answered 410 was not routed again")
		}
	}
	for _, id := range []string{"i001", "i002", "i003", "i011"} {
		if resent[id] != 1 {
			t.Fatalf("%s sent again %d times, want once; resent %v", id, resent[id], resent)
		}
	}
	if len(resent) != 4 || dst.Routes() != 2 {
		t.Fatalf("resent %v, routes %d: want only the four resendable operations again and one re-route", resent, dst.Routes())
	}
	waited := false
	for _, d := range clk.Slept() {
		waited = waited || (d >= 300*time.Millisecond && d <= 330*time.Millisecond)
	}
	if !waited {
		t.Fatalf("the throttled operation was resent without its retry-after: slept %v", clk.Slept())
	}
	if s := w.stats.Snapshot(); s.WritesThrottled != 1 || s.Throttled < 1 {
		t.Fatalf("stats %+v", s)
	}
}

// Whole-request answers: a 429 resends the request after its retry-after,
// a 410 routes every operation again, a 413 splits the request until the
// item at fault stands alone, which is dead-lettered.
func TestBulkWriterHandlesWholeRequestFailures(t *testing.T) {
	w, dst, _ := testBulkWriter(t)
	throttled, gone := false, false
	var mu sync.Mutex
	dst.BulkFail = func(partition string, ops []migrate.BulkOp) error {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case !throttled:
			throttled = true
			return &migrate.RequestError{Op: "bulk", Status: http.StatusTooManyRequests, RetryAfter: 50 * time.Millisecond}
		case !gone:
			gone = true
			return &migrate.RequestError{Op: "bulk", Status: http.StatusGone, SubStatus: 1002}
		}
		for _, op := range ops {
			if idOf(op.Body) == "i007" {
				return &migrate.RequestError{Op: "bulk", Status: http.StatusRequestEntityTooLarge}
			}
		}
		return nil
	}
	if _, err := w.writePage(context.Background(), changes(t, w, manyItems(16, 4, 1)...), nil); err != nil {
		t.Fatal(err)
	}
	if k := deadKinds(t, w); len(k) != 1 || k["i007"] != migrate.KindTooLarge {
		t.Fatalf("dead letters %v, want only i007", k)
	}
	if len(dst.Items()) != 15 || dst.Routes() != 2 {
		t.Fatalf("target holds %d items after %d routings; want 15 and a second routing after the 410", len(dst.Items()), dst.Routes())
	}
	// 16 (429), 16 (410), 16 (413), 8+8, 4+4, 2+2, 1+1: the half without
	// i007 of each split is written.
	var sizes []int
	for _, r := range dst.Requests() {
		sizes = append(sizes, len(r))
	}
	sort.Ints(sizes)
	if fmt.Sprint(sizes) != "[1 1 2 2 4 4 8 8 16 16 16]" {
		t.Fatalf("requests of %v operations, want 16 three times, then halves down to the item at fault", sizes)
	}
}

func TestBulkWriterStartsOverWhenTheExistingItemChanges(t *testing.T) {
	w, dst, _ := testBulkWriter(t)
	ctx := context.Background()
	if _, err := w.writePage(ctx, changes(t, w, item("1", "eu", "a", 1)), nil); err != nil {
		t.Fatal(err)
	}
	raced := false
	dst.Intercept(func(op string, key migrate.Key, id string) error {
		if op == "replace" && !raced {
			raced = true
			return &migrate.RequestError{Op: op, Status: http.StatusPreconditionFailed}
		}
		return nil
	})
	if _, err := w.writePage(ctx, changes(t, w, item("1", "eu", "a", 2)), nil); err != nil {
		t.Fatal(err)
	}
	got, _ := dst.Get(keyOf("a-x"), "1")
	if !raced || !strings.Contains(string(got.Body), `"v":2`) || dst.Calls()["read"] != 2 {
		t.Fatalf("want a second create and read after the 412 and the new version written; body %s calls %v", got.Body, dst.Calls())
	}

	// An item that keeps changing stops the page after the bounded rounds.
	dst.Intercept(func(op string, key migrate.Key, id string) error {
		if op == "replace" {
			return &migrate.RequestError{Op: op, Status: http.StatusPreconditionFailed}
		}
		return nil
	})
	if _, err := w.writePage(ctx, changes(t, w, item("1", "eu", "a", 3)), nil); err == nil || !strings.Contains(err.Error(), "kept changing") {
		t.Fatalf("want the page to stop on an item that keeps changing, got %v", err)
	}
}

// Two versions of one item in a page are written one after the other, the
// later one last.
func TestBulkWriterWritesTwoVersionsInOrder(t *testing.T) {
	w, dst, _ := testBulkWriter(t)
	if _, err := w.writePage(context.Background(), changes(t, w, item("1", "eu", "a", 1), item("2", "eu", "a", 1), item("1", "eu", "a", 2)), nil); err != nil {
		t.Fatal(err)
	}
	got, _ := dst.Get(keyOf("a-x"), "1")
	if !strings.Contains(string(got.Body), `"v":2`) {
		t.Fatalf("target holds %s, want the later version", got.Body)
	}
	if reqs := dst.Requests(); len(reqs[0]) != 2 {
		t.Fatalf("first request of %d operations, want the first version of each item", len(reqs[0]))
	}
}

// A page with nothing to write (each of its items dead-lettered before
// it reached the writer) is written at once, with no request.
func TestBulkWriterWritesAnEmptyPage(t *testing.T) {
	w, dst, _ := testBulkWriter(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := w.writePage(ctx, nil, nil); err != nil {
		t.Fatalf("empty page: %v", err)
	}
	if n := len(dst.Requests()); n != 0 {
		t.Fatalf("%d requests for an empty page, want none", n)
	}
}

// Under an RU cap, no request is expected to cost more than the cap's
// RequestLimit.
func TestBulkWriterSizesRequestsToTheRUCap(t *testing.T) {
	w, dst, clk := testBulkWriter(t)
	w.ruCap = pacing.NewRUCap(4000, clk) // 50 RU a request: 9 creates of 5.5
	if _, err := w.writePage(context.Background(), changes(t, w, manyItems(30, 3, 1)...), nil); err != nil {
		t.Fatal(err)
	}
	sizes := []int{}
	for _, r := range dst.Requests() {
		sizes = append(sizes, len(r))
	}
	sort.Ints(sizes)
	if fmt.Sprint(sizes) != "[3 9 9 9]" || len(dst.Items()) != 30 {
		t.Fatalf("request sizes %v, %d items; want 9, 9, 9 and 3, and every item", sizes, len(dst.Items()))
	}
}

// A failure the page cannot get past stops it, naming the item.
func TestBulkWriterStopsOnAFailureItCannotHandle(t *testing.T) {
	w, dst, _ := testBulkWriter(t)
	dst.Intercept(func(op string, key migrate.Key, id string) error {
		if id == "i002" {
			return &migrate.RequestError{Op: op, Status: http.StatusForbidden}
		}
		return nil
	})
	_, err := w.writePage(context.Background(), changes(t, w, manyItems(5, 5, 1)...), nil)
	if !errors.Is(err, migrate.ErrUnauthorized) || !strings.Contains(err.Error(), `"i002"`) {
		t.Fatalf("want the 403 naming the item, got %v", err)
	}
}

// Pages written at once share bulk requests: while a partition's request
// is out, the items of other pages queue behind it and leave together.
func TestBulkWriterGathersPagesIntoRequests(t *testing.T) {
	w, dst, _ := testBulkWriter(t)
	release := make(chan struct{})
	first := true
	var mu sync.Mutex
	dst.BulkFail = func(string, []migrate.BulkOp) error {
		mu.Lock()
		block := first
		first = false
		mu.Unlock()
		if block {
			<-release
		}
		return nil
	}
	ctx := context.Background()
	errs := make(chan error, 3)
	write := func(items ...string) {
		_, err := w.writePage(ctx, changes(t, w, items...), nil)
		errs <- err
	}
	go write(item("x", "eu", "x", 1))
	waitUntil(t, func() bool { return len(dst.Requests()) == 1 })
	go write(item("a1", "eu", "a", 1), item("a2", "eu", "a", 1))
	go write(item("b1", "us", "b", 1), item("b2", "us", "b", 1))
	waitUntil(t, func() bool {
		w.queue.mu.Lock()
		defer w.queue.mu.Unlock()
		return len(w.queue.parts["0"].items) == 4
	})
	close(release)
	for range 3 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	reqs := dst.Requests()
	if len(reqs) != 2 || len(reqs[1]) != 4 || len(dst.Items()) != 5 {
		t.Fatalf("requests %v, %d items: want the two pages' four items in one request after the first", reqs, len(dst.Items()))
	}
}

// waitUntil polls cond for up to 10 seconds.
func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(time.Millisecond)
	}
}

// idOf reads an item body's id.
func idOf(body []byte) string {
	var d struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(body, &d)
	return d.ID
}

// A target with a unique key policy (--unique-keys copy) answers a
// create inside a bulk request 409 although no item holds its id and key
// (a read finds none), and a replace 409: both items are dead-lettered as
// unique-key, as on the item-by-item path, and the page goes on.
func TestBulkWriterDeadLettersUniqueKeyViolations(t *testing.T) {
	w, dst, _ := testBulkWriter(t)
	ctx := context.Background()
	conflict := &migrate.RequestError{Op: "write", Status: http.StatusConflict, Message: "Unique index constraint violation."}
	dst.Intercept(func(op string, key migrate.Key, id string) error {
		if id == "dup" && op == migratetest.OpCreate || id == "upd" && op == migratetest.OpReplace {
			return conflict
		}
		return nil
	})
	if _, err := w.writePage(ctx, changes(t, w, item("upd", "eu", "u", 1)), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := w.writePage(ctx, changes(t, w, item("dup", "eu", "a", 1), item("upd", "eu", "u", 2), item("ok", "eu", "c", 1)), nil); err != nil {
		t.Fatalf("a unique key violation stopped the page: %v", err)
	}
	if k := deadKinds(t, w); k["dup"] != migrate.KindUniqueKey || k["upd"] != migrate.KindUniqueKey || len(k) != 2 {
		t.Fatalf("dead letters %v, want dup and upd as unique-key", k)
	}
	if _, ok := dst.Get(keyOf("c-x"), "ok"); !ok {
		t.Fatal("the page's other item was not written")
	}
}

// A worker writes a range only within half a TTL of its lease's last
// renewal (lease.Hold.Fence). A bulk request carries the items of pages of
// several ranges, and waits for each page's fence in turn: here page B's
// passes at 1.95s (writable until 2s), then page A's waits for A's renewal
// at 3.85s. The request leaves only once every fence passes at once, so
// B's items never leave past B's fence; B, never renewed, is lost at its
// expiry and its page fails, while A's items go in another request.
// Before, the request left at 3.85s with B's items, 150ms before B's lease
// expired and another worker could take it.
func TestABulkRequestLeavesOnlyWhenEveryPagesFencePasses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		w, dst, _ := testBulkWriter(t)
		store, err := lease.OpenFile(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { store.Close() })
		const ttl = 4 * time.Second
		lr := lease.Leaser{Store: store, Owner: "w1", TTL: ttl}
		begun := time.Now()
		hold := func(id, min, max string, sent time.Time) *lease.Hold {
			l, err := store.Create(ctx, lease.Lease{ID: id, Range: lease.Range{Min: min, Max: max}, Owner: "w1", TTL: ttl})
			if err != nil {
				t.Fatal(err)
			}
			return lr.Hold(l, sent)
		}
		holdB := hold("b", "", "80", begun)                              // writable until 2s, expires at 4s
		holdA := hold("a", "80", "FF", begun.Add(-100*time.Millisecond)) // writable until 1.9s, expires at 3.9s
		go func() {
			time.Sleep(3850 * time.Millisecond)
			if err := holdA.Renew(ctx); err != nil { // the lease store answers A's renewal just in time
				t.Error(err)
			}
		}()
		go func() {
			time.Sleep(holdB.ExpiresAt().Sub(time.Now()))
			holdB.Expire() // as a range loop does at its hold's expiry: B's renewals never came
		}()

		release := make(chan struct{})
		var mu sync.Mutex
		first := true
		sentAt := map[string]time.Time{}
		dst.BulkFail = func(_ string, ops []migrate.BulkOp) error {
			mu.Lock()
			block := first
			first = false
			for _, op := range ops {
				sentAt[string(op.Body)] = time.Now() // its last send
			}
			mu.Unlock()
			if block {
				<-release // the partition's request in flight, while B's and A's pages queue behind it
			}
			return nil
		}
		write := func(it string, fence func(context.Context) error) chan error {
			errc := make(chan error, 1)
			go func() {
				_, err := w.writePage(ctx, changes(t, w, it), fence)
				errc <- err
			}()
			synctest.Wait()
			return errc
		}
		errX := write(item("x", "eu", "x", 1), nil)
		errB := write(item("b1", "eu", "a", 1), holdB.Fence)
		errA := write(item("a1", "us", "a", 1), holdA.Fence)
		time.Sleep(1950*time.Millisecond - time.Since(begun))
		close(release)
		if err := <-errX; err != nil {
			t.Fatal(err)
		}
		if err := <-errA; err != nil {
			t.Fatalf("A's page: %v", err)
		}
		if err := <-errB; !errors.Is(err, lease.ErrLeaseLost) {
			t.Fatalf("B's page: %v, want its lease lost at its expiry", err)
		}
		until := holdB.WritableUntil()
		sentA := false
		for body, at := range sentAt {
			if strings.Contains(body, `"b1"`) && !at.Before(until) {
				t.Fatalf("B's item left at %v, past B's fence at %v (its lease expires at %v): requests %v",
					at.Sub(begun), until.Sub(begun), holdB.ExpiresAt().Sub(begun), len(dst.Requests()))
			}
			sentA = sentA || strings.Contains(body, `"a1"`)
		}
		if !sentA {
			t.Fatal("A's item was never sent")
		}
	})
}
