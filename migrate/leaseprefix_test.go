package migrate

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/rekey-dev/rekey/lease"
	"github.com/rekey-dev/rekey/lease/leasetest"
)

// Every pair of container names gets a valid prefix of at most 40 bytes,
// distinct pairs get distinct prefixes, and no migration's documents are
// listed under another's prefix.
func TestLeasePrefixForEveryName(t *testing.T) {
	long := strings.Repeat("x", 255)
	names := []ContainerRef{
		{"production", "customer-orders"}, {"production", "customer-orders-v2"},
		{long, long}, {long, long[:254] + "y"},
		{"db", "a.b"}, {"db.a", "b"}, {"db", "a..b"}, {"db", "naïve café"}, {"db", "with space"},
		{"db", "trailing."}, {"d", "c"}, {"db", "UPPER_lower-09"},
	}
	docs := leasetest.NewMemDocuments()
	seen := map[string]ContainerRef{}
	for _, src := range names {
		for _, dst := range names {
			if src == dst {
				continue
			}
			p := LeasePrefix(src, dst)
			if len(p) > 40 {
				t.Errorf("%s -> %s: prefix %q is %d bytes", src, dst, p, len(p))
			}
			if _, err := lease.NewCosmos(docs, p); err != nil {
				t.Errorf("%s -> %s: prefix %q refused: %v", src, dst, p, err)
			}
			key := src.String() + " -> " + dst.String()
			if prev, ok := seen[p]; ok {
				t.Errorf("%s and %s share the prefix %q", prev, key, p)
			}
			seen[p] = src
			for q := range seen {
				if q != p && (strings.HasPrefix(q+"..", p+"..") || strings.HasPrefix(p+"..", q+"..")) {
					t.Errorf("prefixes %q and %q list each other's documents", p, q)
				}
			}
		}
	}
	if p := LeasePrefix(ContainerRef{"production", "customer-orders"}, ContainerRef{"production", "customer-orders-v2"}); !strings.HasPrefix(p, "rekey.customer-orders-v2.") {
		t.Errorf("prefix %q does not name the target", p)
	}
}

// A state an older rekey recorded under the old prefix is found when it
// belongs to this migration, and only then.
func TestResolveLeasePrefix(t *testing.T) {
	ctx := context.Background()
	src, dst := ContainerRef{"a", "b.c"}, ContainerRef{"d", "e"}
	docs := leasetest.NewMemDocuments()
	if p, err := ResolveLeasePrefix(ctx, docs, src, dst); err != nil || p != LeasePrefix(src, dst) {
		t.Fatalf("no state: %q %v", p, err)
	}
	old, err := lease.NewCosmos(docs, "rekey.a.b.c.d.e")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.Init(ctx, lease.Meta{Version: 1, Source: "host/a/b.c", Target: "host/d/e", KeySpec: []string{"/k"}}); err != nil {
		t.Fatal(err)
	}
	if p, err := ResolveLeasePrefix(ctx, docs, src, dst); err != nil || p != old.Prefix() {
		t.Fatalf("a state under the old prefix: %q %v", p, err)
	}
	// a/b -> c.d/e joins to the same old prefix as a/b.c -> d/e: the
	// meta says which migration it is.
	other, otherDst := ContainerRef{"a", "b"}, ContainerRef{"c.d", "e"}
	if legacyLeasePrefix(other, otherDst) != old.Prefix() {
		t.Fatal("the example does not collide")
	}
	if p, err := ResolveLeasePrefix(ctx, docs, other, otherDst); err != nil || p != LeasePrefix(other, otherDst) {
		t.Fatalf("another migration under an equal old prefix: %q %v", p, err)
	}
	down := errors.New("503")
	docs.Fail = func(string, string) error { return down }
	if _, err := ResolveLeasePrefix(ctx, docs, src, dst); !errors.Is(err, down) {
		t.Fatalf("with the container down: %v", err)
	}
}
