package lease_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rekey-dev/rekey/lease"
	"github.com/rekey-dev/rekey/lease/leasetest"
)

func newCosmos(t *testing.T, docs lease.Documents, prefix string) *lease.CosmosStore {
	t.Helper()
	s, err := lease.NewCosmos(docs, prefix)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// The processor's naming: the meta is "<prefix>.meta" and a lease
// "<prefix>..<id>", and each body carries its id.
func TestCosmosDocumentIDs(t *testing.T) {
	ctx := context.Background()
	docs := leasetest.NewMemDocuments()
	s := newCosmos(t, docs, "orders-rekey")
	if _, err := s.Init(ctx, lease.Meta{Version: 1}); err != nil {
		t.Fatal(err)
	}
	id := lease.TokenFor(lease.Range{Min: "", Max: "FF"})
	if _, err := s.Create(ctx, lease.Lease{ID: id, Range: lease.Range{Max: "FF"}}); err != nil {
		t.Fatal(err)
	}
	for _, docID := range []string{"orders-rekey.meta", "orders-rekey..-FF"} {
		body, ok := docs.Raw(docID)
		if !ok {
			t.Fatalf("no document %s", docID)
		}
		if got := jsonObject(t, body)["id"]; got != docID {
			t.Errorf("document %s has body id %v", docID, got)
		}
	}
	body, _ := docs.Raw("orders-rekey..-FF")
	if obj := jsonObject(t, body); obj["_etag"] != nil || obj["LeaseToken"] != "-FF" || obj["version"] != 1.0 {
		t.Errorf("lease document %s: want no _etag, LeaseToken -FF, version 1", body)
	}
}

// Documents that are not rekey leases of this prefix are not listed; a
// document of this prefix that does not decode is an error naming it.
func TestCosmosListSkipsForeignDocuments(t *testing.T) {
	ctx := context.Background()
	docs := leasetest.NewMemDocuments()
	s := newCosmos(t, docs, "app")
	if _, err := s.Create(ctx, lease.Lease{ID: "-FF", Range: lease.Range{Max: "FF"}}); err != nil {
		t.Fatal(err)
	}
	// The processor's own documents, another prefix's, a longer prefix's.
	docs.Put("app.info", []byte(`{"id":"app.info"}`))
	docs.Put("app.lock", []byte(`{"id":"app.lock","ttl":60}`))
	docs.Put("app...x", []byte(`{"id":"app...x"}`))
	docs.Put("other..-FF", []byte(`{"id":"other..-FF"}`))
	list, err := s.List(ctx)
	if err != nil || len(list) != 1 || list[0].ID != "-FF" {
		t.Fatalf("List = %+v, %v; want lease -FF only", list, err)
	}

	cases := map[string]string{
		"app..torn":     `{"id":"app..torn","vers`,
		"app..mismatch": `{"id":"app..mismatch","version":1,"LeaseToken":"other","FeedRange":{"Range":{"min":"","max":"FF"}}}`,
		"app..body-id":  `{"id":"app..x","version":1,"LeaseToken":"body-id","FeedRange":{"Range":{"min":"","max":"FF"}}}`,
	}
	for id, body := range cases {
		t.Run(id, func(t *testing.T) {
			docs := leasetest.NewMemDocuments()
			docs.Put(id, []byte(body))
			_, err := newCosmos(t, docs, "app").List(ctx)
			if !errors.Is(err, lease.ErrCorrupt) || !strings.Contains(err.Error(), id) {
				t.Fatalf("List = %v, want ErrCorrupt naming %s", err, id)
			}
		})
	}
}

// A lease written by the change feed processor under our prefix reads, and
// can be taken over.
func TestCosmosReadsProcessorLease(t *testing.T) {
	ctx := context.Background()
	docs := leasetest.NewMemDocuments()
	docs.Put("app..-FF", []byte(`{"id":"app..-FF","version":1,"LeaseToken":"-FF",
		"FeedRange":{"Range":{"min":"","max":"FF"}},"Owner":null,"ContinuationToken":"\"9\"",
		"timestamp":null,"properties":{},"partitionKey":"x","Mode":"IncrementalFeed"}`))
	s := newCosmos(t, docs, "app")
	taken, err := lease.Leaser{Store: s, Owner: "w", TTL: time.Minute}.Acquire(ctx)
	if err != nil || len(taken) != 1 || taken[0].Continuation != `"9"` || taken[0].Owner != "w" {
		t.Fatalf("Acquire = %+v, %v", taken, err)
	}
}

func TestNewCosmosRefusesBadPrefixes(t *testing.T) {
	for _, p := range []string{"", "app.", "a/b", `a\b`, "a?b", "a#b", strings.Repeat("p", 41)} {
		if _, err := lease.NewCosmos(leasetest.NewMemDocuments(), p); err == nil {
			t.Errorf("NewCosmos accepted prefix %q", p)
		}
	}
	if _, err := lease.NewCosmos(nil, "app"); err == nil {
		t.Error("NewCosmos accepted nil documents")
	}
}

// Errors of the container that are not a lost race pass through, wrapped.
func TestCosmosPassesFaultsThrough(t *testing.T) {
	ctx := context.Background()
	docs := leasetest.NewMemDocuments()
	s := newCosmos(t, docs, "app")
	l, err := s.Create(ctx, lease.Lease{ID: "a", Range: lease.Range{Max: "FF"}})
	if err != nil {
		t.Fatal(err)
	}
	unavailable := errors.New("503 service unavailable")
	docs.Fail = func(op, id string) error { return unavailable }
	_, err = s.Update(ctx, l)
	if !errors.Is(err, unavailable) || errors.Is(err, lease.ErrLeaseLost) {
		t.Fatalf("Update during an outage = %v, want the 503, not ErrLeaseLost", err)
	}
	if _, err := s.List(ctx); !errors.Is(err, unavailable) {
		t.Fatalf("List during an outage = %v", err)
	}
	if _, err := s.Init(ctx, lease.Meta{}); !errors.Is(err, unavailable) {
		t.Fatalf("Init during an outage = %v", err)
	}
}

// Workers racing to Init all get the winner's meta.
func TestCosmosInitRace(t *testing.T) {
	ctx := context.Background()
	docs := leasetest.NewMemDocuments()
	const n = 8
	got := make([]lease.Meta, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m, err := newCosmos(t, docs, "app").Init(ctx, lease.Meta{Version: 1, Source: string(rune('a' + i))})
			if err != nil {
				t.Error(err)
			}
			got[i] = m
		}()
	}
	wg.Wait()
	for i := range got {
		if !reflect.DeepEqual(got[i], got[0]) {
			t.Fatalf("worker %d got %+v, worker 0 %+v", i, got[i], got[0])
		}
	}
}

// UpdateMeta wins over a concurrent change by re-reading.
func TestCosmosUpdateMetaRetries(t *testing.T) {
	ctx := context.Background()
	docs := leasetest.NewMemDocuments()
	s := newCosmos(t, docs, "app")
	if _, err := s.Init(ctx, lease.Meta{Version: 1, Source: "s"}); err != nil {
		t.Fatal(err)
	}
	interfered := 0
	docs.Fail = func(op, id string) error {
		if op == "replace" && interfered < 2 {
			interfered++
			docs.Put(id, []byte(`{"id":"app.meta","version":1,"source":"someone else"}`))
		}
		return nil
	}
	want := lease.Meta{Version: 1, Source: "s", StartFrom: "2025-01-01T00:00:00Z"}
	if err := s.UpdateMeta(ctx, want); err != nil {
		t.Fatal(err)
	}
	if got, err := s.ReadMeta(ctx); err != nil || !reflect.DeepEqual(got, want) || interfered != 2 {
		t.Fatalf("ReadMeta = %+v, %v after %d interferences; want %+v", got, err, interfered, want)
	}
}
