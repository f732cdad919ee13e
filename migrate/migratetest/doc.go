// Package migratetest holds in-memory fakes of migrate's ports and the
// contract suites that prove they behave like the internal/cosmos adapter.
//
// Container is an in-memory Cosmos DB container: items addressed by
// (partition key, id) with ETags and system properties; 409 on a create
// that exists, 412 on an If-Match that no longer matches, 404 on an absent
// item, every failure still charged; transactional batches that commit all
// or nothing (the failing operation's status, 424 for the others);
// physical partitions over the effective partition key space (Hash v1/v2
// and MultiHash, hashed by internal/epk) that split; and the latest-version
// change feed per feed range, with continuations that survive splits,
// StartFrom, pages of PageSize and an empty page at the end of the feed.
// Deleted and expired (time to live) items vanish from it. A Container
// created WithAllVersions also serves the all-versions-and-deletes change
// feed (migrate.VersionSource): bookmarks, every create, replace and delete
// in LSN order (expiries as deletes that say so, deletes with their
// previous image), a retention window past which a position answers 400,
// and 400 without it; and the ports that go with it (migrate.CopyFinder,
// migrate.TimeToLive).
//
// For tests, a Container counts the requests it serves (Calls), lets a
// test fail or precede any of them (Intercept) and see every change-feed
// page (AfterFeed). Clock is a migrate.Clock whose sleeps take no time;
// Transformer, MustNew and MustUpsert are the tests' shorthands. The unit
// tests of migrate's subpackages and the simulator (internal/sim) use
// these fakes and no others.
//
// RunTarget, RunSource and RunVersions are the contract suites. They run
// against a Fixture: this package's Container (container_test.go), and
// internal/cosmos.Container on the emulator (internal/cosmos's
// contract_test.go). Where the two disagree the emulator, which follows
// the service, is right and the fake is fixed.
package migratetest
