package epk

import (
	"fmt"
	"math"
	"math/big"
	"math/bits"
	"strings"
)

// The numeric EPK space, used to place physical partition boundaries. Each
// version reads a point of its space from an EPK differently, and writes its
// boundaries as the service does:
//
//   - version 2: the first 32 hex digits read as a 128-bit big-endian number;
//     a shorter string is padded with '0' on the right, as Compare reads it,
//     and digits past the 32nd (the second and third components of a
//     MultiHash key) do not move a boundary. The top of the space, which
//     "FF" stands for, is 2^126 (0x40 followed by 15 zero bytes), because the
//     routing mask leaves every hash below it. Boundaries are 32 uppercase
//     hex digits.
//   - version 1: the value of the EPK's first component, the binary-encoded
//     number that holds the key's 32-bit hash (v1.go); the key's own
//     component after it does not move a boundary. "FF" stands for
//     4294967295 (uint.MaxValue), as in the service's
//     PartitionKeyInternal.GetMinInclusiveEffectivePartitionKey and
//     GetMiddleRangeEffectivePartitionKey. Boundaries are whole numbers
//     written as a number component ("05C1DFFFFFFFFC" is 2147483647, the
//     boundary of a container created with two partitions).
//
// In both, "" is 0, and a string of '0's equals "" as under Compare.

// MaxParts is the most parts SplitPoints divides a range into. It only bounds
// the allocation on a bad request: real containers have far fewer physical
// partitions (one per 10,000 RU/s or 50 GB).
const MaxParts = 1 << 16

// uint128 is an unsigned 128-bit integer: the value of a 32-digit EPK.
type uint128 struct{ hi, lo uint64 }

// topOf returns the top of version v's space, the value of "FF".
func topOf(v Version) uint128 {
	if v.effective() == Version1 {
		return uint128{lo: math.MaxUint32}
	}
	return uint128{hi: 1 << 62}
}

// formatPoint writes val, a point of version v's space, as a boundary.
func formatPoint(v Version, val uint128) string {
	if v.effective() == Version1 {
		var buf [16]byte
		return string(appendHex(nil, appendNumberBinary(buf[:0], float64(val.lo))))
	}
	return val.hex32()
}

func (a uint128) cmp(b uint128) int {
	switch {
	case a.hi != b.hi:
		if a.hi < b.hi {
			return -1
		}
		return 1
	case a.lo != b.lo:
		if a.lo < b.lo {
			return -1
		}
		return 1
	}
	return 0
}

// add returns a+b; callers stay inside the space, so it never wraps.
func (a uint128) add(b uint128) uint128 {
	lo, carry := bits.Add64(a.lo, b.lo, 0)
	hi, _ := bits.Add64(a.hi, b.hi, carry)
	return uint128{hi, lo}
}

// sub returns a-b for a >= b.
func (a uint128) sub(b uint128) uint128 {
	lo, borrow := bits.Sub64(a.lo, b.lo, 0)
	hi, _ := bits.Sub64(a.hi, b.hi, borrow)
	return uint128{hi, lo}
}

// mul64 returns a*m; callers guarantee the product fits in 128 bits.
func (a uint128) mul64(m uint64) uint128 {
	carry, lo := bits.Mul64(a.lo, m)
	return uint128{hi: a.hi*m + carry, lo: lo}
}

// divmod64 returns a/d and a%d for d > 0.
func (a uint128) divmod64(d uint64) (uint128, uint64) {
	qhi, r := a.hi/d, a.hi%d
	qlo, r := bits.Div64(r, a.lo, d)
	return uint128{qhi, qlo}, r
}

// hex32 formats a as 32 uppercase hex digits.
func (a uint128) hex32() string {
	var b [32]byte
	putHex64(b[0:16], a.hi)
	putHex64(b[16:32], a.lo)
	return string(b[:])
}

// nibble returns the value of an uppercase hex digit, or false.
func nibble(c byte) (uint64, bool) {
	switch {
	case c >= '0' && c <= '9':
		return uint64(c - '0'), true
	case c >= 'A' && c <= 'F':
		return uint64(c-'A') + 10, true
	}
	return 0, false
}

// parseEPK reads s as a point of version v's space: its value and whether
// the EPK lies above that value (digits past the 32nd for version 2, a key
// after the number or a fractional number for version 1). "FF", with any
// trailing '0's, is the top of the space. Errors wrap ErrInvalidEPK: a
// character that is not an uppercase hex digit, a version 1 EPK that does not
// start with a number component, or a value above the top of the space.
func parseEPK(v Version, s string) (val uint128, inexact bool, err error) {
	top := topOf(v)
	if strings.TrimRight(s, "0") == MaxEPK {
		return top, false, nil
	}
	for i := 0; i < len(s); i++ {
		if _, ok := nibble(s[i]); !ok {
			return uint128{}, false, fmt.Errorf("%w: %q: character %q at %d is not an uppercase hex digit", ErrInvalidEPK, s, s[i], i)
		}
	}
	if v.effective() == Version1 {
		return parseV1(s)
	}
	for i := 0; i < len(s); i++ {
		d, _ := nibble(s[i])
		if i < 32 {
			val = uint128{hi: val.hi<<4 | val.lo>>60, lo: val.lo<<4 | d}
		} else if d != 0 {
			inexact = true
		}
	}
	for i := len(s); i < 32; i++ {
		val = uint128{hi: val.hi<<4 | val.lo>>60, lo: val.lo << 4}
	}
	if c := val.cmp(top); c > 0 || c == 0 && inexact {
		return uint128{}, false, fmt.Errorf("%w: %q is above the top of the version %d space (%s)", ErrInvalidEPK, s, int(v.effective()), top.hex32())
	}
	return val, inexact, nil
}

// parseV1 reads s, a string of uppercase hex digits that is not "FF", as a
// point of the version 1 space: the whole part of its first component,
// which must be a number in [0, 4294967295]. A key after the number, or a
// fraction, makes the point inexact. An EPK of a key whose hash is
// 4294967295 is the top, inexact: no boundary fits above it.
func parseV1(s string) (uint128, bool, error) {
	if strings.TrimRight(s, "0") == "" {
		return uint128{}, false, nil
	}
	b := make([]byte, (len(s)+1)/2) // an odd digit count is padded with '0'
	for i := 0; i < len(s); i++ {
		d, _ := nibble(s[i])
		b[i/2] |= byte(d) << (4 * (1 - i%2))
	}
	x, n, err := decodeNumberBinary(b)
	if err != nil {
		return uint128{}, false, fmt.Errorf("%w: %q is not a version 1 EPK: %w", ErrInvalidEPK, s, err)
	}
	whole := math.Floor(x)
	if math.IsNaN(x) || x < 0 || whole > math.MaxUint32 {
		return uint128{}, false, fmt.Errorf("%w: %q is not a version 1 EPK: its number %v is outside [0, %d]", ErrInvalidEPK, s, x, uint32(math.MaxUint32))
	}
	inexact := whole != x
	for _, c := range b[n:] {
		inexact = inexact || c != 0
	}
	return uint128{lo: uint64(whole)}, inexact, nil
}

// Width returns the size of r in version v's space: the value of r.Max less
// the value of r.Min, as parseEPK reads them, or 0 when r is empty. The
// emulator uses it to pick the widest partition to split. Errors are
// parseEPK's, wrapping ErrInvalidEPK or ErrUnsupportedVersion.
func Width(v Version, r Range) (*big.Int, error) {
	if err := v.Validate(); err != nil {
		return nil, fmt.Errorf("width of [%q, %q): %w", r.Min, r.Max, err)
	}
	lo, _, err := parseEPK(v, r.Min)
	if err != nil {
		return nil, fmt.Errorf("width of [%q, %q): min: %w", r.Min, r.Max, err)
	}
	hi, _, err := parseEPK(v, r.Max)
	if err != nil {
		return nil, fmt.Errorf("width of [%q, %q): max: %w", r.Min, r.Max, err)
	}
	if hi.cmp(lo) <= 0 {
		return new(big.Int), nil
	}
	w := hi.sub(lo)
	return new(big.Int).Or(new(big.Int).Lsh(new(big.Int).SetUint64(w.hi), 64), new(big.Int).SetUint64(w.lo)), nil
}

// SplitPoints returns the parts-1 boundaries that divide [min, max) of
// version v's space into parts ranges of equal width, in increasing order,
// each strictly between min and max and written as the version writes
// boundaries (see the top of this file). min is "" or an EPK, max an EPK or
// "FF". It is used to lay out a new container's physical partitions,
// SplitPoints(v, "", "FF", n), and to split a partition at its midpoint,
// SplitPoints(v, r.Min, r.Max, 2).
//
// Version 2 places boundary i at min + floor(width*i/parts), so widths differ
// by at most one unit. Version 1 places it at min + i*floor(width/parts), the
// service's arithmetic (GetMinInclusiveEffectivePartitionKey for a new
// container, GetMiddleRangeEffectivePartitionKey for a split), so the last
// range takes the remainder and the boundaries are the ones a real version 1
// container has.
//
// Boundaries fall on whole values of the space: a min that lies above its
// value (see parseEPK) is rounded up and such a max rounded down, so a range
// inside one first-level MultiHash key, or inside one version 1 hash, cannot
// be split and is reported as too narrow. parts == 1 returns an empty slice.
// Errors wrap ErrUnsupportedVersion, ErrInvalidEPK (a malformed bound, or one
// outside the space) or ErrInvalidSplit (parts outside 1..MaxParts, min not
// below max, or fewer than parts values between them); SplitPoints never
// panics.
func SplitPoints(v Version, min, max string, parts int) ([]string, error) {
	if err := v.Validate(); err != nil {
		return nil, fmt.Errorf("split [%q, %q): %w", min, max, err)
	}
	if parts < 1 || parts > MaxParts {
		return nil, fmt.Errorf("split [%q, %q): %w: parts %d not in 1..%d", min, max, ErrInvalidSplit, parts, MaxParts)
	}
	lo, loInexact, err := parseEPK(v, min)
	if err != nil {
		return nil, fmt.Errorf("split [%q, %q): min: %w", min, max, err)
	}
	hi, _, err := parseEPK(v, max)
	if err != nil {
		return nil, fmt.Errorf("split [%q, %q): max: %w", min, max, err)
	}
	// Compare the bounds with "FF" replaced by the top written as a
	// boundary, so that the string order is the numeric order.
	if Compare(canonical(v, min), canonical(v, max)) >= 0 {
		return nil, fmt.Errorf("split [%q, %q): %w: min is not below max", min, max, ErrInvalidSplit)
	}
	if parts == 1 {
		return []string{}, nil
	}
	if loInexact {
		lo = lo.add(uint128{lo: 1})
	}
	if hi.cmp(lo) <= 0 || hi.sub(lo).cmp(uint128{lo: uint64(parts)}) < 0 {
		return nil, fmt.Errorf("split [%q, %q): %w: too narrow for %d parts", min, max, ErrInvalidSplit, parts)
	}

	// Boundary i is lo + floor(width*i/parts). width*i can exceed 128 bits,
	// so split width into step*parts + rem: floor(width*i/parts) is then
	// step*i + floor(rem*i/parts), where step*i < width and rem*i < parts^2.
	step, rem := hi.sub(lo).divmod64(uint64(parts))
	if v.effective() == Version1 {
		rem = 0 // the service's min + i*((max-min)/n)
	}
	points := make([]string, 0, parts-1)
	for i := uint64(1); i < uint64(parts); i++ {
		b := lo.add(step.mul64(i)).add(uint128{lo: rem * i / uint64(parts)})
		points = append(points, formatPoint(v, b))
	}
	return points, nil
}

// canonical replaces the "FF" sentinel (with any trailing '0's) by the top
// of version v's space written as a boundary; other strings are returned as
// they are.
func canonical(v Version, s string) string {
	if strings.TrimRight(s, "0") == MaxEPK {
		return formatPoint(v, topOf(v))
	}
	return s
}

// SplitRange divides r into parts contiguous ranges at SplitPoints(v, r.Min,
// r.Max, parts): the first starts at r.Min, the last ends at r.Max, and each
// ends where the next begins. It is how the emulator creates a container's
// physical partitions (SplitRange(v, Full, n)) and splits one in two. Errors
// are SplitPoints's.
func SplitRange(v Version, r Range, parts int) ([]Range, error) {
	points, err := SplitPoints(v, r.Min, r.Max, parts)
	if err != nil {
		return nil, err
	}
	out := make([]Range, 0, parts)
	prev := r.Min
	for _, p := range points {
		out = append(out, Range{Min: prev, Max: p})
		prev = p
	}
	return append(out, Range{Min: prev, Max: r.Max}), nil
}
