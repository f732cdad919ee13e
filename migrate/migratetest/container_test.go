package migratetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rekey-dev/rekey/migrate"
)

// The contract suites against this package's Container; internal/cosmos
// runs them against the adapter on the emulator.
func TestContainerKeepsTheTargetContract(t *testing.T) { RunTarget(t, NewFixture) }
func TestContainerKeepsTheSourceContract(t *testing.T) { RunSource(t, NewFixture) }

// Time to live is the fake's own: the emulator does not expire items.
func TestExpiredItemsVanish(t *testing.T) {
	clock := &manualClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	c, err := New(hashKey, WithClock(clock.now), WithDefaultTTL(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	create(t, c, "short", "p", 1)
	if _, err := c.Create(ctx, key("p"), []byte(`{"id":"forever","pk":"p","ttl":-1}`)); err != nil {
		t.Fatal(err)
	}
	clock.advance(11 * time.Second)
	if _, err := c.Read(ctx, key("p"), "short"); !errors.Is(err, migrate.ErrNotFound) {
		t.Fatalf("read of an expired item: %v, want ErrNotFound", err)
	}
	items, _ := drain(t, c, migrate.ChangeRequest{Range: everything, PageSize: 10})
	if got := ids(t, items); len(got) != 1 || got[0] != "forever" {
		t.Fatalf("feed after expiry = %v, want [forever]", got)
	}
	if n, _ := c.ItemCount(ctx); n != 1 {
		t.Fatalf("item count %d, want 1", n)
	}
	create(t, c, "short", "p", 2) // the address is free again
}

func TestSystemPropertiesAreTheService(t *testing.T) {
	c, err := New(hashKey)
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Create(context.Background(), key("p"), []byte(`{"id":"a","pk":"p","_etag":"mine","_ts":1,"x":1}`))
	if err != nil {
		t.Fatal(err)
	}
	it, _ := c.Read(context.Background(), key("p"), "a")
	m := decoded(t, it.Body)
	if m["_etag"] != res.ETag || m["_ts"] == float64(1) || m["x"] != float64(1) {
		t.Fatalf("stored %s: the service's system properties replace the client's", it.Body)
	}
}

func TestContainerKeepsTheVersionsContract(t *testing.T) { RunVersions(t, NewVersionsFixture) }
