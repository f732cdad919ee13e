package epk

import (
	"strings"
	"testing"
)

func TestCompare(t *testing.T) {
	const partial = "06AB34CFE4E482236BCACBBF50E234AB"
	tests := []struct {
		a, b string
		want int
	}{
		// internal/epk/epk_test.go of the SDK (TestCompareEPK_*).
		{"06AB34CFE4E48223", "06AB34CFE4E48223", 0},
		{"06AB34CFE4E48223", "06AB34CFE4E48224", -1},
		{"06AB34CFE4E48224", "06AB34CFE4E48223", 1},
		{partial, partial + "00000000000000000000000000000000", 0},
		{partial + "00000000000000000000000000000000", partial, 0},
		{partial, partial + "00000000000000000000000000000001", -1},
		{partial + "00000000000000000000000000000001", partial, 1},
		{"", "", 0},
		{"", "00000", 0},
		{"", "00001", -1},
		{"FF", "3FFFFFFFFFFFFFFF", 1},
		{"3FFFFFFFFFFFFFFF", "FF", -1},
		// Ours: "" is the minimum, "FF" is above every masked and version 1 EPK.
		{"", "0", 0},
		{"", "1", -1},
		{"1", "", 1},
		{"FF", "3FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF" + "3FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF", 1},
		{"FF", "05C1EFFFFFFFFE" + "08" + strings.Repeat("FF", 101), 1}, // the largest V1 EPK
		// Version 1: a key after the hash never moves an EPK past another
		// hash, and a key at a boundary's hash sorts at or after it.
		{"05C1DFFFFFFFFC", "05C1DFFFFFFFFC08713100", -1},
		{"05C1DFFFFFFFFC", "05C1DFFFFFFFFC00", 0}, // the undefined key: 00
		{"05C1DFFFFFFFFA08FFFF", "05C1DFFFFFFFFC", -1},
		{"FF", "FF00", 0},
		{"AB", "AB0", 0},
		{"AB", "AB01", -1},
		{"AB1", "AB01", 1},
	}
	for _, tt := range tests {
		if got := Compare(tt.a, tt.b); got != tt.want {
			t.Errorf("Compare(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestContains(t *testing.T) {
	tests := []struct {
		r    Range
		epk  string
		want bool
	}{
		{Full, "", true},
		{Full, "3FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF", true},
		{Full, "05C1EFFFFFFFFE0800", true},
		// The SDK routes even an unmasked EPK to the range ending at "FF"
		// (cosmos_container_read_many_test.go, TestFindPhysicalRangeForEPK_FFSentinel).
		{Range{"3C3C3C3C", "FF"}, "FFF697AF545B8770396E3626B83A20AE", true},
		{Range{"10", "20"}, "10", true},
		{Range{"10", "20"}, "1000", true},
		{Range{"10", "20"}, "0FFF", false},
		{Range{"10", "20"}, "20", false},
		{Range{"10", "20"}, "200", false},
		{Range{"10", "20"}, "1FFFFFFF", true},
		{Range{"10", "10"}, "10", false}, // empty
	}
	for _, tt := range tests {
		if got := tt.r.Contains(tt.epk); got != tt.want {
			t.Errorf("%+v.Contains(%q) = %v, want %v", tt.r, tt.epk, got, tt.want)
		}
	}
	if !(Range{"10", "10"}).IsEmpty() || (Range{"10", "11"}).IsEmpty() || Full.IsEmpty() {
		t.Error("IsEmpty disagrees with Contains")
	}
}

func TestFind(t *testing.T) {
	const partial = "06AB34CFE4E482236BCACBBF50E234AB"
	fullZero := partial + "00000000000000000000000000000000"
	tests := []struct {
		name   string
		ranges []Range
		epk    string
		want   int // -1: not found
	}{
		// cosmos_container_read_many_test.go, TestFindPhysicalRangeForEPK_*.
		{"single", []Range{Full}, "05C1DFECD6D5C72619A4ACA689462EB6", 0},
		{"multiple 0", []Range{{"", "05C1E0"}, {"05C1E0", "0BED02"}, {"0BED02", "FF"}}, "05C1DF", 0},
		{"multiple boundary", []Range{{"", "05C1E0"}, {"05C1E0", "0BED02"}, {"0BED02", "FF"}}, "05C1E0", 1},
		{"multiple 2", []Range{{"", "05C1E0"}, {"05C1E0", "0BED02"}, {"0BED02", "FF"}}, "0BED03", 2},
		{"below all", []Range{{"05C1E0", "0BED02"}}, "00000000", -1},
		{"above all", []Range{{"05C1E0", "0BED02"}}, "FF", -1},
		{"FF sentinel", []Range{{"", "3C3C3C3C"}, {"3C3C3C3C", "FF"}}, "FFF697AF545B8770396E3626B83A20AE", 1},
		{"start", []Range{{"", "3C3C3C3C"}, {"3C3C3C3C", "FF"}}, "0000000000000000", 0},
		{"at boundary", []Range{{"", "3C3C3C3C"}, {"3C3C3C3C", "FF"}}, "3C3C3C3C", 1},
		{"mixed lengths at boundary", []Range{{"", partial}, {fullZero, "FF"}}, fullZero, 1},
		{"mixed lengths below", []Range{{"", partial}, {fullZero, "FF"}}, "06AB34CFE4E482236BCACBBF50E234AA", 0},
		// Ours.
		{"empty list", nil, "00", -1},
		{"gap", []Range{{"", "10"}, {"20", "FF"}}, "15", -1},
		// The two-partition version 1 layout and the undefined key (hash
		// 0x514E28B7), at and past the boundary's hash (2147483647).
		{"undefined key, V1 layout", []Range{{"", "05C1DFFFFFFFFC"}, {"05C1DFFFFFFFFC", "FF"}}, "05C1D529E345DC00", 0},
		{"V1 key at the boundary hash", []Range{{"", "05C1DFFFFFFFFC"}, {"05C1DFFFFFFFFC", "FF"}}, "05C1DFFFFFFFFC0800", 1},
		{"V1 undefined key at the boundary hash", []Range{{"", "05C1DFFFFFFFFC"}, {"05C1DFFFFFFFFC", "FF"}}, "05C1DFFFFFFFFC00", 1},
	}
	for _, tt := range tests {
		got, ok := Find(tt.ranges, tt.epk)
		if !ok {
			got = -1
		}
		if got != tt.want {
			t.Errorf("%s: Find(%q) = %d, want %d", tt.name, tt.epk, got, tt.want)
		}
	}
}

func TestOverlapping(t *testing.T) {
	const partial = "06AB34CFE4E482236BCACBBF50E234AB"
	three := []Range{{"", "10"}, {"10", "20"}, {"20", "FF"}}
	prefix, err := PrefixRange(defMulti2, []any{"tenant1"})
	if err != nil {
		t.Fatal(err)
	}
	// A split inside the prefix's range: cosmos_container_read_many_test.go,
	// TestGroupItemsByPhysicalRange_MultiHashPrefixFanout.
	splitInPrefix := prefix.Min + "80000000000000000000000000000000"
	tests := []struct {
		name       string
		ranges     []Range
		q          Range
		first, end int
	}{
		// cosmos_collection_routing_map_test.go, Test_getOverlappingRanges_*.
		{"point in middle", three, Range{"15", "18"}, 1, 2},
		{"mixed lengths", []Range{{"", partial}, {partial + "00000000000000000000000000000000", "FF"}}, Full, 0, 2},
		{"prefix fan-out", []Range{{"", splitInPrefix}, {splitInPrefix, "FF"}}, prefix, 0, 2},
		// Ours.
		{"all", three, Full, 0, 3},
		{"touching ends are not overlaps", three, Range{"10", "20"}, 1, 2},
		{"across a boundary", three, Range{"0F", "11"}, 0, 2},
		{"top only", three, Range{"30", "FF"}, 2, 3},
		{"empty query", three, Range{"15", "15"}, 0, 0},
		{"in a gap", []Range{{"", "10"}, {"20", "FF"}}, Range{"12", "18"}, 1, 1},
		{"prefix in one range", three, prefix, 0, 1}, // "tenant1" hashes to 0DAE0B84...
	}
	for _, tt := range tests {
		first, end := Overlapping(tt.ranges, tt.q)
		if first != tt.first || end != tt.end {
			t.Errorf("%s: Overlapping(%+v) = [%d, %d), want [%d, %d)", tt.name, tt.q, first, end, tt.first, tt.end)
		}
	}
}
