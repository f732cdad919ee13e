// Package epk computes effective partition keys (EPKs) exactly as Azure
// Cosmos DB routes them, and does the range arithmetic physical partitions
// need.
//
// An EPK is the string a logical partition key value hashes to; the service
// keeps items in physical partitions that each own a half-open EPK range
// [minInclusive, maxExclusive), from "" to "FF". The emulator in
// internal/emulator places items by Hash and lays out partition key ranges
// with SplitRange, and must agree, bit for bit, with the service, whose
// ranges the SDKs that hash on the client (.NET, Java, JavaScript) route
// against; rekey uses the same functions to route a real container's items
// to its partition key ranges and to predict where a new key puts items.
//
// # Contract
//
//   - Hash(def, values) returns the EPK the service computes for a key of a
//     container with partition key definition def: version 2 keys hashed
//     with MurmurHash3-x64-128, routing-masked, 32 uppercase hex digits per
//     hash (MultiHash hashes each component); version 1 keys as the
//     binary-encoded MurmurHash3-x86-32 of the truncated key followed by the
//     binary-encoded truncated key ("05C1..."). The tests pin the vectors of
//     the .NET, Java and JavaScript SDKs' own tests, naming each source.
//   - Key components are Go values: string, float64, bool, nil (JSON null)
//     and Undefined{} (field absent). An empty key is the undefined key.
//   - PrefixRange gives the range a prefix of a hierarchical key addresses.
//   - Compare orders EPK strings length-aware, so "AB" == "AB00": the service
//     mixes 32- and 64-digit boundaries in MultiHash containers. Range,
//     Find and Overlapping locate EPKs among sorted partition key ranges.
//   - SplitPoints and SplitRange divide a range of a version's numeric space
//     evenly, and Width measures one: version 2 is [0, 2^126) with 32-digit
//     boundaries; version 1 is the hash values [0, 4294967295] with
//     boundaries written as binary-encoded numbers, as the service writes
//     them.
//
// Everything is pure and safe for concurrent use. Bad input yields an error
// wrapping one of the package's sentinel errors, never a panic.
//
// The Go SDK (azcosmos v1.5.0) computes version 1 EPKs in a simplified form
// of its own (24 '0' digits and the hash of the untruncated key) that matches
// no real container's ranges; this package does not follow it. The SDK only
// uses it client-side, in ReadManyItems, to group items by range.
package epk
