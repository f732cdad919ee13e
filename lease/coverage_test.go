package lease_test

import (
	"errors"
	"reflect"
	"testing"

	"github.com/rekey-dev/rekey/lease"
)

func ranges(bounds ...string) []lease.Range {
	var out []lease.Range
	for i := 0; i+1 < len(bounds); i++ {
		out = append(out, lease.Range{Min: bounds[i], Max: bounds[i+1]})
	}
	return out
}

func leasesOf(rs ...lease.Range) []lease.Lease {
	var out []lease.Lease
	for _, r := range rs {
		out = append(out, lease.Lease{ID: lease.TokenFor(r), Range: r})
	}
	return out
}

func TestGaps(t *testing.T) {
	all := ranges("", "20", "40", "80", "C0", "FF")
	cases := []struct {
		name   string
		leases []lease.Lease
		want   []lease.Range
	}{
		{"none", nil, ranges("", "FF")},
		{"all", leasesOf(all...), nil},
		{"first two of five (a crash while creating)", leasesOf(all[0], all[1]), ranges("40", "FF")},
		{"holes", leasesOf(all[1], all[3]), []lease.Range{{Min: "", Max: "20"}, {Min: "40", Max: "80"}, {Min: "C0", Max: "FF"}}},
		{"unordered", leasesOf(all[4], all[0], all[2], all[1], all[3]), nil},
		{"longer bounds compare as EPKs", leasesOf(lease.Range{Min: "", Max: "4000"}, lease.Range{Min: "40", Max: "FF"}), nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := lease.Gaps(tc.leases)
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Gaps = %v, %v; want %v", got, err, tc.want)
			}
		})
	}
	for _, bad := range [][]lease.Lease{
		leasesOf(lease.Range{Min: "", Max: "80"}, lease.Range{Min: "40", Max: "FF"}),
		leasesOf(lease.Range{Min: "80", Max: "40"}),
	} {
		if _, err := lease.Gaps(bad); !errors.Is(err, lease.ErrCorrupt) {
			t.Errorf("Gaps(%v) = %v, want ErrCorrupt", bad, err)
		}
	}
}

func TestClip(t *testing.T) {
	all := ranges("", "20", "40", "80", "C0", "FF")
	cases := []struct {
		gap  lease.Range
		want []lease.Range
	}{
		{lease.Range{Min: "", Max: "FF"}, all},
		{lease.Range{Min: "40", Max: "FF"}, all[2:]},
		{lease.Range{Min: "30", Max: "90"}, ranges("30", "40", "80", "90")},
		{lease.Range{Min: "50", Max: "60"}, ranges("50", "60")},
	}
	for _, tc := range cases {
		if got := lease.Clip(all, tc.gap); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Clip(%v) = %v, want %v", tc.gap, got, tc.want)
		}
	}
}
