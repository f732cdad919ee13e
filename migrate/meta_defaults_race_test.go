package migrate

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rekey-dev/rekey/lease"
	"github.com/rekey-dev/rekey/lease/leasetest"
	"github.com/rekey-dev/rekey/transform"
)

// hookedDocs runs hook once, right after the first read of the meta
// document once armed: what another worker does between this worker's
// read of the state and its write.
type hookedDocs struct {
	lease.Documents
	armed bool
	hook  func()
}

func (d *hookedDocs) Read(ctx context.Context, id string) (lease.Doc, error) {
	doc, err := d.Documents.Read(ctx, id)
	if d.armed && strings.HasSuffix(id, ".meta") {
		d.armed = false
		d.hook()
	}
	return doc, err
}

// Two workers of one shared (cosmos://) migration with different defaults
// for one placeholder never both write: DefaultUses.Record checks and
// records in one compare-and-swap, so the one whose spec the state no
// longer records gets ErrMetaMismatch. Before, Record checked the spec and
// the recorded uses on one read and wrote on another: worker A (spec
// {c?a}) read the meta; worker B resumed with {c?b}, OpenMeta found no use
// and recorded {c?b}, B's Record recorded a use of "b"; then A's write put
// back {c?a} with a use of "a". Both Records returned nil, both workers
// wrote items keyed with their own default.
func TestTwoWorkersWithDifferentDefaultsNeverBothRecord(t *testing.T) {
	ctx := context.Background()
	docs := &hookedDocs{Documents: leasetest.NewMemDocuments()}
	store, err := lease.NewCosmos(docs, "rekey.t")
	if err != nil {
		t.Fatal(err)
	}
	const specA, specB = "/pk={c?a}-{d}", "/pk={c?b}-{d}"
	trA, trB := testTransformer(t, specA), testTransformer(t, specB)
	if _, err := OpenMeta(ctx, store, NewMeta("src", "dst", trA, time.Time{}), "state"); err != nil {
		t.Fatal(err)
	}
	var errB, openB error
	docs.armed, docs.hook = true, func() {
		docs.hook = func() {}
		// Worker B starts with the other default while A records.
		if _, openB = OpenMeta(ctx, store, NewMeta("src", "dst", trB, time.Time{}), "state"); openB != nil {
			return
		}
		errB = NewDefaultUses(store, trB).Record(ctx, transform.DefaultSet(1))
	}
	errA := NewDefaultUses(store, trA).Record(ctx, transform.DefaultSet(1))
	m, _ := store.ReadMeta(ctx)
	aWrites, bWrites := errA == nil, openB == nil && errB == nil
	if aWrites && bWrites {
		t.Fatalf("both workers may write, A with the default %q and B with %q: the state records the spec %v and the uses %+v", "a", "b", m.KeySpec, m.DefaultsUsed)
	}
	if !aWrites && !errors.Is(errA, lease.ErrMetaMismatch) {
		t.Fatalf("A's refusal: %v, want ErrMetaMismatch", errA)
	}
	if !aWrites && !bWrites {
		t.Fatalf("neither worker may write (A: %v; B: %v, %v)", errA, openB, errB)
	}
}
