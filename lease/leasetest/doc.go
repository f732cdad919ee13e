// Package leasetest helps test code that uses package lease: an in-memory
// lease.Documents that honours ETags as Cosmos DB does, a fake clock, and
// the conformance suites a lease.Store (RunStore) and a lease.Documents
// (RunDocuments) implementation must pass. internal/cosmos can run
// RunDocuments against the emulator, and RunStore over it.
package leasetest
