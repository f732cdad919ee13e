package deadletter

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rekey-dev/rekey/lease/leasetest"
	"github.com/rekey-dev/rekey/migrate"
)

// Both dead-letter stores keep the latest failure of each item and forget it
// once resolved.
func TestDeadLetterStores(t *testing.T) {
	file, err := OpenFile(filepath.Join(t.TempDir(), "dl.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	docs, err := OpenDocuments(leasetest.NewMemDocuments(), "rekey.a.b.c.d", "cosmos://db/leases")
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]migrate.DeadLetterStore{"file": file, "documents": docs} {
		t.Run(name, func(t *testing.T) {
			k := json.RawMessage(`["eu"]`)
			must := func(err error) {
				t.Helper()
				if err != nil {
					t.Fatal(err)
				}
			}
			must(s.Add(migrate.DeadLetter{Time: time.Unix(1, 0), SourceID: "a", SourceKey: k, Kind: "missing-field", Reason: "first"}))
			must(s.Add(migrate.DeadLetter{Time: time.Unix(2, 0), SourceID: "a", SourceKey: k, Kind: "missing-field", Reason: "again"}))
			must(s.Add(migrate.DeadLetter{Time: time.Unix(3, 0), SourceID: "b", SourceKey: k, Kind: migrate.KindCollision, Reason: "b"}))
			must(s.Resolve("never-failed", k))
			must(s.Sync())
			l, err := s.List()
			n, cerr := s.Count()
			if err != nil || cerr != nil || len(l) != 2 || l[0].Reason != "again" || n != 2 {
				t.Fatalf("list %+v %v, count %d %v", l, err, n, cerr)
			}
			must(s.Resolve("a", k))
			must(s.Sync())
			if l, _ := s.List(); len(l) != 1 || l[0].SourceID != "b" {
				t.Fatalf("after resolving a: %+v", l)
			}
		})
	}
}

// The documents store reads ids only when it opens and counts, never the
// whole listing, and reports what it cannot read instead of a count of 0.
func TestDocDeadLettersErrorsAndBounds(t *testing.T) {
	docs := leasetest.NewMemDocuments()
	docs.Fail = func(op, id string) error {
		if op == "list" {
			return errors.New("List loads every body at once: not allowed")
		}
		return nil
	}
	s, err := OpenDocuments(docs, "rekey.x", "cosmos://db/leases")
	if err != nil {
		t.Fatal(err)
	}
	k := json.RawMessage(`["eu"]`)
	for i := range 5 {
		if err := s.Add(migrate.DeadLetter{Time: time.Unix(int64(i), 0), SourceID: fmt.Sprint(i), SourceKey: k, Kind: "missing-field"}); err != nil {
			t.Fatal(err)
		}
	}
	if got := deadIDs(t, s); strings.Count(got, ",") != 4 {
		t.Fatalf("dead items: %s", got)
	}

	// a document that is not a dead letter
	docs.Put("rekey.x.dead..bad", []byte(`{"id":"rekey.x.dead..bad","time":"yesterday"}`))
	var ce *CorruptError
	if err := s.Each(func(migrate.DeadLetter) error { return nil }); !errors.As(err, &ce) || !strings.Contains(err.Error(), "rekey.x.dead..bad") {
		t.Fatalf("Each over a corrupt document: %v", err)
	}

	// the container cannot be read
	down := errors.New("503 service unavailable")
	docs.Fail = func(op, id string) error { return down }
	if _, err := s.Count(); !errors.Is(err, down) || !strings.Contains(err.Error(), "cosmos://db/leases") {
		t.Fatalf("Count with the container down: %v", err)
	}
	if err := s.Each(func(migrate.DeadLetter) error { return nil }); !errors.Is(err, down) {
		t.Fatalf("Each with the container down: %v", err)
	}
	if _, err := OpenDocuments(docs, "rekey.x", "cosmos://db/leases"); !errors.Is(err, down) {
		t.Fatalf("open with the container down: %v", err)
	}
}

// A dead letter whose item is too large for a document (an item too large
// to copy) is kept without the item, its size in the reason, instead of
// failing the run on every retry: the in-memory lease container refuses
// documents over 2 MB, as the service does.
func TestDocDeadLetterOfATooLargeItem(t *testing.T) {
	docs := leasetest.NewMemDocuments()
	store, err := OpenDocuments(docs, "rekey.a.b.c.d", "cosmos://db/leases")
	if err != nil {
		t.Fatal(err)
	}
	big := json.RawMessage(`{"id":"big","pad":"` + strings.Repeat("x", 3<<20) + `"}`)
	k := json.RawMessage(`["eu"]`)
	if err := store.Add(migrate.DeadLetter{Time: time.Unix(1, 0), SourceID: "big", SourceKey: k, Kind: migrate.KindTooLarge, Reason: "413", Item: big}); err != nil {
		t.Fatal(err)
	}
	small := json.RawMessage(`{"id":"small"}`)
	if err := store.Add(migrate.DeadLetter{Time: time.Unix(1, 0), SourceID: "small", SourceKey: k, Kind: "missing-field", Reason: "no tenant", Item: small}); err != nil {
		t.Fatal(err)
	}
	l, err := store.List()
	if err != nil || len(l) != 2 {
		t.Fatalf("list: %+v %v", l, err)
	}
	for _, dl := range l {
		switch dl.SourceID {
		case "big":
			if dl.Item != nil || !strings.Contains(dl.Reason, fmt.Sprintf("%d bytes, is not kept", len(big))) || dl.Kind != migrate.KindTooLarge {
				t.Fatalf("too large: %+v", dl)
			}
		case "small":
			if string(dl.Item) != string(small) || dl.Reason != "no tenant" {
				t.Fatalf("small: %+v", dl)
			}
		}
	}
}
