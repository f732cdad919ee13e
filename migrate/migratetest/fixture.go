package migratetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/rekey-dev/rekey/migrate"
	"github.com/rekey-dev/rekey/transform"
)

// Store is what the suites test: a container read and written through
// migrate's ports, as the internal/cosmos adapter's Container is.
type Store interface {
	migrate.Source
	migrate.Target
}

// Fixture is a fresh, empty container under test, with the controls the
// suites need that the ports do not offer.
type Fixture struct {
	Store Store
	// Split splits the live physical partition that holds the EPK into
	// two halves, as the service does when a partition grows.
	Split func(t *testing.T, epk string)
	// Now and Sleep are the container's clock: the time it stamps writes
	// with, and a wait of d on it.
	Now   func() time.Time
	Sleep func(t *testing.T, d time.Duration)
}

// Open returns a fresh, empty container with the key definition def and
// the given number of physical partitions.
type Open func(t *testing.T, def migrate.Definition, partitions int) Fixture

// NewFixture is an Open for this package's Container on a fake clock that
// moves only when a suite sleeps.
func NewFixture(t *testing.T, def migrate.Definition, partitions int) Fixture {
	return newFixture(t, def, WithPartitions(partitions))
}

// newFixture is a Fixture of a new Container with opts, on a fake clock
// that moves only when a suite sleeps.
func newFixture(t *testing.T, def migrate.Definition, opts ...Option) Fixture {
	clock := &manualClock{t: time.Date(2026, 1, 2, 3, 4, 5, 600_000_000, time.UTC)}
	c, err := New(def, append(opts, WithClock(clock.now))...)
	if err != nil {
		t.Fatalf("new container: %v", err)
	}
	return Fixture{
		Store: c,
		Split: func(t *testing.T, at string) {
			if err := c.Split(at); err != nil {
				t.Fatal(err)
			}
		},
		Now:   clock.now,
		Sleep: func(_ *testing.T, d time.Duration) { clock.advance(d) },
	}
}

// hashKey is the suites' default key definition: a string at /pk, Hash v2.
var hashKey = migrate.Definition{Paths: []string{"/pk"}, Kind: "Hash", Version: 2}

// body is {"id": id, "pk": pk, "v": v}.
func body(id, pk string, v int) []byte {
	b, _ := json.Marshal(map[string]any{"id": id, "pk": pk, "v": v})
	return b
}

// key is a one-component string key.
func key(s string) migrate.Key { return migrate.Key{transform.StringValue(s)} }

// decoded is an item body's fields.
func decoded(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("item body %s: %v", b, err)
	}
	return m
}

// ctx bounds a suite's calls so that a hang fails the test.
func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return c
}

// create creates an item or fails the test.
func create(t *testing.T, s Store, id, pk string, v int) migrate.WriteResult {
	t.Helper()
	res, err := s.Create(ctx(t), key(pk), body(id, pk, v))
	if err != nil {
		t.Fatalf("create %s/%s: %v", pk, id, err)
	}
	return res
}

// replace overwrites an item whatever its ETag, or fails the test.
func replace(t *testing.T, s Store, id, pk string, v int) {
	t.Helper()
	if _, err := s.Replace(ctx(t), key(pk), id, body(id, pk, v), ""); err != nil {
		t.Fatalf("replace %s/%s: %v", pk, id, err)
	}
}

// wantFailure checks that err is a RequestError of class want that still
// cost request units.
func wantFailure(t *testing.T, what string, err, want error) {
	t.Helper()
	var re *migrate.RequestError
	switch {
	case !errors.Is(err, want):
		t.Fatalf("%s: err = %v, want %v", what, err, want)
	case !errors.As(err, &re):
		t.Fatalf("%s: err = %v (%T), want a *migrate.RequestError", what, err, err)
	case re.RU <= 0:
		t.Errorf("%s: the failure cost %v RU; the service charges failed requests too", what, re.RU)
	}
}

// manualClock is the fake fixture's clock.
type manualClock struct {
	t time.Time
}

func (c *manualClock) now() time.Time          { return c.t }
func (c *manualClock) advance(d time.Duration) { c.t = c.t.Add(d) }

// ids renders the ids of item bodies, for messages.
func ids(t *testing.T, items [][]byte) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = fmt.Sprint(decoded(t, it)["id"])
	}
	return out
}

// Transformer compiles the key spec keys for a source partitioned on
// sourcePath, or fails the test.
func Transformer(t testing.TB, sourcePath string, keys ...string) *transform.Transformer {
	t.Helper()
	spec, err := transform.ParseSpec(keys)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := transform.New(spec, []string{sourcePath})
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// MustNew is New for a test: it fails the test on a definition New
// refuses.
func MustNew(t testing.TB, def migrate.Definition, opts ...Option) *Container {
	t.Helper()
	c, err := New(def, opts...)
	if err != nil {
		t.Fatalf("new container: %v", err)
	}
	return c
}

// MustUpsert writes an item as an application does (Upsert), or fails the
// test.
func MustUpsert(t testing.TB, c *Container, body string) {
	t.Helper()
	if _, err := c.Upsert(context.Background(), []byte(body)); err != nil {
		t.Fatalf("upsert %s: %v", body, err)
	}
}
