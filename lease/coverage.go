package lease

import (
	"fmt"
	"slices"

	"github.com/rekey-dev/rekey/internal/epk"
)

// The bounds of the effective-partition-key space: every feed range lies in
// [MinEPK, MaxEPK).
const (
	MinEPK = ""
	MaxEPK = "FF"
)

// Gaps returns the parts of the EPK space no lease covers, in order. A
// migration's leases must cover the whole space exactly once: a gap is a
// slice of the source nobody copies (a crash while the first leases were
// created leaves one), and an overlap would let two workers apply one item.
// Overlapping leases are an error wrapping ErrCorrupt that names both.
func Gaps(leases []Lease) ([]Range, error) {
	ls := slices.Clone(leases)
	sortLeases(ls)
	var gaps []Range
	at := MinEPK
	for i, l := range ls {
		if epk.Compare(l.Range.Min, l.Range.Max) >= 0 {
			return nil, fmt.Errorf("%w: lease %s covers the empty range [%s, %s)", ErrCorrupt, l.ID, l.Range.Min, l.Range.Max)
		}
		switch c := epk.Compare(l.Range.Min, at); {
		case c > 0:
			gaps = append(gaps, Range{Min: at, Max: l.Range.Min})
		case c < 0:
			return nil, fmt.Errorf("%w: leases %s and %s overlap", ErrCorrupt, ls[i-1].ID, l.ID)
		}
		at = l.Range.Max
	}
	if epk.Compare(at, MaxEPK) < 0 {
		gaps = append(gaps, Range{Min: at, Max: MaxEPK})
	}
	return gaps, nil
}

// Clip returns the parts of ranges that fall inside gap, in order: the
// leases that fill a gap, cut from the migration's feed ranges.
func Clip(ranges []Range, gap Range) []Range {
	var out []Range
	for _, r := range ranges {
		lo, hi := r.Min, r.Max
		if epk.Compare(lo, gap.Min) < 0 {
			lo = gap.Min
		}
		if epk.Compare(hi, gap.Max) > 0 {
			hi = gap.Max
		}
		if epk.Compare(lo, hi) < 0 {
			out = append(out, Range{Min: lo, Max: hi})
		}
	}
	slices.SortFunc(out, func(a, b Range) int { return epk.Compare(a.Min, b.Min) })
	return out
}
