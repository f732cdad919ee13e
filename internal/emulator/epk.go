package emulator

import (
	"math/big"

	"github.com/rekey-dev/rekey/internal/epk"
)

// The EPK space ends, as partition key ranges write them.
const (
	minEPK = epk.MinEPK
	maxEPK = epk.MaxEPK
)

// compareEPK orders EPK strings as the service and the SDK do.
func compareEPK(a, b string) int { return epk.Compare(a, b) }

// splitPoints divides [min, max) of a version's EPK space into parts.
func splitPoints(version int, min, max string, parts int) ([]string, error) {
	return epk.SplitPoints(epk.Version(version), min, max, parts)
}

// definition is the container's key definition in the epk package's terms.
func (d pkDefinition) definition() epk.Definition {
	return epk.Definition{Paths: d.rawPaths, Kind: epk.Kind(d.kind), Version: epk.Version(d.version)}
}

// epkOf returns the effective partition key of a full key value. Values come
// from parsePKHeader or extractPK and were checked against the definition,
// so hashing cannot fail.
func (c *container) epkOf(pk []any) string {
	vals := make([]any, len(pk))
	for i, v := range pk {
		if _, ok := v.(undefined); ok {
			v = epk.Undefined{}
		}
		vals[i] = v
	}
	h, err := epk.Hash(c.pk.definition(), vals)
	if err != nil {
		panic("emulator: hash a validated partition key: " + err.Error())
	}
	return h
}

// rangeWidth is the size of [min, max) in a version's EPK space, for picking
// the largest range to split. The emulator's own ranges always parse; a range
// that did not would be skipped as empty.
func rangeWidth(version int, min, max string) *big.Int {
	w, err := epk.Width(epk.Version(version), epk.Range{Min: min, Max: max})
	if err != nil {
		return new(big.Int)
	}
	return w
}
