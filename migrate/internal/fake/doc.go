// Package fake holds in-memory stand-ins for the migration's tests: Target
// (a container with the service's item semantics: identity, ETags,
// conflicts, atomic batches, failures injected per call), BulkTarget (a
// Target that takes bulk requests, each operation failing on its own),
// Container (a
// Target that is also a Source, with a latest-version change feed over two
// feed ranges), Clock (a clock whose sleeps take no time) and Transformer
// (a key spec for the fakes' source, keyed on /region).
package fake
