package epk

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// Expected boundaries were worked out independently with arbitrary-precision
// integers (Python): version 2 as floor(i*width/parts), e.g.
// floor(i * 2**126 / 5); version 1 as min + i*(width//parts), the service's
// arithmetic, written with a separate implementation of the number
// encoding. The version 1 values the SDKs pin are in vectors_test.go.
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
		// 4294967295//4 = 1073741823: 1073741823, 2147483646, 3221225469.
		{"V1 into 4", Version1, MinEPK, MaxEPK, 4, []string{"05C1CFFFFFFFF8", "05C1DFFFFFFFF8", "05C1E7FFFFFFFA"}},
		{"V1 into 3", Version1, MinEPK, MaxEPK, 3, []string{"05C1D5AB55AB54", "05C1E5AB55AB54"}},
		{"version 0 is V1", 0, MinEPK, MaxEPK, 2, []string{"05C1DFFFFFFFFC"}},
		// (2147483647 + 4294967295) // 2 = 3221225471, not the 4-way 3221225469.
		{"V1 midpoint", Version1, "05C1DFFFFFFFFC", MaxEPK, 2, []string{"05C1E7FFFFFFFE"}},
		// A boundary a real version 1 container has (2294652804): its lower
		// half splits at 1147326402.
		{"V1 real service boundary", Version1, MinEPK, "05C1E18D2D7F08", 2, []string{"05C1D18D2D7F08"}},
		// An item's EPK as min (hash 10, key "p0") rounds up to 11: [11, 13).
		{"V1 key after the number", Version1, "05C024" + "08713100", "05C02A", 2, []string{"05C028"}},
		{"V1 trailing zeros are exact", Version1, "05C024" + "00", "05C028", 2, []string{"05C026"}},
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
		{"V1 too narrow", Version1, "05C024", "05C026", 2, ErrInvalidSplit},
		{"V1 key rounds up to max", Version1, "05C024" + "08713100", "05C026", 2, ErrInvalidSplit},
		{"V1 min at top", Version1, "05C1EFFFFFFFFE", MaxEPK, 2, ErrInvalidSplit},
		// The Go SDK's simplified version 1 form is no version 1 EPK.
		{"V1 in the Go SDK's form", Version1, MinEPK, "00000000000000000000000080000000", 2, ErrInvalidEPK},
		{"V1 version 2 boundary", Version1, "20000000000000000000000000000000", MaxEPK, 2, ErrInvalidEPK},
		{"V1 unterminated number", Version1, MinEPK, "05C1DF", 2, ErrInvalidEPK},
		{"V1 number too long", Version1, MinEPK, "05C1" + strings.Repeat("FF", 9) + "FE", 2, ErrInvalidEPK},
		{"V1 negative", Version1, "054010", MaxEPK, 2, ErrInvalidEPK},
		{"V1 above the space", Version1, MinEPK, "05C1F0", 2, ErrInvalidEPK},
		{"V1 string component", Version1, MinEPK, "087100", 2, ErrInvalidEPK},
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

// A version 1 layout routes every key to the range whose hash interval holds
// the key's hash, whatever the key's length: the EPK's key part never
// crosses a boundary.
func TestSplitRangeV1Routing(t *testing.T) {
	ranges, err := SplitRange(Version1, Full, 7)
	if err != nil {
		t.Fatal(err)
	}
	keys := []any{"", "p0", "k1", strings.Repeat("é", 80), 2.0, -1.0, 0.0, nil, true, false, Undefined{}}
	for i := 0; i < 200; i++ {
		keys = append(keys, fmt.Sprintf("key-%d", i), float64(i)*1.5)
	}
	for _, key := range keys {
		e, err := Hash(defV1, []any{key})
		if err != nil {
			t.Fatal(err)
		}
		h, _, err := parseV1(e)
		if err != nil {
			t.Fatal(err)
		}
		i, ok := Find(ranges, e)
		want := int(h.lo / (4294967295 / 7))
		if !ok || i != min(want, 6) {
			t.Errorf("Find(%q) = %d, %v; hash %d is in range %d", e, i, ok, h.lo, want)
		}
	}
}

func TestWidth(t *testing.T) {
	half := "05C1DFFFFFFFFC" // 2147483647
	tests := []struct {
		v    Version
		r    Range
		want string
	}{
		{Version1, Full, "4294967295"},
		{Version1, Range{half, MaxEPK}, "2147483648"},
		{Version1, Range{MinEPK, half}, "2147483647"},
		{Version1, Range{half + "08713100", MaxEPK}, "2147483648"}, // the key does not count
		{Version1, Range{MaxEPK, half}, "0"},
		{Version2, Full, "85070591730234615865843651857942052864"}, // 2^126
		{Version2, Range{"20000000000000000000000000000000", MaxEPK}, "42535295865117307932921825928971026432"},
		{0, Range{MinEPK, "05C024"}, "10"},
	}
	for _, tt := range tests {
		got, err := Width(tt.v, tt.r)
		if err != nil || got.String() != tt.want {
			t.Errorf("Width(%d, %+v) = %v, %v; want %s", tt.v, tt.r, got, err, tt.want)
		}
	}
	if _, err := Width(Version1, Range{MinEPK, "00000000000000000000000080000000"}); !errors.Is(err, ErrInvalidEPK) {
		t.Errorf("Width of a non-V1 EPK: %v, want ErrInvalidEPK", err)
	}
	if _, err := Width(3, Full); !errors.Is(err, ErrUnsupportedVersion) {
		t.Errorf("Width(version 3): %v, want ErrUnsupportedVersion", err)
	}
}
