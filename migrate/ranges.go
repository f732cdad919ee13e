package migrate

import (
	"github.com/rekey-dev/rekey/internal/epk"
	"github.com/rekey-dev/rekey/lease"
)

// FeedRange is a range of effective partition keys [Min, Max), as the
// service lists them ("" is the start, "FF" the end): a source's feed range,
// which one lease covers, or one of a target's physical partitions, which
// the flow control paces.
//
// Three packages name such a range: this one, lease.Range (what a lease
// records) and epk.Range (what EPK arithmetic works on). They convert here
// and nowhere else.
type FeedRange struct {
	Min string `json:"min"`
	Max string `json:"max"`
}

// LeaseRange is the range as a lease records it.
func (r FeedRange) LeaseRange() lease.Range { return lease.Range{Min: r.Min, Max: r.Max} }

// EPKRange is the range for EPK arithmetic (epk.Find, splits).
func (r FeedRange) EPKRange() epk.Range { return epk.Range{Min: r.Min, Max: r.Max} }

// FeedRangeOf is the feed range a lease covers.
func FeedRangeOf(r lease.Range) FeedRange { return FeedRange{Min: r.Min, Max: r.Max} }

// LeaseRanges converts feed ranges to the lease package's ranges, as
// lease.Meta records them.
func LeaseRanges(frs []FeedRange) []lease.Range {
	out := make([]lease.Range, len(frs))
	for i, r := range frs {
		out[i] = r.LeaseRange()
	}
	return out
}

// EPK is the definition as the epk package hashes keys with it (Key.EPK).
func (d Definition) EPK() epk.Definition {
	return epk.Definition{Paths: d.Paths, Kind: epk.Kind(d.Kind), Version: epk.Version(d.Version)}
}
