package migrate

import (
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/rekey-dev/rekey/lease/leasetest"
)

// Both dead-letter stores keep the latest failure of each item and forget it
// once resolved.
func TestDeadLetterStores(t *testing.T) {
	file, err := OpenDeadLetters(filepath.Join(t.TempDir(), "dl.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	docs, err := OpenDocDeadLetters(leasetest.NewMemDocuments(), "rekey.a.b.c.d", "cosmos://db/leases")
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]DeadLetterStore{"file": file, "documents": docs} {
		t.Run(name, func(t *testing.T) {
			k := json.RawMessage(`["eu"]`)
			must := func(err error) {
				t.Helper()
				if err != nil {
					t.Fatal(err)
				}
			}
			must(s.Add(DeadLetter{Time: time.Unix(1, 0), SourceID: "a", SourceKey: k, Kind: "missing-field", Reason: "first"}))
			must(s.Add(DeadLetter{Time: time.Unix(2, 0), SourceID: "a", SourceKey: k, Kind: "missing-field", Reason: "again"}))
			must(s.Add(DeadLetter{Time: time.Unix(3, 0), SourceID: "b", SourceKey: k, Kind: KindCollision, Reason: "b"}))
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
