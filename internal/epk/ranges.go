package epk

import (
	"sort"
	"strings"
)

// The ends of the EPK space, as the service writes them in partition key
// ranges.
const (
	// MinEPK is the inclusive bottom of every version's space; it compares
	// below (or equal to, see Compare) every EPK.
	MinEPK = ""
	// MaxEPK is the exclusive top of every version's space. Version 2 EPKs
	// start with a digit 0-3 and version 1 EPKs with "05" (a number
	// component), so every EPK Hash returns compares below it.
	MaxEPK = "FF"
)

// Compare orders two EPK strings the way the service and the SDK do,
// length-aware: the shorter string is read as if padded on the right with
// '0', so "AB" == "AB00" and a 32-char boundary equals its 64-char
// zero-padded form, which hierarchical (MultiHash) partition key ranges mix.
// It returns -1, 0 or +1.
//
// Version 1 EPKs vary in length (a number-encoded hash, then the key). The
// number encoding is prefix-free and order-preserving, so the key after a
// hash never reorders two hashes and every EPK of a hash sorts at or after
// the boundary written as that hash. The service compares them ordinally;
// the two orders differ only for a string and itself followed by '0's (a
// boundary B and B+"00", the undefined key hashing exactly to B), which both
// place in the range that starts at B.
//
// For strings of hex digits this is exactly the SDK's CompareEPK. It is a
// total preorder on all strings: Compare(a, b) == 0 exactly when a and b are
// equal once trailing '0's are trimmed. "" (MinEPK) is the minimum of all hex
// strings. Digits compare by byte, so EPKs must be uppercase, as the service
// writes them.
// Compare does not allocate.
func Compare(a, b string) int {
	n := min(len(a), len(b))
	if c := strings.Compare(a[:n], b[:n]); c != 0 {
		return c
	}
	// Equal up to n: the longer string's tail is compared against padding.
	for i := n; i < len(a); i++ {
		if a[i] != '0' {
			if a[i] > '0' {
				return 1
			}
			return -1
		}
	}
	for i := n; i < len(b); i++ {
		if b[i] != '0' {
			if b[i] > '0' {
				return -1
			}
			return 1
		}
	}
	return 0
}

// Range is a half-open EPK range [Min, Max), such as a physical partition's
// partition key range; the JSON names are the service's. Min "" is the bottom
// of the space and Max "FF" its top.
type Range struct {
	Min string `json:"minInclusive"`
	Max string `json:"maxExclusive"`
}

// Full is the whole EPK space, the range of a container with one physical
// partition.
var Full = Range{Min: MinEPK, Max: MaxEPK}

// Contains reports whether epk lies in [r.Min, r.Max) under Compare. A Max of
// exactly "FF" is the open top of the space, as in the SDK's routing: every
// EPK at or above Min is in it, even an unmasked one that starts with "FF".
// Contains does not allocate.
func (r Range) Contains(epk string) bool {
	if Compare(r.Min, epk) > 0 {
		return false
	}
	return r.Max == MaxEPK || Compare(epk, r.Max) < 0
}

// IsEmpty reports whether r holds no EPK: Min is not below Max. A range
// whose Max is "FF" is never empty (see Contains).
func (r Range) IsEmpty() bool {
	return r.Max != MaxEPK && Compare(r.Min, r.Max) >= 0
}

// Find returns the index of the range in ranges that contains epk, by binary
// search, and false when none does (a gap in ranges, or epk below the first
// range). ranges must be sorted by Min and must not overlap, as a
// container's partition key ranges are; the emulator calls Find once per
// request, so it does not allocate.
func Find(ranges []Range, epk string) (int, bool) {
	// The last range whose Min is at or below epk is the only candidate.
	i := sort.Search(len(ranges), func(i int) bool {
		return Compare(ranges[i].Min, epk) > 0
	}) - 1
	if i < 0 || !ranges[i].Contains(epk) {
		return 0, false
	}
	return i, true
}

// Overlapping returns the half-open index span [first, end) of the ranges
// that share at least one EPK with q, such as the physical partitions a
// prefix key (PrefixRange) or a feed range must visit. ranges must be sorted
// and must not overlap, as for Find. An empty q, or one that misses every
// range, gives first == end.
func Overlapping(ranges []Range, q Range) (first, end int) {
	if q.IsEmpty() {
		return 0, 0
	}
	// first: the first range that does not end at or before q.Min.
	first = sort.Search(len(ranges), func(i int) bool {
		return ranges[i].Max == MaxEPK || Compare(ranges[i].Max, q.Min) > 0
	})
	// end: the first range that starts at or after q.Max.
	end = sort.Search(len(ranges), func(i int) bool {
		return q.Max != MaxEPK && Compare(ranges[i].Min, q.Max) >= 0
	})
	// end is always >= first for well-formed ranges; guard against an empty
	// range in the input all the same.
	return first, max(first, end)
}
