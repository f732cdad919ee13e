// Package cosmos is rekey's adapter to Azure Cosmos DB (NoSQL API): the only
// package that imports the official Go SDK (azcosmos v1.5.0).
//
// A Client connects to one account (master key, connection string or Entra
// ID) and hands out Containers, which implement migrate.Source and
// migrate.Target, and LeaseDocuments, which implement lease.Documents. The
// Client also creates databases and containers for `--create-target` and
// reads their definitions and throughput.
//
// # Requests the SDK cannot send
//
// Bulk requests (Container.ExecuteBulk), the all-versions-and-deletes
// change feed (Container.AllVersionsBookmark, ReadAllVersions) and the
// partition key ranges with their ids (PartitionKeyRanges, RangeOfKey) go
// through the Client's second, raw azcore pipeline (raw.go): the same
// transport, credential (master-key signature or Entra ID token), headers
// and error classification as the SDK's requests. docs/cosmos-raw-requests.md,
// docs/cosmos-bulk.md and docs/cosmos-change-feed.md describe the protocol
// and the SDK sources it was checked against.
//
// # Errors
//
// Every failure of a request is returned as a *migrate.RequestError, so the
// pipeline decides with errors.Is against the sentinels of package migrate:
//
//   - a status from the service keeps its status, x-ms-substatus,
//     x-ms-retry-after-ms (or Retry-After), x-ms-activity-id and the first
//     line of the body's "message";
//   - a network failure (connection refused or reset, EOF mid-response, TLS
//     record errors, timeouts of one attempt) has Status 0, which matches
//     migrate.ErrTransient.
//
// Cancellation is not a failure of the request: when the caller's context
// is done, the error wraps ctx.Err() and is never a RequestError. Errors no
// retry can fix and that are not the service's answer (a server certificate
// the system does not trust, a malformed continuation token, an undefined
// partition key component where the SDK cannot express one) are returned as
// plain errors, which the pipeline treats as fatal.
//
// # Retries
//
// azcore's generic retry policy is turned off (ClientOptions.Retry.MaxRetries
// = -1): package migrate owns the one policy that honours
// x-ms-retry-after-ms on 429 and backs off on transient failures. The SDK's
// Cosmos-specific retries stay on: it refreshes its routing map and retries
// on 410/1002 (a split) inside ReadChangeFeed, retries a read once on 408 or
// 500, retries a read or a request that never left this host on a
// connection error (after one second), and fails over between regions.
//
// # Ids the gateway cannot address
//
// An id holding '/', '\', '#', '%', a control character or trailing
// whitespace can be created (the id travels in the body) but not addressed
// in a URL: the gateway answers 401 or 400 to a point read, replace or
// delete of it. Containers route such ids around the URL: reads become a
// query on the id within the partition key, replaces and deletes a
// transactional batch of one operation, whose id travels in the body.
//
// # Secrets
//
// The account key and connection string never appear in errors, logs or
// String output: Config redacts them, and any error text that could carry
// them is scrubbed.
package cosmos
