package cosmos

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/rekey-dev/rekey/lease"
)

// Scan and ScanIDs list the documents of one prefix across pages (more
// documents than a page holds), skipping other prefixes, and stop at the
// callback's error.
func TestLeaseDocumentsScan(t *testing.T) {
	e := newEnv(t)
	ctx := tctx(t)
	if err := e.client.EnsureLeaseContainer(ctx, "state", "leases"); err != nil {
		t.Fatal(err)
	}
	docs := e.client.LeaseDocuments("state", "leases")
	var want []string
	for i := range 3*scanPageSize + 5 {
		id := fmt.Sprintf("m.dead..%03d", i)
		want = append(want, id)
		if _, err := docs.Create(ctx, id, []byte(fmt.Sprintf(`{"n":%d}`, i))); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := docs.Create(ctx, "other.dead..x", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	var got, gotIDs []string
	err := docs.Scan(ctx, "m.dead..", func(d lease.Doc) error {
		if d.ETag == "" || len(d.Body) == 0 {
			t.Errorf("document %s without ETag or body", d.ID)
		}
		got = append(got, d.ID)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := docs.ScanIDs(ctx, "m.dead..", func(id string) error { gotIDs = append(gotIDs, id); return nil }); err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	slices.Sort(gotIDs)
	if !slices.Equal(got, want) || !slices.Equal(gotIDs, want) {
		t.Fatalf("Scan saw %d documents, ScanIDs %d, want %d", len(got), len(gotIDs), len(want))
	}
	stop := errors.New("stop")
	n := 0
	if err := docs.Scan(ctx, "m.dead..", func(lease.Doc) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
		t.Fatalf("Scan after the callback's error: %v after %d calls", err, n)
	}
}
