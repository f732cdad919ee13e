package lease_test

import (
	"testing"

	"github.com/rekey-dev/rekey/lease"
	"github.com/rekey-dev/rekey/lease/leasetest"
)

// Both stores pass the same suite.

func TestFileStoreContract(t *testing.T) {
	leasetest.RunStore(t, func(t *testing.T, clock *leasetest.Clock) lease.Store {
		s, err := lease.OpenFile(t.TempDir(), lease.WithClock(clock.Now))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestCosmosStoreContract(t *testing.T) {
	leasetest.RunStore(t, func(t *testing.T, clock *leasetest.Clock) lease.Store {
		s, err := lease.NewCosmos(leasetest.NewMemDocuments(), "app", lease.WithClock(clock.Now))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// The fake the Cosmos store's tests stand on keeps the Documents contract
// that internal/cosmos must keep too.
func TestMemDocumentsContract(t *testing.T) {
	leasetest.RunDocuments(t, leasetest.NewMemDocuments())
}
