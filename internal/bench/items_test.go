package bench

import (
	"encoding/json"
	"testing"
)

func TestBenchItemsAreSizedAndSkewed(t *testing.T) {
	g := items{n: 10000, size: 1024, skew: 0.3}
	hot := 0
	for i := range g.n {
		it := g.item(i)
		if len(it) != 1024 {
			t.Fatalf("item %d is %d bytes", i, len(it))
		}
		var d struct {
			Tenant     string `json:"tenant"`
			CustomerID string `json:"customerId"`
		}
		if err := json.Unmarshal(it, &d); err != nil {
			t.Fatal(err)
		}
		if d.CustomerID == hotCustomer {
			hot++
		}
		if d.Tenant != g.tenant(i) {
			t.Fatalf("item %d tenant %q", i, d.Tenant)
		}
	}
	if share := float64(hot) / float64(g.n); share < 0.28 || share > 0.32 {
		t.Fatalf("hot share %.3f, want about 0.3", share)
	}
}
