package epk

import (
	"encoding/binary"
	"math/bits"
)

// This file holds MurmurHash3, Austin Appleby's public-domain hash
// (https://github.com/aappleby/smhasher, src/MurmurHash3.cpp), in the two
// variants Cosmos DB uses: x86_32 for partition key version 1 and x64_128 for
// version 2. Both are one-shot functions over a byte slice; the service hashes
// one encoded key at a time, so no streaming state is needed.
//
// Both variants process the body in little-endian blocks and then fold the
// trailing 1..blocksize-1 bytes into a zero-padded block. Appleby's reference
// skips the tail step when the tail is empty; mixing a zero block is a no-op
// (0 * c = 0, rotl(0) = 0, h ^ 0 = h), so this code mixes it unconditionally,
// which keeps the tail a single straight-line step.

// Constants of MurmurHash3_x86_32.
const (
	m32c1 uint32 = 0xcc9e2d51
	m32c2 uint32 = 0x1b873593
)

// murmur32 returns MurmurHash3_x86_32 of data with the given seed.
func murmur32(data []byte, seed uint32) uint32 {
	h := seed
	n := len(data)
	body := n &^ 3
	for i := 0; i < body; i += 4 {
		h ^= mix32(binary.LittleEndian.Uint32(data[i:]))
		h = bits.RotateLeft32(h, 13)
		h = h*5 + 0xe6546b64
	}

	var tail uint32
	for i := n - 1; i >= body; i-- {
		tail = tail<<8 | uint32(data[i])
	}
	h ^= mix32(tail)

	h ^= uint32(n)
	return fmix32(h)
}

// mix32 scrambles one 32-bit block before it is folded into the state.
func mix32(k uint32) uint32 {
	k *= m32c1
	k = bits.RotateLeft32(k, 15)
	return k * m32c2
}

// fmix32 is the x86_32 finalizer: it forces every input bit to avalanche.
func fmix32(h uint32) uint32 {
	h ^= h >> 16
	h *= 0x85ebca6b
	h ^= h >> 13
	h *= 0xc2b2ae35
	h ^= h >> 16
	return h
}

// Constants of MurmurHash3_x64_128.
const (
	m128c1 uint64 = 0x87c37b91114253d5
	m128c2 uint64 = 0x4cf5ad432745937f
)

// murmur128 returns MurmurHash3_x64_128 of data. As in Appleby's reference the
// 32-bit seed initialises both 64-bit halves of the state. h1 and h2 are the
// two output words; the reference writes them to memory as h1 then h2, each
// little-endian.
func murmur128(data []byte, seed uint32) (h1, h2 uint64) {
	h1, h2 = uint64(seed), uint64(seed)
	n := len(data)
	body := n &^ 15
	for i := 0; i < body; i += 16 {
		k1 := binary.LittleEndian.Uint64(data[i:])
		k2 := binary.LittleEndian.Uint64(data[i+8:])

		h1 ^= mixK1(k1)
		h1 = bits.RotateLeft64(h1, 27)
		h1 += h2
		h1 = h1*5 + 0x52dce729

		h2 ^= mixK2(k2)
		h2 = bits.RotateLeft64(h2, 31)
		h2 += h1
		h2 = h2*5 + 0x38495ab5
	}

	var block [16]byte
	copy(block[:], data[body:])
	h1 ^= mixK1(binary.LittleEndian.Uint64(block[0:]))
	h2 ^= mixK2(binary.LittleEndian.Uint64(block[8:]))

	h1 ^= uint64(n)
	h2 ^= uint64(n)
	h1 += h2
	h2 += h1
	h1 = fmix64(h1)
	h2 = fmix64(h2)
	h1 += h2
	h2 += h1
	return h1, h2
}

// mixK1 scrambles the first 64-bit lane of a block.
func mixK1(k uint64) uint64 {
	k *= m128c1
	k = bits.RotateLeft64(k, 31)
	return k * m128c2
}

// mixK2 scrambles the second 64-bit lane of a block.
func mixK2(k uint64) uint64 {
	k *= m128c2
	k = bits.RotateLeft64(k, 33)
	return k * m128c1
}

// fmix64 is the x64 finalizer: it forces every input bit to avalanche.
func fmix64(k uint64) uint64 {
	k ^= k >> 33
	k *= 0xff51afd7ed558ccd
	k ^= k >> 33
	k *= 0xc4ceb9fe1a85ec53
	k ^= k >> 33
	return k
}
