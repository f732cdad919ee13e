package epk

import (
	"errors"
	"math"
	"strings"
	"testing"
)

// isUpperHex reports whether s is all uppercase hex digits.
func isUpperHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if _, ok := nibble(s[i]); !ok {
			return false
		}
	}
	return true
}

// checkEPK asserts the shape of a version 2 EPK Hash returned: 32 digits per
// component, uppercase hex, each hash masked below 0x40, and below "FF".
func checkEPK(t *testing.T, epk string, components int) {
	t.Helper()
	if len(epk) != 32*components || !isUpperHex(epk) {
		t.Fatalf("EPK %q: want %d uppercase hex digits", epk, 32*components)
	}
	for i := 0; i < len(epk); i += 32 {
		if part := epk[i : i+32]; part[0] > '3' {
			t.Fatalf("V2 EPK %q: part %q not masked", epk, part)
		}
	}
	if Compare(epk, MaxEPK) >= 0 || !Full.Contains(epk) {
		t.Fatalf("EPK %q not below FF", epk)
	}
}

// checkEPKV1 asserts the shape of a version 1 EPK of key: uppercase hex of
// at most maxEPKLenV1 digits; a number component holding a whole number below
// 2^32, equal to murmur32 of the truncated key's hashing encoding; then the
// truncated key's binary encoding, which keeps at most 101 string bytes.
func checkEPKV1(t *testing.T, epk string, key any) {
	t.Helper()
	if len(epk)%2 != 0 || len(epk) > maxEPKLenV1 || !isUpperHex(epk) || !Full.Contains(epk) {
		t.Fatalf("V1 EPK %q: want at most %d uppercase hex digits below FF", epk, maxEPKLenV1)
	}
	b := make([]byte, len(epk)/2)
	for i := range b {
		hi, _ := nibble(epk[2*i])
		lo, _ := nibble(epk[2*i+1])
		b[i] = byte(hi<<4 | lo)
	}
	x, n, err := decodeNumberBinary(b)
	if err != nil || x != math.Trunc(x) || x < 0 || x > math.MaxUint32 {
		t.Fatalf("V1 EPK %q: first component %v, %v is not a 32-bit hash", epk, x, err)
	}
	truncated := truncateV1(key)
	if s, ok := truncated.(string); ok {
		orig := key.(string)
		if !strings.HasPrefix(orig, strings.TrimSuffix(s, "\uFFFD")) ||
			utf16Len(s) != min(utf16Len(orig), maxStringUnits) {
			t.Fatalf("truncated %q (%d UTF-16 units) to %q (%d)", orig, utf16Len(orig), s, utf16Len(s))
		}
	}
	enc, _ := appendComponent(nil, truncated, stringEndV1)
	if h := murmur32(enc, 0); float64(h) != x {
		t.Fatalf("V1 EPK %q carries hash %v, want %#x", epk, x, h)
	}
	if rest := appendBinaryComponent(nil, truncated); string(b[n:]) != string(rest) {
		t.Fatalf("V1 EPK %q: key part %X, want %X", epk, b[n:], rest)
	}
	if s, ok := truncated.(string); ok && len(b)-n > maxStringBytes+2 {
		t.Fatalf("V1 EPK %q keeps %d bytes of %d", epk, len(b)-n, len(s))
	}
}

// utf16Len counts s in UTF-16 code units.
func utf16Len(s string) int {
	n := 0
	for _, r := range s {
		n++
		if r >= 0x10000 {
			n++
		}
	}
	return n
}

func FuzzHash(f *testing.F) {
	f.Add("", 0.0, false)
	f.Add("asdf", -1.0, true)
	f.Add(strings.Repeat("a", 101), math.Inf(1), false)
	f.Add("\xff\x00é", math.NaN(), true)
	f.Add(strings.Repeat("é", 80), math.Copysign(0, -1), false)
	f.Add(strings.Repeat("a", 99)+"😀", 2.0, false)
	f.Add(strings.Repeat("😀", 60), 131072.0, true)
	f.Fuzz(func(t *testing.T, s string, x float64, b bool) {
		keys := [][]any{{s}, {x}, {b}, {nil}, {Undefined{}}}
		for _, key := range keys {
			e1, err := Hash(defV1, key)
			if err != nil {
				t.Fatalf("Hash(V1, %v): %v", key, err)
			}
			checkEPKV1(t, e1, key[0])
			e2, err := Hash(defV2, key)
			if err != nil {
				t.Fatalf("Hash(V2, %v): %v", key, err)
			}
			checkEPK(t, e2, 1)
			// One component: kind Hash and kind MultiHash hash alike.
			if m, err := Hash(Definition{Paths: []string{"/a"}, Kind: KindMultiHash, Version: Version2}, key); err != nil || m != e2 {
				t.Fatalf("MultiHash of one = %q, %v; Hash = %q", m, err, e2)
			}
			// The mask only clears the top two bits of the raw hash.
			raw, err := appendEPK(nil, key, Version2, false, false)
			if err != nil || string(raw[1:]) != e2[1:] {
				t.Fatalf("raw %q vs masked %q (%v)", raw, e2, err)
			}
			if d, _ := nibble(raw[0]); hexDigits[d&3] != e2[0] {
				t.Fatalf("raw %q masks to %q", raw, e2)
			}
			// Deterministic.
			if again, _ := Hash(defV2, key); again != e2 {
				t.Fatalf("Hash not deterministic: %q then %q", e2, again)
			}
		}

		// MultiHash: each component's 32 digits are that component alone,
		// and the key lies in the range of each of its prefixes.
		full, err := Hash(defMulti3, []any{s, x, b})
		if err != nil {
			t.Fatal(err)
		}
		checkEPK(t, full, 3)
		for i, c := range []any{s, x, b} {
			alone, _ := Hash(defV2, []any{c})
			if full[32*i:32*i+32] != alone {
				t.Fatalf("component %d: %q in %q, alone %q", i, full[32*i:32*i+32], full, alone)
			}
		}
		for n := 1; n < 3; n++ {
			r, err := PrefixRange(defMulti3, []any{s, x, b}[:n])
			if err != nil || !r.Contains(full) {
				t.Fatalf("PrefixRange(%d) = %+v, %v; does not contain %q", n, r, err, full)
			}
		}
	})
}

// padCompare is the reference order: pad the shorter string with '0' and
// compare bytes.
func padCompare(a, b string) int {
	n := max(len(a), len(b))
	return strings.Compare(a+strings.Repeat("0", n-len(a)), b+strings.Repeat("0", n-len(b)))
}

func FuzzCompare(f *testing.F) {
	f.Add("", "", "")
	f.Add("06AB34CFE4E482236BCACBBF50E234AB", "06AB34CFE4E482236BCACBBF50E234AB00000000000000000000000000000000", "FF")
	f.Add("AB", "AB01", "AB0")
	f.Add("0/", "0", "")
	f.Fuzz(func(t *testing.T, a, b, c string) {
		ab, ba := Compare(a, b), Compare(b, a)
		if ab != -ba || ab < -1 || ab > 1 {
			t.Fatalf("Compare(%q, %q) = %d but reversed %d", a, b, ab, ba)
		}
		if ref := padCompare(a, b); ab != ref {
			t.Fatalf("Compare(%q, %q) = %d, padded reference %d", a, b, ab, ref)
		}
		if (ab == 0) != (strings.TrimRight(a, "0") == strings.TrimRight(b, "0")) {
			t.Fatalf("Compare(%q, %q) = %d disagrees with equality after trimming zeros", a, b, ab)
		}
		if Compare(a, a) != 0 {
			t.Fatalf("Compare(%q, itself) != 0", a)
		}
		bc, ac := Compare(b, c), Compare(a, c)
		if ab <= 0 && bc <= 0 && ac > 0 {
			t.Fatalf("not transitive: %q <= %q <= %q but Compare(a, c) = %d", a, b, c, ac)
		}
		if ab == 0 && bc != ac {
			t.Fatalf("equal %q and %q order differently against %q", a, b, c)
		}
		if isUpperHex(a) && Compare(MinEPK, a) > 0 {
			t.Fatalf("%q below MinEPK", a)
		}
	})
}

// fuzzBound builds a bound from fuzz input: a 128-bit value (for version 1,
// a number up to just above the top of the space), optionally cut short or
// extended with a tail, or one of the sentinels.
func fuzzBound(v Version, hi, lo uint64, cut uint8, tail string, sel uint8) string {
	switch sel % 8 {
	case 0:
		return MinEPK
	case 1:
		return MaxEPK
	}
	s := uint128{hi, lo}.hex32()
	if v.effective() == Version1 && sel%8 != 7 { // 7: a version 2 form, refused
		s = refEncodeV1(lo % (refTopV1 + 3))
	}
	if sel%8 == 2 {
		return s[:int(cut)%(len(s)+1)]
	}
	return s + tail
}

func FuzzSplitPoints(f *testing.F) {
	f.Add(uint8(2), uint64(0), uint64(0), uint64(0), uint64(0), uint8(0), "", "", uint8(0), uint8(1), uint16(5), "0D")
	f.Add(uint8(2), uint64(0x3333333333333333), uint64(0x3333333333333333), uint64(0), uint64(0), uint8(0), "", "", uint8(3), uint8(1), uint16(2), "39")
	f.Add(uint8(1), uint64(0), uint64(1<<31), uint64(0), uint64(1<<32), uint8(0), "", "", uint8(3), uint8(3), uint16(7), "05C1E7FFFFFFFE08713100")
	f.Add(uint8(1), uint64(0), uint64(10), uint64(0), uint64(13), uint8(0), "08713100", "", uint8(3), uint8(4), uint16(4), "05C026")
	f.Add(uint8(0), uint64(0), uint64(0), uint64(0), uint64(0), uint8(5), "", "", uint8(2), uint8(7), uint16(4), "")
	f.Add(uint8(2), uint64(0x0DAE0B8467B011E9), uint64(0x57BC0B8B0DEB5ACA), uint64(0x0DAE0B8467B011E9), uint64(0x57BC0B8B0DEB5AD0), uint8(0), "8", "FF", uint8(3), uint8(3), uint16(3), "0DAE")
	f.Fuzz(func(t *testing.T, ver uint8, minHi, minLo, maxHi, maxLo uint64, cut uint8, minTail, maxTail string, minSel, maxSel uint8, parts16 uint16, probe string) {
		v := Version(ver % 4) // 3 is unsupported
		min := fuzzBound(v, minHi, minLo, cut, minTail, minSel)
		max := fuzzBound(v, maxHi, maxLo, cut, maxTail, maxSel)
		parts := int(parts16%600) - 2 // -2..597, with 0 and negatives refused

		got, err := SplitPoints(v, min, max, parts)
		want, ok := refSplit(v, min, max, parts)
		if !ok {
			if err == nil {
				t.Fatalf("SplitPoints(%d, %q, %q, %d) = %q, want an error", v, min, max, parts, got)
			}
			if !errors.Is(err, ErrInvalidSplit) && !errors.Is(err, ErrInvalidEPK) && !errors.Is(err, ErrUnsupportedVersion) {
				t.Fatalf("error %v wraps no sentinel", err)
			}
			return
		}
		if err != nil || len(got) != len(want) {
			t.Fatalf("SplitPoints(%d, %q, %q, %d) = %q, %v; reference %q", v, min, max, parts, got, err, want)
		}
		r := Range{Min: min, Max: max}
		prev := min
		for i, b := range got {
			if b != want[i] {
				t.Fatalf("boundary %d = %q, reference %q", i, b, want[i])
			}
			if v.effective() == Version2 && (len(b) != 32 || !isUpperHex(b)) {
				t.Fatalf("boundary %q is not 32 uppercase hex digits", b)
			}
			if Compare(prev, b) >= 0 || !r.Contains(b) {
				t.Fatalf("boundary %q not strictly after %q inside %+v", b, prev, r)
			}
			prev = b
		}

		// The ranges SplitRange makes tile r: Find agrees with a scan.
		ranges, err := SplitRange(v, r, parts)
		if err != nil || len(ranges) != parts {
			t.Fatalf("SplitRange = %d ranges, %v", len(ranges), err)
		}
		for _, e := range []string{probe, min, prev} {
			scan := -1
			for i, rr := range ranges {
				if rr.Contains(e) {
					if scan >= 0 {
						t.Fatalf("%q in ranges %d and %d", e, scan, i)
					}
					scan = i
				}
			}
			i, found := Find(ranges, e)
			if !found {
				i = -1
			}
			if i != scan || found != r.Contains(e) {
				t.Fatalf("Find(%q) = %d, scan %d, in r %v", e, i, scan, r.Contains(e))
			}
		}
	})
}
