package epk

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Every error this package returns wraps exactly one of
// these (ErrInvalidDefinition may also wrap ErrUnsupportedVersion), so callers
// decide with errors.Is.
var (
	// ErrInvalidDefinition: a Definition the service would refuse (unknown
	// kind, wrong number of paths, MultiHash on version 1, malformed path).
	ErrInvalidDefinition = errors.New("invalid partition key definition")
	// ErrUnsupportedVersion: a partition key version other than 1 or 2.
	ErrUnsupportedVersion = errors.New("unsupported partition key version")
	// ErrComponentCount: more components than the definition has paths, or,
	// for kind Hash, neither one component nor none.
	ErrComponentCount = errors.New("partition key component count does not fit the definition")
	// ErrUnsupportedValue: a component that is not a string, float64, bool,
	// nil or Undefined.
	ErrUnsupportedValue = errors.New("unsupported partition key component type")
	// ErrNotPrefix: PrefixRange was given a key that is not a strict,
	// non-empty prefix of a MultiHash key.
	ErrNotPrefix = errors.New("partition key is not a prefix of a hierarchical key")
	// ErrInvalidEPK: a string that is not an EPK of the version's space
	// (not uppercase hex, or above the top of the space).
	ErrInvalidEPK = errors.New("invalid effective partition key")
	// ErrInvalidSplit: a split request that cannot be met (parts out of
	// bounds, min not below max, or a range narrower than parts).
	ErrInvalidSplit = errors.New("invalid effective partition key range split")
)

// Version is a container's partition key version. Version 0 stands for
// version 1, the value the service assumes when a container definition omits
// "version"; every function here accepts it with that meaning.
type Version int

// The partition key versions the service has.
const (
	// Version1 hashes with MurmurHash3-x86-32 and supports kind Hash only.
	Version1 Version = 1
	// Version2 hashes with MurmurHash3-x64-128; required for MultiHash.
	Version2 Version = 2
)

// Validate returns nil for 0, 1 and 2, and an error wrapping
// ErrUnsupportedVersion otherwise.
func (v Version) Validate() error {
	if v < 0 || v > Version2 {
		return fmt.Errorf("%w: %d", ErrUnsupportedVersion, int(v))
	}
	return nil
}

// effective maps the omitted version 0 to Version1.
func (v Version) effective() Version {
	if v == 0 {
		return Version1
	}
	return v
}

// Kind is a container's partition key kind.
type Kind string

// The partition key kinds this package hashes. The empty Kind stands for
// KindHash, as in a definition that omits "kind".
const (
	// KindHash: one path, one hash over the key.
	KindHash Kind = "Hash"
	// KindMultiHash: a hierarchical key of 1 to MaxPaths paths, each
	// component hashed on its own.
	KindMultiHash Kind = "MultiHash"
)

// MaxPaths is the most paths a MultiHash definition may have.
const MaxPaths = 3

// maxEPKLen is the longest EPK Hash returns: MaxPaths version 2 hashes of
// 32 digits each, or a version 1 hash and truncated key.
const maxEPKLen = max(MaxPaths*32, maxEPKLenV1)

// Definition is a container's partitionKey definition, with the JSON names of
// the service's wire format so that a container body can be decoded into it.
// The zero Kind and Version mean KindHash and Version1, as the service reads
// an omitted field.
type Definition struct {
	Paths   []string `json:"paths"`
	Kind    Kind     `json:"kind,omitempty"`
	Version Version  `json:"version,omitempty"`
}

// EffectiveKind returns the kind the service applies: KindHash when Kind is
// empty, Kind otherwise.
func (d Definition) EffectiveKind() Kind {
	if d.Kind == "" {
		return KindHash
	}
	return d.Kind
}

// EffectiveVersion returns the version the service applies: Version1 when
// Version is 0, Version otherwise.
func (d Definition) EffectiveVersion() Version { return d.Version.effective() }

// Validate reports whether the service would accept d: kind Hash with exactly
// one path, or kind MultiHash on version 2 with 1 to MaxPaths paths; every
// path non-empty and starting with "/". Errors wrap ErrInvalidDefinition.
func (d Definition) Validate() error {
	if err := d.Version.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidDefinition, err)
	}
	switch d.EffectiveKind() {
	case KindHash:
		if len(d.Paths) != 1 {
			return fmt.Errorf("%w: kind Hash needs exactly 1 path, got %d", ErrInvalidDefinition, len(d.Paths))
		}
	case KindMultiHash:
		if d.EffectiveVersion() != Version2 {
			return fmt.Errorf("%w: kind MultiHash needs version 2, got %d", ErrInvalidDefinition, int(d.EffectiveVersion()))
		}
		if len(d.Paths) < 1 || len(d.Paths) > MaxPaths {
			return fmt.Errorf("%w: kind MultiHash needs 1 to %d paths, got %d", ErrInvalidDefinition, MaxPaths, len(d.Paths))
		}
	default:
		return fmt.Errorf("%w: unknown kind %q", ErrInvalidDefinition, string(d.Kind))
	}
	for i, p := range d.Paths {
		if !strings.HasPrefix(p, "/") {
			return fmt.Errorf("%w: path %d %q does not start with /", ErrInvalidDefinition, i, p)
		}
	}
	return nil
}

// IsPrefix reports whether a key of n components is a strict, non-empty
// prefix of a key of d: only MultiHash keys have prefixes. Such a key
// addresses a range of EPKs (see PrefixRange), not a single one.
func (d Definition) IsPrefix(n int) bool {
	return d.EffectiveKind() == KindMultiHash && n > 0 && n < len(d.Paths)
}

// undefinedKey is what an empty key means: one undefined component.
// Read-only.
var undefinedKey = []any{Undefined{}}

// Hash returns the effective partition key of values under d, exactly as the
// service computes it:
//
//   - version 2, kind Hash: MurmurHash3-x64-128 (seed 0) of the encoded key,
//     32 uppercase hex digits, first byte masked to 0x00..0x3F;
//   - version 2, kind MultiHash: each component hashed and masked on its own,
//     32 digits per component given (a prefix gives the prefix's EPK);
//   - version 1: the binary encoding of MurmurHash3-x86-32 (seed 0) of the
//     truncated key, as a number component, followed by the binary encoding
//     of the truncated key (v1.go), in uppercase hex: at most 218 digits,
//     starting "05".
//
// values are the key's components in path order, each a string, float64,
// bool, nil (JSON null) or Undefined{} (field absent). An empty values is the
// undefined key and hashes as a single Undefined{} component, whatever the
// number of paths. Hash validates d and returns an error wrapping
// ErrInvalidDefinition, ErrComponentCount or ErrUnsupportedValue; it never
// panics and allocates only the returned string for keys up to about 100
// bytes.
//
// The azcosmos v1.5.0 SDK computes a different, simplified version 1 EPK (24
// '0' digits and the hash of the untruncated key), which no service range
// boundary matches; Hash does not follow it.
func Hash(d Definition, values []any) (string, error) {
	if err := d.Validate(); err != nil {
		return "", err
	}
	if err := d.checkCount(len(values)); err != nil {
		return "", err
	}
	if len(values) == 0 {
		values = undefinedKey
	}
	var out [maxEPKLen]byte
	epk, err := appendEPK(out[:0], values, d.EffectiveVersion(), d.EffectiveKind() == KindMultiHash, true)
	if err != nil {
		return "", err
	}
	return string(epk), nil
}

// PrefixRange returns the EPK range a prefix of a MultiHash key addresses:
// [Hash(prefix), Hash(prefix)+"FF"), the SDK's fan-out range. Every full key
// that starts with the prefix lies in it, because each component's first
// digit is below 4. Keys that are not a strict, non-empty prefix (see
// Definition.IsPrefix) are refused with ErrNotPrefix; use Hash for them.
func PrefixRange(d Definition, values []any) (Range, error) {
	if err := d.Validate(); err != nil {
		return Range{}, err
	}
	if !d.IsPrefix(len(values)) {
		return Range{}, fmt.Errorf("%w: %d components for a %s key of %d paths",
			ErrNotPrefix, len(values), d.EffectiveKind(), len(d.Paths))
	}
	min, err := Hash(d, values)
	if err != nil {
		return Range{}, err
	}
	return Range{Min: min, Max: min + MaxEPK}, nil
}

// checkCount enforces the SDK's component rules: never more components than
// paths; kind Hash takes its one component or none (the undefined key).
func (d Definition) checkCount(n int) error {
	switch {
	case n > len(d.Paths):
		return fmt.Errorf("%w: %d components for %d paths", ErrComponentCount, n, len(d.Paths))
	case d.EffectiveKind() != KindMultiHash && n != 0 && n != len(d.Paths):
		return fmt.Errorf("%w: kind Hash needs %d components, got %d", ErrComponentCount, len(d.Paths), n)
	}
	return nil
}

// appendEPK appends the EPK of values to dst. Version 1 is appendEPKV1 and
// ignores perComponent and mask. For version 2, perComponent hashes each
// component on its own and concatenates the results (MultiHash); otherwise
// all components go into one hash. mask applies the version 2 routing mask;
// the baseline files hold unmasked version 2 hashes.
func appendEPK(dst []byte, values []any, v Version, perComponent, mask bool) ([]byte, error) {
	if v.effective() == Version1 {
		return appendEPKV1(dst, values)
	}
	// Keys of up to ~100 bytes encode without touching the heap.
	var scratch [128]byte
	buf := scratch[:0]
	var digits [32]byte

	for i, c := range values {
		if perComponent {
			buf = buf[:0]
		}
		var err error
		if buf, err = appendComponent(buf, c, stringEndV2); err != nil {
			return dst, fmt.Errorf("encode component %d: %w", i, err)
		}
		if perComponent {
			h1, h2 := murmur128(buf, 0)
			putHash128(digits[:], h1, h2, mask)
			dst = append(dst, digits[:]...)
		}
	}
	if !perComponent {
		h1, h2 := murmur128(buf, 0)
		putHash128(digits[:], h1, h2, mask)
		dst = append(dst, digits[:]...)
	}
	return dst, nil
}
