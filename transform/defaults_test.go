package transform

import "testing"

// Result.DefaultsUsed says which placeholders took their default, numbered
// as Spec.Placeholders lists them across keys.
func TestDefaultsUsed(t *testing.T) {
	spec, err := ParseSpec([]string{"/tenantId", "/pk={region?none}-{createdAt|yyyyMM}", "/sub={customer.id?anon}{shard?0}"})
	if err != nil {
		t.Fatal(err)
	}
	want := []Placeholder{
		{Key: 1, Index: 0, Field: "region", Default: "none", HasDefault: true},
		{Key: 1, Index: 1, Field: "createdAt"},
		{Key: 2, Index: 0, Field: "customer.id", Default: "anon", HasDefault: true},
		{Key: 2, Index: 1, Field: "shard", Default: "0", HasDefault: true},
	}
	got := spec.Placeholders()
	if len(got) != len(want) {
		t.Fatalf("placeholders %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("placeholder %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	tr, err := New(spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		item string
		used []int
	}{
		{`{"id":"a","tenantId":"t","region":"eu","createdAt":"2024-05-01","customer":{"id":"c"},"shard":3}`, nil},
		{`{"id":"a","tenantId":"t","createdAt":"2024-05-01","customer":{"id":"c"},"shard":3}`, []int{0}},
		{`{"id":"a","tenantId":"t","region":null,"createdAt":"2024-05-01","shard":3}`, []int{0, 2}},
		{`{"id":"a","tenantId":"t","region":"eu","createdAt":"2024-05-01","customer":{}}`, []int{2, 3}},
	} {
		var r Result
		r.DefaultsUsed = 1 << 10 // ApplyTo must reset what a reused Result held
		if err := tr.ApplyTo(&r, []byte(c.item)); err != nil {
			t.Fatalf("%s: %v", c.item, err)
		}
		var want DefaultSet
		for _, i := range c.used {
			want |= defaultBit(i)
		}
		if r.DefaultsUsed != want {
			t.Errorf("%s: defaults used %b, want %b", c.item, r.DefaultsUsed, want)
		}
		for i := range got {
			if r.DefaultsUsed.Has(i) != (want&defaultBit(i) != 0) {
				t.Errorf("%s: Has(%d) = %v", c.item, i, r.DefaultsUsed.Has(i))
			}
		}
	}
	// Placeholders from the 64th on share the last bit.
	if !defaultBit(70).Has(63) || !DefaultSet(1<<63).Has(100) || DefaultSet(1<<62).Has(63) {
		t.Error("placeholders past the 63rd must share bit 63")
	}
}
