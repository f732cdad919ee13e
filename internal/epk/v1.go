package epk

import (
	"errors"
	"fmt"
	"math"
	"unicode/utf8"
)

// Version 1 effective partition keys, as the service computes them and as
// every official SDK that hashes on the client reproduces them (.NET
// PartitionKeyInternal.GetEffectivePartitionKeyForHashPartitioning, Java
// PartitionKeyInternalHelper, JavaScript src/utils/hashing/v1.ts):
//
//  1. Each key component is truncated: a string to its first 100 UTF-16
//     code units, every other value is kept.
//  2. The truncated components' hashing encodings (encode.go, strings ended
//     by 0x00) are concatenated and hashed with MurmurHash3-x86-32, seed 0.
//  3. The EPK is the binary encoding of the hash, written as a number
//     component, followed by the binary encoding of each truncated
//     component, in uppercase hex.
//
// The binary encoding is order-preserving, so EPK strings sort by hash first:
//
//	undefined  0x00
//	null       0x01
//	false      0x02
//	true       0x03
//	number     0x05, then the 64-bit payload (see appendNumberBinary)
//	string     0x08, then each UTF-8 byte plus one; a string of at most 100
//	           bytes ends with 0x00, a longer one is cut after 101 bytes
//	           with no terminator
//
// Two SDK quirks are not followed because the service does not have them:
// the JavaScript SDK drops a trailing 0x00 chunk of a number (2.0 encodes as
// 05C0 instead of 05C000; Compare treats the two as equal) and decides
// whether a string is short by its UTF-16 length instead of its UTF-8 byte
// length (a non-ASCII string of more than 100 bytes keeps all its bytes).

// Limits of the version 1 string component (StringPartitionKeyComponent).
const (
	// maxStringUnits: strings are truncated to this many UTF-16 code units
	// before they are hashed and encoded.
	maxStringUnits = 100
	// maxStringBytes: the binary encoding keeps a string of up to this many
	// UTF-8 bytes whole, and cuts a longer one after maxStringBytes+1 bytes.
	maxStringBytes = 100
)

// maxEPKLenV1 is the longest version 1 EPK in hex digits: the hash, a whole
// number below 2^32, takes at most 7 bytes as a number component (marker,
// first byte, five 7-bit chunks for its 43 significant payload bits), and a
// key component at most 102 (a string cut after 101 bytes).
const maxEPKLenV1 = 2 * (7 + 102)

// truncateV1 returns c truncated as the service truncates a version 1 key
// component: a string to its first 100 UTF-16 code units. When the cut falls
// inside a surrogate pair, .NET and JavaScript keep a lone high surrogate,
// which their UTF-8 encoders write as U+FFFD; truncateV1 does the same.
// Invalid UTF-8 (which no JSON-decoded key contains) counts one unit per
// byte and keeps its bytes. Other values are returned as they are.
func truncateV1(c any) any {
	s, ok := c.(string)
	if !ok || len(s) <= maxStringUnits {
		return c // at most 100 bytes is at most 100 code units
	}
	units := 0
	for i, r := range s {
		w := 1
		if r >= 0x10000 {
			w = 2 // a surrogate pair in UTF-16
		}
		if units+w > maxStringUnits {
			if units < maxStringUnits {
				return s[:i] + string(utf8.RuneError) // half a pair
			}
			return s[:i]
		}
		units += w
	}
	return s
}

// appendEPKV1 appends the version 1 EPK of values, as uppercase hex, to dst.
// values may hold any number of components (the service's kind Hash allows
// one path, but the encoding, and the .NET vectors, take several).
func appendEPKV1(dst []byte, values []any) ([]byte, error) {
	// Keys of up to ~100 bytes encode without touching the heap.
	var scratch [128]byte
	var truncated [MaxPaths]any
	comps := truncated[:0]
	buf := scratch[:0]
	for i, c := range values {
		c = truncateV1(c)
		comps = append(comps, c)
		var err error
		if buf, err = appendComponent(buf, c, stringEndV1); err != nil {
			return dst, fmt.Errorf("encode component %d: %w", i, err)
		}
	}
	hash := murmur32(buf, 0)

	bin := appendNumberBinary(buf[:0], float64(hash))
	for _, c := range comps {
		bin = appendBinaryComponent(bin, c)
	}
	return appendHex(dst, bin), nil
}

// appendBinaryComponent appends the binary encoding of one truncated key
// component; c has passed appendComponent, so its type is known.
func appendBinaryComponent(buf []byte, c any) []byte {
	switch c := c.(type) {
	case string:
		buf = append(buf, markerString)
		n := len(c)
		short := n <= maxStringBytes
		if !short {
			n = maxStringBytes + 1
		}
		for i := 0; i < n; i++ {
			b := c[i]
			if b < 0xFF {
				b++
			}
			buf = append(buf, b)
		}
		if short {
			buf = append(buf, 0x00)
		}
		return buf
	case float64:
		return appendNumberBinary(buf, c)
	case bool:
		if c {
			return append(buf, markerTrue)
		}
		return append(buf, markerFalse)
	case nil:
		return append(buf, markerNull)
	default: // Undefined
		return append(buf, markerUndefined)
	}
}

// appendNumberBinary appends the binary encoding of a number component
// (NumberPartitionKeyComponent.WriteForBinaryEncoding): the marker 0x05, then
// a 64-bit payload that orders like the double, written as its top 8 bits
// followed by 7-bit chunks, each shifted left by one with the low bit set
// when another chunk follows. The payload of a non-negative double is its
// bits with the sign bit set; of a negative double, the two's complement of
// its bits (so -0 encodes as 0). Encoding stops when the remaining bits are
// zero, so whole numbers below 2^32 take at most 7 bytes.
func appendNumberBinary(buf []byte, x float64) []byte {
	buf = append(buf, markerNumber)
	bits := math.Float64bits(x)
	var p uint64
	if bits < 1<<63 {
		p = bits ^ 1<<63
	} else {
		p = ^bits + 1
	}
	buf = append(buf, byte(p>>56))
	p <<= 8
	for {
		chunk := byte(p>>56) | 1
		p <<= 7
		if p == 0 {
			return append(buf, chunk&^1)
		}
		buf = append(buf, chunk)
	}
}

// errNumberEncoding is why decodeNumberBinary refuses its input; callers wrap
// it in ErrInvalidEPK with the EPK it came from.
var errNumberEncoding = errors.New("not a binary-encoded number component")

// decodeNumberBinary reads the number component at the start of b (marker
// included) and returns its value and how many bytes it took. It is the
// inverse of appendNumberBinary (the service's
// NumberPartitionKeyComponent.FromHexEncodedBinaryString), and refuses a
// missing marker, a missing last chunk and more than the 64 bits a payload
// has, with errNumberEncoding.
func decodeNumberBinary(b []byte) (float64, int, error) {
	if len(b) < 3 || b[0] != markerNumber {
		return 0, 0, errNumberEncoding
	}
	p := uint64(b[1]) << 56
	shift := 56
	for i := 2; i < len(b); i++ {
		shift -= 7
		if shift < 0 {
			return 0, 0, errNumberEncoding
		}
		p |= uint64(b[i]>>1) << shift
		if b[i]&1 == 0 {
			var bits uint64
			if p < 1<<63 {
				bits = ^(p - 1)
			} else {
				bits = p ^ 1<<63
			}
			return math.Float64frombits(bits), i + 1, nil
		}
	}
	return 0, 0, errNumberEncoding
}

// appendHex appends b as uppercase hex digits.
func appendHex(dst, b []byte) []byte {
	for _, c := range b {
		dst = append(dst, hexDigits[c>>4], hexDigits[c&0xF])
	}
	return dst
}
