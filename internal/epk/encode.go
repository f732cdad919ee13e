package epk

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Undefined is the partition key component of an item whose key field is
// absent. Pass Undefined{} among the values given to Hash; an empty value list
// means the same thing as a single Undefined{} (the service and the SDK treat
// an empty partition key as the undefined key).
//
// Undefined is distinct from nil, which is a JSON null in the key field.
type Undefined struct{}

// Type markers that open each component in the bytes fed to the hash. They are
// the service's binary encoding markers; 0x04 (MinNumber) and the other
// markers only occur in boundaries, never in a key value.
const (
	markerUndefined byte = 0x00
	markerNull      byte = 0x01
	markerFalse     byte = 0x02
	markerTrue      byte = 0x03
	markerNumber    byte = 0x05
	markerString    byte = 0x08
)

// String terminators: version 1 ends a string with 0x00, version 2 with 0xFF
// (a byte that never occurs in UTF-8).
const (
	stringEndV1 byte = 0x00
	stringEndV2 byte = 0xFF
)

// appendComponent appends the hashing encoding of one key component to buf:
//
//	undefined  0x00
//	null       0x01
//	false      0x02
//	true       0x03
//	number     0x05, then the IEEE-754 bits of the float64, little-endian
//	string     0x08, then the string's bytes, then stringEnd
//
// Strings are hashed as the raw bytes they are given: version 2 hashes the
// whole string (the baseline vectors of 99, 100, 101 and 2,048 bytes confirm
// it), version 1 passes strings truncated by truncateV1 (v1.go). Numbers are
// hashed by their exact bits, so -0 and 0 differ, and a NaN hashes by
// whatever payload it carries (the SDKs do not canonicalise NaN either).
//
// Any other Go type is refused with ErrUnsupportedValue; the SDK would
// silently skip it, which would route the item as if the component were not
// there.
func appendComponent(buf []byte, v any, stringEnd byte) ([]byte, error) {
	switch c := v.(type) {
	case string:
		buf = append(buf, markerString)
		buf = append(buf, c...)
		return append(buf, stringEnd), nil
	case float64:
		buf = append(buf, markerNumber)
		return binary.LittleEndian.AppendUint64(buf, math.Float64bits(c)), nil
	case bool:
		if c {
			return append(buf, markerTrue), nil
		}
		return append(buf, markerFalse), nil
	case nil:
		return append(buf, markerNull), nil
	case Undefined:
		return append(buf, markerUndefined), nil
	default:
		return buf, fmt.Errorf("%w: %T (want string, float64, bool, nil or epk.Undefined)", ErrUnsupportedValue, v)
	}
}

// Output formatting. An EPK is uppercase hex with no separators.
const hexDigits = "0123456789ABCDEF"

// routingMask clears the two most significant bits of a version 2 hash. The
// service reserves the top of the key space for the "FF" sentinel, so every
// routed hash starts with a byte in 0x00..0x3F.
const routingMask uint64 = ^uint64(0) >> 2

// putHash128 writes the 32 hex digits of a version 2 hash to dst. The SDK
// lays the output words out as h1 then h2, each little-endian, and reverses
// all 16 bytes, which is h2 then h1, each big-endian; the EPK is therefore the
// hex of h2 followed by the hex of h1. With mask set the top two bits of h2,
// which are the top two bits of the first EPK byte, are cleared.
func putHash128(dst []byte, h1, h2 uint64, mask bool) {
	if mask {
		h2 &= routingMask
	}
	putHex64(dst[0:16], h2)
	putHex64(dst[16:32], h1)
}

// putHex64 writes v to dst[:16] as 16 uppercase hex digits, most significant
// first.
func putHex64(dst []byte, v uint64) {
	_ = dst[15] // one bounds check for the loop
	for i := 14; i >= 0; i -= 2 {
		b := byte(v)
		dst[i] = hexDigits[b>>4]
		dst[i+1] = hexDigits[b&0xF]
		v >>= 8
	}
}
