package migrate

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rekey-dev/rekey/lease"
	"github.com/rekey-dev/rekey/transform"
)

func testTransformer(t *testing.T, keys ...string) *transform.Transformer {
	t.Helper()
	spec, err := transform.ParseSpec(keys)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := transform.New(spec, []string{"/region"})
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// countingStore counts meta reads (ReadMeta, and SwapMeta's read) and can
// fail meta updates.
type countingStore struct {
	lease.Store
	reads      atomic.Int32
	failUpdate error
}

func (s *countingStore) ReadMeta(ctx context.Context) (lease.Meta, error) {
	s.reads.Add(1)
	return s.Store.ReadMeta(ctx)
}

func (s *countingStore) SwapMeta(ctx context.Context, change func(*lease.Meta) error) (lease.Meta, error) {
	s.reads.Add(1)
	if s.failUpdate != nil {
		return lease.Meta{}, s.failUpdate
	}
	return s.Store.SwapMeta(ctx, change)
}

func (s *countingStore) UpdateMeta(ctx context.Context, m lease.Meta) error {
	if s.failUpdate != nil {
		return s.failUpdate
	}
	return s.Store.UpdateMeta(ctx, m)
}

func openStore(t *testing.T) lease.Store {
	t.Helper()
	s, err := lease.OpenFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// The rule OpenMeta applies to defaults, case by case.
func TestOpenMetaDefaultChanges(t *testing.T) {
	ctx := context.Background()
	open := func(store lease.Store, key string) error {
		_, err := OpenMeta(ctx, store, NewMeta("src", "dst", testTransformer(t, key), time.Time{}), "state")
		return err
	}
	use := func(store lease.Store, key, item string) {
		t.Helper()
		tr := testTransformer(t, key)
		res, err := tr.Apply([]byte(item))
		if err != nil {
			t.Fatal(err)
		}
		if err := NewDefaultUses(store, tr).Record(ctx, res.DefaultsUsed); err != nil {
			t.Fatal(err)
		}
	}
	const withField, without = `{"id":"a","region":"eu","c":"x","d":"y"}`, `{"id":"a","region":"eu","d":"y"}`

	for _, c := range []struct {
		name     string
		first    string
		item     string // written with the first spec, if any
		then     string
		refusals string // "" when accepted
	}{
		{"add a default", "/pk={c}-{d}", withField, "/pk={c?none}-{d}", ""},
		{"change an unused default", "/pk={c?none}-{d}", withField, "/pk={c?zzz}-{d}", ""},
		{"remove an unused default", "/pk={c?none}-{d}", withField, "/pk={c}-{d}", ""},
		{"change a used default", "/pk={c?none}-{d}", without, "/pk={c?zzz}-{d}", `sets the default of {c} to "zzz" in --key /pk, but items already written to the target have keys built with the default "none"`},
		{"remove a used default", "/pk={c?none}-{d}", without, "/pk={c}-{d}", `removes the default of {c}`},
		{"change another default than the used one", "/pk={c?none}-{d?n}", without, "/pk={c?none}-{d?m}", ""},
		{"add a default next to a used one", "/pk={c?none}-{d}", without, "/pk={c?none}-{d?m}", ""},
		{"keep a used default", "/pk={c?none}-{d}", without, "/pk={c?none}-{d}", ""},
		{"change structure", "/pk={c?none}-{d}", "", "/pk={c?none}", "records a migration with key spec"},
		{"another key", "/c", "", "/d", "records a migration with key spec"},
	} {
		t.Run(c.name, func(t *testing.T) {
			store := openStore(t)
			if err := open(store, c.first); err != nil {
				t.Fatal(err)
			}
			if c.item != "" {
				use(store, c.first, c.item)
			}
			err := open(store, c.then)
			if c.refusals == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if m, _ := store.ReadMeta(ctx); m.KeySpec[0] != testTransformer(t, c.then).Spec().Strings()[0] {
					t.Fatalf("the accepted spec is not recorded: %v", m.KeySpec)
				}
				return
			}
			if !errors.Is(err, lease.ErrMetaMismatch) || !strings.Contains(err.Error(), c.refusals) {
				t.Fatalf("got %v, want a refusal with %q", err, c.refusals)
			}
			if m, _ := store.ReadMeta(ctx); m.KeySpec[0] != testTransformer(t, c.first).Spec().Strings()[0] {
				t.Fatalf("a refused spec was recorded: %v", m.KeySpec)
			}
		})
	}
}

// A state written before uses were recorded (layout 1) cannot say whether
// a default was used: changing one is refused, adding one is not.
func TestOpenMetaLayout1Defaults(t *testing.T) {
	ctx := context.Background()
	store := openStore(t)
	old := NewMeta("src", "dst", testTransformer(t, "/pk={c?none}-{d}"), time.Time{})
	old.Version = 1
	if _, err := store.Init(ctx, old); err != nil {
		t.Fatal(err)
	}
	_, err := OpenMeta(ctx, store, NewMeta("src", "dst", testTransformer(t, "/pk={c?zzz}-{d}"), time.Time{}), "state")
	if !errors.Is(err, lease.ErrMetaMismatch) || !strings.Contains(err.Error(), `counts as used`) {
		t.Fatalf("changing a default of a layout-1 state: %v", err)
	}
	if _, err := OpenMeta(ctx, store, NewMeta("src", "dst", testTransformer(t, "/pk={c?none}-{d?x}"), time.Time{}), "state"); err != nil {
		t.Fatalf("adding a default to a layout-1 state: %v", err)
	}
	if m, _ := store.ReadMeta(ctx); m.Version != 1 {
		t.Fatalf("the state's layout changed to %d: its unrecorded uses would be forgotten", m.Version)
	}
}

// Record reads the state once per new placeholder, not per item; it fails
// (so nothing is written) when the use cannot be recorded, when another
// process changed the spec, or when the state holds a use of another
// default.
func TestDefaultUsesRecord(t *testing.T) {
	ctx := context.Background()
	key := "/pk={c?none}-{d?n}"
	tr := testTransformer(t, key)
	store := &countingStore{Store: openStore(t)}
	if _, err := OpenMeta(ctx, store, NewMeta("src", "dst", tr, time.Time{}), "state"); err != nil {
		t.Fatal(err)
	}
	d := NewDefaultUses(store, tr)
	store.reads.Store(0)
	for range 100 {
		if err := d.Record(ctx, transform.DefaultSet(1)); err != nil {
			t.Fatal(err)
		}
	}
	if n := store.reads.Load(); n != 1 {
		t.Fatalf("100 records of one default read the state %d times", n)
	}
	m, _ := store.ReadMeta(ctx)
	if len(m.DefaultsUsed) != 1 || m.DefaultsUsed[0] != (lease.DefaultUse{Key: 0, Placeholder: 0, Field: "c", Default: "none"}) {
		t.Fatalf("recorded uses %+v", m.DefaultsUsed)
	}

	full := errors.New("disk full")
	store.failUpdate = full
	if err := d.Record(ctx, transform.DefaultSet(2)); !errors.Is(err, full) {
		t.Fatalf("Record with the state unwritable: %v", err)
	}
	store.failUpdate = nil

	other := testTransformer(t, "/pk={c?zzz}-{d?n}")
	m.KeySpec = other.Spec().Strings()
	if err := store.UpdateMeta(ctx, m); err != nil {
		t.Fatal(err)
	}
	if err := d.Record(ctx, transform.DefaultSet(2)); !errors.Is(err, lease.ErrMetaMismatch) {
		t.Fatalf("Record after another process changed the spec: %v", err)
	}
	if err := NewDefaultUses(store, other).Record(ctx, transform.DefaultSet(1)); !errors.Is(err, lease.ErrMetaMismatch) {
		t.Fatalf("Record of default zzz where none was used: %v", err)
	}
	if NewDefaultUses(nil, tr).Record(ctx, 1) != nil {
		t.Fatal("a nil DefaultUses must record nothing")
	}
}

// stallingMeta holds meta reads and swaps until release is closed, telling
// entered when one is waiting.
type stallingMeta struct {
	lease.Store
	entered chan struct{}
	release chan struct{}
}

func (s *stallingMeta) ReadMeta(ctx context.Context) (lease.Meta, error) {
	s.entered <- struct{}{}
	<-s.release
	return s.Store.ReadMeta(ctx)
}

func (s *stallingMeta) SwapMeta(ctx context.Context, change func(*lease.Meta) error) (lease.Meta, error) {
	s.entered <- struct{}{}
	<-s.release
	return s.Store.SwapMeta(ctx, change)
}

// A Record that waits for another's request to the state gives up when
// its context ends: no lock is held across the request.
func TestDefaultUsesRecordWaitingGivesUpWithItsContext(t *testing.T) {
	ctx := context.Background()
	tr := testTransformer(t, "/pk={c?none}-{d?n}")
	files := openStore(t)
	if _, err := OpenMeta(ctx, files, NewMeta("src", "dst", tr, time.Time{}), "state"); err != nil {
		t.Fatal(err)
	}
	store := &stallingMeta{Store: files, entered: make(chan struct{}), release: make(chan struct{})}
	d := NewDefaultUses(store, tr)
	first := make(chan error, 1)
	go func() { first <- d.Record(ctx, transform.DefaultSet(1)) }()
	<-store.entered
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	second := make(chan error, 1)
	go func() { second <- d.Record(short, transform.DefaultSet(2)) }()
	select {
	case err := <-second:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("the waiting Record: %v, want its context's end", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the waiting Record did not give up when its context ended")
	}
	close(store.release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
}
