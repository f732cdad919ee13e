// Package epk computes effective partition keys (EPKs) exactly as Azure
// Cosmos DB routes them, and does the range arithmetic physical partitions
// need.
//
// An EPK is the string a logical partition key value hashes to; the service
// keeps items in physical partitions that each own a half-open EPK range
// [minInclusive, maxExclusive), from "" to "FF". The emulator in
// internal/emulator places items by Hash and must agree, bit for bit, with the
// client-side routing of the official Go SDK (azcosmos v1.5.0); rekey plan
// uses the same functions to predict where a new key puts items.
//
// # Contract
//
//   - Hash(def, values) returns the EPK the SDK computes for a key of a
//     container with partition key definition def: version 2 keys as the
//     service does (MurmurHash3-x64-128, routing-masked, 32 uppercase hex
//     digits per hash; MultiHash hashes each component), version 1 keys in
//     the SDK's simplified form (24 '0' digits and MurmurHash3-x86-32). The
//     .NET SDK's baseline vectors and the Go SDK's own test vectors are
//     checked in the tests.
//   - Key components are Go values: string, float64, bool, nil (JSON null)
//     and Undefined{} (field absent). An empty key is the undefined key.
//   - PrefixRange gives the range a prefix of a hierarchical key addresses.
//   - Compare orders EPK strings length-aware, so "AB" == "AB00": the service
//     mixes 32- and 64-digit boundaries in MultiHash containers. Range,
//     Find and Overlapping locate EPKs among sorted partition key ranges.
//   - SplitPoints and SplitRange divide a range of a version's numeric space
//     evenly: version 2 is [0, 2^126), version 1 is [0, 2^32), and boundaries
//     are always 32 uppercase hex digits.
//
// Everything is pure and safe for concurrent use. Bad input yields an error
// wrapping one of the package's sentinel errors, never a panic.
//
// Version 1 caveat: the real service's version 1 EPK is a binary encoding of
// the hash followed by the (truncated) key, and its partition key ranges use
// that form ("05C1..."). The Go SDK v1.5.0 computes a simplified form instead,
// and this package follows the SDK, because the emulator must route as the
// SDK does. Version 1 EPKs from this package must not be compared with
// boundaries read from a real version 1 container.
package epk
