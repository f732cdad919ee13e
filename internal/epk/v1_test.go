package epk

import (
	"errors"
	"math"
	"strings"
	"testing"
)

func TestTruncateV1(t *testing.T) {
	a99 := strings.Repeat("a", 99)
	tests := []struct {
		name string
		in   any
		want any
	}{
		{"short", "abc", "abc"},
		{"100 units", strings.Repeat("a", 100), strings.Repeat("a", 100)},
		{"101 units", strings.Repeat("a", 101), strings.Repeat("a", 100)},
		{"two-byte runes count once", strings.Repeat("é", 150), strings.Repeat("é", 100)},
		// U+1F600 is a surrogate pair: 98 + 2 fits, 99 + 2 cuts the pair,
		// which .NET Substring and JavaScript substr leave as a lone high
		// surrogate that their UTF-8 encoders write as U+FFFD.
		{"pair fits", strings.Repeat("a", 98) + "😀" + "b", strings.Repeat("a", 98) + "😀"},
		{"pair cut", a99 + "😀", a99 + "\uFFFD"},
		{"invalid UTF-8 byte counts one unit", strings.Repeat("\xff", 120), strings.Repeat("\xff", 100)},
		{"number", 1.5, 1.5},
		{"nil", nil, nil},
	}
	for _, tt := range tests {
		if got := truncateV1(tt.in); got != tt.want {
			t.Errorf("%s: truncateV1 = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestNumberBinaryRoundTrip(t *testing.T) {
	for _, x := range []float64{0, 1, 2, 5, 5.5, -1, -128, 127, 2147483647, 4294967295, 131072,
		math.MaxFloat64, -math.MaxFloat64, math.SmallestNonzeroFloat64, math.Inf(1), math.Inf(-1), 12313.1221} {
		enc := appendNumberBinary(nil, x)
		got, n, err := decodeNumberBinary(append(enc, 0x08, 0x62, 0x00))
		if err != nil || got != x || n != len(enc) {
			t.Errorf("decode(encode(%v) = %X) = %v, %d, %v", x, enc, got, n, err)
		}
	}
	// -0 encodes as 0 (the payload of a negative double is its two's
	// complement), as in the service.
	if neg, pos := appendNumberBinary(nil, math.Copysign(0, -1)), appendNumberBinary(nil, 0); string(neg) != string(pos) {
		t.Errorf("-0 = %X, 0 = %X", neg, pos)
	}
	// The encoding orders like the numbers.
	prev := ""
	for _, x := range []float64{math.Inf(-1), -1e300, -5, -1, -math.SmallestNonzeroFloat64, 0, math.SmallestNonzeroFloat64, 1, 2, 2.5, 4294967295, 1e300, math.Inf(1)} {
		e := string(appendHex(nil, appendNumberBinary(nil, x)))
		if prev != "" && Compare(prev, e) >= 0 {
			t.Errorf("encode(%v) = %s does not sort after %s", x, e, prev)
		}
		prev = e
	}
	for _, bad := range [][]byte{nil, {0x05}, {0x05, 0xC1}, {0x08, 0xC1, 0x00}, {0x05, 0xC1, 0xDF, 0xFF},
		append([]byte{0x05, 0xC1}, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFE)} {
		if _, _, err := decodeNumberBinary(bad); !errors.Is(err, errNumberEncoding) {
			t.Errorf("decode(%X) error = %v, want errNumberEncoding", bad, err)
		}
	}
}

// Outputs of @azure/cosmos 4.10.1 hashV1PartitionKey (and of
// hashPartitionKey for a container without "version"), taken with node from
// the copy scripts/conformance-js.sh installs. "p0" is the key whose EPK
// showed that the earlier simplified form was wrong. The others show the
// JavaScript SDK's two encoding quirks (v1.go): the EPKs differ only after
// the hash, so a JavaScript client routes these keys to the same partition
// key range as the service.
func TestHashV1JavaScriptRuntime(t *testing.T) {
	tests := []struct {
		key  any
		js   string
		want string // the service's form, where it differs
	}{
		{"p0", "05C1CD3FDB575008713100", ""},
		{"k0", "05C1D54B2D9FB8086C3100", ""},
		{"k1", "05C1EB49D775B0086C3200", ""},
		{-1.0, "05C1D1A5BDDF9C054010", ""},
		// A number whose payload ends after its first byte: JavaScript drops
		// the 00 chunk.
		{2.0, "05C1D93569113805C0", "05C1D93569113805C000"},
		{0.0, "05C1BF6DA115600580", "05C1BF6DA11560058000"},
		// 120 UTF-8 bytes in 60 characters: JavaScript keeps them all; the
		// service cuts after 101 bytes, mid-character, without terminator.
		{strings.Repeat("é", 60), "05C1A329C995C008" + strings.Repeat("C4AA", 60) + "00", "05C1A329C995C008" + strings.Repeat("C4AA", 50) + "C4"},
		// The cut surrogate pair: 99 + 3 bytes.
		{strings.Repeat("a", 99) + "😀", "05C1E153DB455808" + strings.Repeat("62", 99) + "F0C0BE00", "05C1E153DB455808" + strings.Repeat("62", 99) + "F0C0"},
	}
	for _, tt := range tests {
		got, err := Hash(defV1, []any{tt.key})
		want := tt.want
		if want == "" {
			want = tt.js
		}
		if err != nil || got != want {
			t.Errorf("Hash(V1, %.20q) = %q, %v\nwant %q", tt.key, got, err, want)
		}
		if hashOfV1(t, got) != hashOfV1(t, tt.js) {
			t.Errorf("Hash(V1, %.20q) = %q: hash differs from JavaScript's %q", tt.key, got, tt.js)
		}
	}
}
