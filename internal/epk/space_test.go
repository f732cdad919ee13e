package epk

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// Expected boundaries were worked out independently as floor(i*width/parts)
// with arbitrary-precision integers (Python), e.g. floor(i * 2**126 / 5).
func TestSplitPoints(t *testing.T) {
	const (
		b1 = "0CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC"
		b4 = "33333333333333333333333333333333"
	)
	prefix := "0DAE0B8467B011E957BC0B8B0DEB5ACA" // Hash(defMulti2, ["tenant1"])
	tests := []struct {
		name     string
		v        Version
		min, max string
		parts    int
		want     []string
	}{
		{"V2 into 5", Version2, MinEPK, MaxEPK, 5,
			[]string{b1, "19999999999999999999999999999999", "26666666666666666666666666666666", b4}},
		{"V2 midpoint of the last of 5", Version2, b4, MaxEPK, 2,
			[]string{"39999999999999999999999999999999"}},
		{"V2 midpoint of the first of 5", Version2, MinEPK, b1, 2,
			[]string{"06666666666666666666666666666666"}},
		{"V2 into 2", Version2, MinEPK, MaxEPK, 2, []string{"20000000000000000000000000000000"}},
		{"V2 into 3", Version2, MinEPK, MaxEPK, 3,
			[]string{"15555555555555555555555555555555", "2AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}},
		{"V1 into 4", Version1, MinEPK, MaxEPK, 4, []string{
			"00000000000000000000000040000000", "00000000000000000000000080000000", "000000000000000000000000C0000000"}},
		{"V1 into 3", Version1, MinEPK, MaxEPK, 3, []string{
			"00000000000000000000000055555555", "000000000000000000000000AAAAAAAA"}},
		{"version 0 is V1", 0, MinEPK, MaxEPK, 2, []string{"00000000000000000000000080000000"}},
		{"V1 midpoint", Version1, "00000000000000000000000080000000", MaxEPK, 2,
			[]string{"000000000000000000000000C0000000"}},
		{"one part", Version2, MinEPK, MaxEPK, 1, []string{}},
		{"short bounds are padded", Version2, "1", "2", 2, []string{"18000000000000000000000000000000"}},
		{"narrowest split", Version2, "00000000000000000000000000000010", "00000000000000000000000000000012", 2,
			[]string{"00000000000000000000000000000011"}},
		{"top written as 40", Version2, "20", "40", 2, []string{"30000000000000000000000000000000"}},
		// MultiHash: a 64-digit min is rounded up to the next first-level
		// value, a 64-digit max down.
		// [ACA|80..., ACD) is [ACB, ACD) on the first level: midpoint ACC.
		{"64-digit min", Version2, prefix + "80000000000000000000000000000000", "0DAE0B8467B011E957BC0B8B0DEB5ACD", 2,
			[]string{"0DAE0B8467B011E957BC0B8B0DEB5ACC"}},
		// A 64-digit max is rounded down: [ACA, ACD|80...) is [ACA, ACD).
		{"64-digit max", Version2, prefix, "0DAE0B8467B011E957BC0B8B0DEB5ACD" + "80000000000000000000000000000000", 3,
			[]string{"0DAE0B8467B011E957BC0B8B0DEB5ACB", "0DAE0B8467B011E957BC0B8B0DEB5ACC"}},
		{"zero-padded 64-digit bounds", Version2, prefix + strings.Repeat("0", 32), "0DAE0B8467B011E957BC0B8B0DEB5AD0" + strings.Repeat("0", 32), 2,
			[]string{"0DAE0B8467B011E957BC0B8B0DEB5ACD"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := SplitPoints(tt.v, tt.min, tt.max, tt.parts)
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("SplitPoints(%d, %q, %q, %d) = %q, %v; want %q", tt.v, tt.min, tt.max, tt.parts, got, err, tt.want)
			}
		})
	}
}

func TestSplitPointsErrors(t *testing.T) {
	prefix, err := PrefixRange(defMulti2, []any{"tenant1"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		v        Version
		min, max string
		parts    int
		want     error
	}{
		{"zero parts", Version2, MinEPK, MaxEPK, 0, ErrInvalidSplit},
		{"negative parts", Version2, MinEPK, MaxEPK, -3, ErrInvalidSplit},
		{"too many parts", Version2, MinEPK, MaxEPK, MaxParts + 1, ErrInvalidSplit},
		{"min equals max", Version2, "10", "10", 2, ErrInvalidSplit},
		{"min equals max, padded", Version2, "10", "1000", 1, ErrInvalidSplit},
		{"min above max", Version2, "20", "10", 2, ErrInvalidSplit},
		{"empty range FF..FF", Version2, MaxEPK, MaxEPK, 1, ErrInvalidSplit},
		{"min at top", Version2, "40", MaxEPK, 2, ErrInvalidSplit},
		{"too narrow", Version2, "00000000000000000000000000000010", "00000000000000000000000000000011", 2, ErrInvalidSplit},
		// [ACA|80..., ACC) rounds to [ACB, ACC): one value, no boundary fits.
		{"64-digit min rounds up", Version2, "0DAE0B8467B011E957BC0B8B0DEB5ACA80", "0DAE0B8467B011E957BC0B8B0DEB5ACC", 2, ErrInvalidSplit},
		{"inside one first-level key", Version2, prefix.Min, prefix.Max, 2, ErrInvalidSplit},
		{"lowercase", Version2, "0a", MaxEPK, 2, ErrInvalidEPK},
		{"not hex", Version2, MinEPK, "XYZ", 2, ErrInvalidEPK},
		{"above the V2 space", Version2, MinEPK, "41", 2, ErrInvalidEPK},
		{"above the V2 space by a tail", Version2, MinEPK, "40000000000000000000000000000000" + "01", 2, ErrInvalidEPK},
		{"real V1 service boundary", Version1, MinEPK, "05C1E18D2D7F08", 2, ErrInvalidEPK},
		{"above the V1 space", Version1, MinEPK, "00000000000000000000000100000001", 2, ErrInvalidEPK},
		{"version 3", 3, MinEPK, MaxEPK, 2, ErrUnsupportedVersion},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := SplitPoints(tt.v, tt.min, tt.max, tt.parts)
			if !errors.Is(err, tt.want) || got != nil {
				t.Errorf("SplitPoints = %q, %v; want error %v", got, err, tt.want)
			}
		})
	}
}

func TestSplitRange(t *testing.T) {
	got, err := SplitRange(Version2, Full, 4)
	if err != nil {
		t.Fatal(err)
	}
	want := []Range{
		{"", "10000000000000000000000000000000"},
		{"10000000000000000000000000000000", "20000000000000000000000000000000"},
		{"20000000000000000000000000000000", "30000000000000000000000000000000"},
		{"30000000000000000000000000000000", "FF"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("SplitRange(V2, Full, 4) = %q", got)
	}
	// Every hashed key lands in exactly the range Find names.
	for _, key := range []any{"a", "tenant-42", 3.0, nil, true, Undefined{}} {
		epk, err := Hash(defV2, []any{key})
		if err != nil {
			t.Fatal(err)
		}
		i, ok := Find(got, epk)
		if !ok || !got[i].Contains(epk) {
			t.Errorf("Find(%q) = %d, %v", epk, i, ok)
		}
	}
	// Splitting the last range in two keeps the ranges contiguous.
	halves, err := SplitRange(Version2, got[3], 2)
	if err != nil || len(halves) != 2 || halves[0].Min != got[3].Min || halves[1].Max != MaxEPK ||
		halves[0].Max != halves[1].Min || halves[0].Max != "38000000000000000000000000000000" {
		t.Errorf("SplitRange(last, 2) = %q, %v", halves, err)
	}
	if _, err := SplitRange(Version2, Range{"20", "10"}, 2); !errors.Is(err, ErrInvalidSplit) {
		t.Errorf("SplitRange(reversed) error = %v", err)
	}
	one, err := SplitRange(Version1, Full, 1)
	if err != nil || !reflect.DeepEqual(one, []Range{Full}) {
		t.Errorf("SplitRange(V1, Full, 1) = %q, %v", one, err)
	}
}
