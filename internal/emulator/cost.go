package emulator

// The request-unit cost model. Every response's x-ms-request-charge comes from
// here, so throttling, budgets and every benchmark built on the emulator rest
// on these figures. They follow the published ones (docs/cosmos-service.md#charges,
// from learn.microsoft.com articles/cosmos-db: request-units.md,
// optimize-cost-reads-writes.md, key-value-store-cost.md):
//
//   - point read of a 1 KB item: 1 RU; of a 100 KB item: 10 RU
//     (key-value-store-cost.md), linear in between and beyond;
//   - insert of a 1 KB item with the default (consistent, /* included)
//     indexing policy: about 5.5 RU (5 in key-value-store-cost.md, whose
//     100 KB write is 50 RU: the same curve as reads, times 5.5); the docs'
//     sizing examples use up to 10;
//   - replace: about twice an insert (the old index terms are removed and the
//     new ones added);
//   - delete: about an insert;
//   - query: grows with the items examined, not only those returned;
//   - change feed: a small charge per page plus about 1 per item read.
//
// Sizes are counted in KB of the stored document, system properties included.

const (
	readRUPerKB          = 1.0 // for the first KB
	readRUPer100KB       = 10.0
	insertRUPerKB        = 5.5 // for the first KB; later KBs follow the read curve
	replaceFactor        = 2.0
	deleteFactor         = 1.0
	unindexedWriteFactor = 0.4 // a policy that indexes nothing: writes skip index maintenance
	queryBaseRU          = 2.5
	queryRUPerExamined   = 0.05 // per item the engine loads and filters
	queryRUPerKBReturned = 1.0
	feedPageRU           = 2.0
	feedRUPerKB          = 1.0
	notModifiedRU        = 1.0
	metadataReadRU       = 1.0
	metadataWriteRU      = 5.0
)

// sizeFactor scales a 1 KB charge to an item of n bytes: 1 up to 1 KB, then
// linear through 10 at 100 KB (a 100 KB read costs 10 times a 1 KB read).
func sizeFactor(n int) float64 {
	kb := float64(n) / 1024
	if kb <= 1 {
		return 1
	}
	return 1 + (kb-1)*(readRUPer100KB/readRUPerKB-1)/99
}

// readCost is the charge of a point read of an item of n bytes.
func readCost(n int) float64 { return readRUPerKB * sizeFactor(n) }

// insertCost is the charge of creating an item of n bytes; indexed is false
// when the container's indexing policy indexes nothing.
func insertCost(n int, indexed bool) float64 {
	ru := insertRUPerKB * sizeFactor(n)
	if !indexed {
		ru *= unindexedWriteFactor
	}
	return ru
}

// replaceCost is the charge of replacing an item with one of n bytes.
func replaceCost(n int, indexed bool) float64 { return replaceFactor * insertCost(n, indexed) }

// deleteCost is the charge of deleting an item of n bytes.
func deleteCost(n int, indexed bool) float64 { return deleteFactor * insertCost(n, indexed) }

// queryCost is the charge of one query page that examined examined items and
// returned returnedBytes of results.
func queryCost(examined int, returnedBytes int) float64 {
	return queryBaseRU + queryRUPerExamined*float64(examined) + queryRUPerKBReturned*float64(returnedBytes)/1024
}

// feedCost is the charge of a change-feed page of the given item sizes.
func feedCost(sizes []int) float64 {
	if len(sizes) == 0 {
		return notModifiedRU
	}
	ru := feedPageRU
	for _, n := range sizes {
		ru += feedRUPerKB * sizeFactor(n)
	}
	return ru
}
