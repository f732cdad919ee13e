// Package emulator is an in-memory Azure Cosmos DB for NoSQL account that
// speaks the gateway's REST protocol, so the official SDKs (Go, JavaScript,
// .NET) and rekey's own client run against it unchanged. `rekey emulator`
// serves it, `rekey demo` and every test start one in-process. What it
// serves, what it refuses and the service behaviour each rests on are listed
// in docs/emulator.md, with links to Microsoft's documentation and SDK
// sources.
//
// # Files by role
//
// Serving and protocol:
//
//	emulator.go, server.go   Emulator (an http.Handler), Start with TLS and the compute-gateway listener
//	request.go               one request's context: path resolution per gateway (routing or compute), headers, body
//	auth.go                  authentication: master-key signatures, or Entra ID tokens (Options.Entra)
//	entra.go                 the test issuer of Entra ID tokens and its azcore.TokenCredential
//	entra_auth.go            Entra ID token checks and the service's 401 substatuses
//	rbac.go                  data-plane roles and actions, the service's 403 substatuses
//	managedidentity.go       the App Service managed identity endpoint that hands out tokens
//	router.go                dispatch by path and verb
//	response.go, errors.go   common headers, the service's error bodies and status/substatus pairs
//
// Handlers (one file per resource or operation):
//
//	account.go               GET /: the database account
//	database.go              databases
//	container_handlers.go    containers: create, read, replace, delete, list, query
//	item_handlers.go         point reads and writes of items
//	patch.go                 partial document update
//	batch.go                 transactional batch (atomic)
//	bulk.go                  bulk: non-atomic batches per partition key range, per-operation results
//	queryitems.go, query.go  queries over items and over metadata
//	queryplan.go             query plans (PartitionedQueryExecutionInfo) and the 400/1004 that carries one
//	epkheaders.go            x-ms-start-epk / x-ms-end-epk windows on feeds and queries
//	avad.go                  the all-versions-and-deletes change feed and its retention
//	changefeed.go            latest-version change feed
//	pkranges.go              /pkranges
//	offer.go                 offers: throughput read and replace
//	admin.go                 the unauthenticated admin API: metrics, faults, splits
//
// Model (guarded by the store's and each container's mutex):
//
//	store.go                 the account: databases, offers, resource ids, ETags
//	container.go             a container: its partitions, LSN, splits
//	partition.go             a physical partition and its items
//	itemops.go               item writes with an undo log (batch rollback)
//	document.go, jsontree.go JSON documents: members, system properties, patch trees
//	pkdef.go, epk.go         partition key definitions and effective partition keys
//	props.go                 resource bodies kept in member order
//	scan.go                  paged scans behind queries and read feeds
//
// Physics (what makes it behave like a loaded service):
//
//	cost.go                  request charges
//	ttl.go                   time to live: expiry of items, recorded as deletes
//	throttle.go              per-partition RU budgets and 429s
//	throughput.go, split.go  throughput changes and partition splits
//	metrics.go               per-container and per-partition counters
//
// Faults:
//
//	faults.go                injected 429/410/5xx, latency, dropped connections, per-operation bulk faults
//
// The SQL engine lives in the query subpackage; emulatortest starts an
// emulator for tests.
package emulator
