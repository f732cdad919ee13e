package cosmos

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/rekey-dev/rekey/lease"
	"github.com/rekey-dev/rekey/lease/leasetest"
	"github.com/rekey-dev/rekey/migrate"
)

// The lease package's conformance suites, against the emulator: the
// Documents contract, and the Cosmos store running on these documents.
func TestLeaseDocumentsConformance(t *testing.T) {
	e := newEnv(t)
	if err := e.client.EnsureLeaseContainer(tctx(t), "state", "leases"); err != nil {
		t.Fatal(err)
	}
	leasetest.RunDocuments(t, e.client.LeaseDocuments("state", "leases"))
}

func TestCosmosStoreOnLeaseDocuments(t *testing.T) {
	e := newEnv(t)
	if err := e.client.EnsureLeaseContainer(tctx(t), "state", "leases"); err != nil {
		t.Fatal(err)
	}
	docs := e.client.LeaseDocuments("state", "leases")
	n := 0
	leasetest.RunStore(t, func(t *testing.T, clock *leasetest.Clock) lease.Store {
		n++ // a fresh, empty store per subtest: its own prefix
		s, err := lease.NewCosmos(docs, fmt.Sprintf("m%d", n), lease.WithClock(clock.Now))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestEnsureLeaseContainer(t *testing.T) {
	e := newEnv(t)
	ctx := tctx(t)
	for range 2 { // idempotent
		if err := e.client.EnsureLeaseContainer(ctx, "state", "leases"); err != nil {
			t.Fatalf("ensure: %v", err)
		}
	}
	def, err := e.client.ContainerDefinition(ctx, "state", "leases")
	if err != nil || len(def.Paths) != 1 || def.Paths[0] != LeaseKeyPath {
		t.Fatalf("lease container definition %+v, %v", def, err)
	}
	e.container(t, "wrongkey", 400, "/pk")
	if err := e.client.EnsureLeaseContainer(ctx, testDB, "wrongkey"); err == nil || !strings.Contains(err.Error(), "not /id") {
		t.Fatalf("ensure on a container keyed by /pk = %v, want a refusal", err)
	}
}

func TestLeaseDocumentsCompareAndSwap(t *testing.T) {
	e := newEnv(t)
	ctx := tctx(t)
	if err := e.client.EnsureLeaseContainer(ctx, "state", "leases"); err != nil {
		t.Fatal(err)
	}
	var docs lease.Documents = e.client.LeaseDocuments("state", "leases")

	etag1, err := docs.Create(ctx, "m.lease.0", []byte(`{"Owner":"a"}`))
	if err != nil || etag1 == "" {
		t.Fatalf("create = %q, %v", etag1, err)
	}
	if _, err := docs.Create(ctx, "m.lease.0", []byte(`{"Owner":"b"}`)); !errors.Is(err, lease.ErrDocExists) {
		t.Fatalf("second create = %v, want ErrDocExists", err)
	}
	got, err := docs.Read(ctx, "m.lease.0")
	if err != nil || got.ID != "m.lease.0" || got.ETag != etag1 || fields(t, got.Body)["Owner"] != "a" || fields(t, got.Body)["id"] != "m.lease.0" {
		t.Fatalf("read = %+v, %v", got, err)
	}

	etag2, err := docs.Replace(ctx, "m.lease.0", []byte(`{"id":"m.lease.0","Owner":"b"}`), etag1)
	if err != nil || etag2 == etag1 {
		t.Fatalf("replace = %q, %v; want a new ETag", etag2, err)
	}
	if _, err := docs.Replace(ctx, "m.lease.0", []byte(`{"Owner":"c"}`), etag1); !errors.Is(err, lease.ErrDocChanged) {
		t.Fatalf("replace with a stale ETag = %v, want ErrDocChanged", err)
	}
	var re *migrate.RequestError
	if err := docs.Delete(ctx, "m.lease.0", etag1); !errors.Is(err, lease.ErrDocChanged) || !errors.As(err, &re) {
		t.Fatalf("delete with a stale ETag = %v, want ErrDocChanged wrapping the RequestError", err)
	}
	if _, err := docs.Replace(ctx, "m.lease.0", []byte(`{"id":"other"}`), etag2); err == nil {
		t.Fatal("replace with another id in the body succeeded")
	}
	if err := docs.Delete(ctx, "m.lease.0", etag2); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := docs.Read(ctx, "m.lease.0"); !errors.Is(err, lease.ErrDocNotFound) {
		t.Fatalf("read after delete = %v, want ErrDocNotFound", err)
	}
	if _, err := docs.Replace(ctx, "m.lease.0", []byte(`{}`), etag2); !errors.Is(err, lease.ErrDocNotFound) {
		t.Fatalf("replace of a deleted document = %v, want ErrDocNotFound", err)
	}
	if err := docs.Delete(ctx, "m.lease.0", ""); !errors.Is(err, lease.ErrDocNotFound) {
		t.Fatalf("delete of a deleted document = %v, want ErrDocNotFound", err)
	}
}

// Two workers race for one lease: exactly one compare-and-swap wins.
func TestLeaseDocumentsRace(t *testing.T) {
	e := newEnv(t)
	ctx := tctx(t)
	if err := e.client.EnsureLeaseContainer(ctx, "state", "leases"); err != nil {
		t.Fatal(err)
	}
	docs := e.client.LeaseDocuments("state", "leases")
	etag, err := docs.Create(ctx, "l", []byte(`{"Owner":""}`))
	if err != nil {
		t.Fatal(err)
	}
	const workers = 8
	var wg sync.WaitGroup
	results := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := docs.Replace(ctx, "l", []byte(fmt.Sprintf(`{"Owner":"w%d"}`, w)), etag)
			results <- err
		}()
	}
	wg.Wait()
	close(results)
	won := 0
	for err := range results {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, lease.ErrDocChanged):
			t.Errorf("a losing worker got %v, want ErrDocChanged", err)
		}
	}
	if won != 1 {
		t.Errorf("%d workers won the lease, want 1", won)
	}
}

func TestLeaseDocumentsList(t *testing.T) {
	e := newEnv(t)
	ctx := tctx(t)
	if err := e.client.EnsureLeaseContainer(ctx, "state", "leases"); err != nil {
		t.Fatal(err)
	}
	docs := e.client.LeaseDocuments("state", "leases")
	for _, id := range []string{"m2.lease.1", "m1.lease.2", "m1.meta", "m1.lease.0", "m1.lease/odd"} {
		if _, err := docs.Create(ctx, id, []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	got, err := docs.List(ctx, "m1.lease.")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, d := range got {
		if d.ETag == "" || fields(t, d.Body)["id"] != d.ID {
			t.Errorf("listed %+v without its ETag or id", d)
		}
		ids = append(ids, d.ID)
	}
	if fmt.Sprint(ids) != "[m1.lease.0 m1.lease.2]" {
		t.Errorf("list = %v, want [m1.lease.0 m1.lease.2]", ids)
	}
	// An id the gateway cannot address is still read and written.
	odd, err := docs.Read(ctx, "m1.lease/odd")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := docs.Replace(ctx, "m1.lease/odd", []byte(`{"x":1}`), odd.ETag); err != nil {
		t.Fatal(err)
	}
	if none, err := docs.List(ctx, "zzz"); err != nil || len(none) != 0 {
		t.Errorf("list of an unused prefix = %v, %v", none, err)
	}
}

func TestWithID(t *testing.T) {
	tests := []struct{ body, want string }{
		{`{}`, `{"id":"x"}`},
		{` {"a":1}`, `{"id":"x","a":1}`},
		{`{"id":"x","a":1}`, `{"id":"x","a":1}`},
		{`{"id":"y"}`, ""},
		{`{"id":7}`, ""},
		{`[1]`, ""},
		{`null`, ""},
	}
	for _, tt := range tests {
		got, err := withID([]byte(tt.body), "x")
		if tt.want == "" {
			if err == nil {
				t.Errorf("withID(%s) = %s, want an error", tt.body, got)
			}
			continue
		}
		if err != nil || string(got) != tt.want {
			t.Errorf("withID(%s) = %s, %v; want %s", tt.body, got, err, tt.want)
		}
	}
}

// The state's requests go out at high priority from a low-priority client,
// so that the migration's own writes are throttled before its renewals;
// the client's other requests keep its priority.
func TestLeaseDocumentsGoOutAtHighPriority(t *testing.T) {
	e := newEnv(t)
	c, rec := recordingClient(t, e.srv, nil, func(cfg *Config) { cfg.Priority = "low" })
	ctx := tctx(t)
	if err := c.EnsureLeaseContainer(ctx, "rekey", "leases"); err != nil {
		t.Fatal(err)
	}
	docs := c.LeaseDocuments("rekey", "leases")
	if _, err := docs.Create(ctx, "a", []byte(`{"id":"a"}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := docs.List(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	data := e.container(t, "data", 400, "/pk")
	n := len(rec.seen())
	if _, err := c.Container(testDB, data.id).Create(ctx, key("p"), itemBody(t, "x", "p", 1)); err != nil {
		t.Fatal(err)
	}
	seen := rec.seen()
	for _, path := range []string{"POST /dbs/rekey/colls/leases/docs"} {
		h, ok := rec.last(path)
		if !ok {
			t.Fatalf("no request %s", path)
		}
		if got := h.Get("x-ms-cosmos-priority-level"); got != "High" {
			t.Errorf("%s went out at priority %q, want High", path, got)
		}
	}
	if got := seen[len(seen)-1].Get("x-ms-cosmos-priority-level"); got != "Low" || len(seen) == n {
		t.Errorf("the client's own item write went out at priority %q, want Low", got)
	}
}

// The client sums what its lease documents spend (a failed request with
// the charge its answer carries): the metrics' RU of the state.
func TestLeaseDocumentsCountTheirRU(t *testing.T) {
	e := newEnv(t)
	ctx := tctx(t)
	if err := e.client.EnsureLeaseContainer(ctx, "state", "leases"); err != nil {
		t.Fatal(err)
	}
	docs := e.client.LeaseDocuments("state", "leases")
	before := e.client.LeaseRU()
	if _, err := docs.Create(ctx, "a", []byte(`{"v":1}`)); err != nil {
		t.Fatal(err)
	}
	created := e.client.LeaseRU()
	if created <= before {
		t.Fatalf("LeaseRU %v after a create, was %v", created, before)
	}
	if _, err := docs.Create(ctx, "a", []byte(`{"v":1}`)); !errors.Is(err, lease.ErrDocExists) {
		t.Fatalf("second create: %v", err)
	}
	conflict := e.client.LeaseRU()
	if _, err := e.client.LeaseDocuments("state", "leases").List(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if listed := e.client.LeaseRU(); conflict < created || listed <= conflict {
		t.Errorf("LeaseRU: %v after a create, %v after a conflict, %v after a list from a second LeaseDocuments; want it never to fall and the list to count", created, conflict, listed)
	}
}
