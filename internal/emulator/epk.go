package emulator

import (
	"math/big"
	"strings"

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
// the largest range to split. Only the first 32 digits count.
func rangeWidth(version int, min, max string) *big.Int {
	return new(big.Int).Sub(epkValue(version, max), epkValue(version, min))
}

func epkValue(version int, s string) *big.Int {
	if strings.TrimRight(s, "0") == maxEPK {
		top := new(big.Int).Lsh(big.NewInt(1), 126) // version 2: the top two bits are masked off
		if version == 1 {
			top = new(big.Int).Lsh(big.NewInt(1), 32) // version 1: 24 zeros then a 32-bit hash
		}
		return top
	}
	if len(s) > 32 {
		s = s[:32]
	}
	s += strings.Repeat("0", 32-len(s))
	v, _ := new(big.Int).SetString(s, 16)
	if v == nil {
		return new(big.Int)
	}
	return v
}
