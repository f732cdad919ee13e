package migrate

// The charges the flow control expects of a request before its answer
// says what it cost: each request reserves its expected charge against the
// RU caps and its partition's pace (the pacers then correct the model by
// what the answers charged). The figures are the service's published ones
// (docs/cosmos-service.md#charges): a 1 KB point read costs 1 RU and a
// 100 KB one 10 RU, linearly in between; a 1 KB insert about 5.5 RU with
// the default indexing policy, larger items on the read curve times 5.5;
// a replace twice an insert, a delete as an insert; the change feed about
// 1 RU per KB read.

const (
	readChargePerKB   = 1.0
	readChargeAt100KB = 10.0
	createChargePerKB = 5.5
	replaceFactor     = 2.0
	// feedPageCharge is what a change-feed page costs besides its items,
	// and what one that finds nothing new costs.
	feedPageCharge = 1.0
)

// sizeFactor scales a 1 KB charge to an item of n bytes: 1 up to 1 KB,
// then linear through 10 at 100 KB.
func sizeFactor(n int) float64 {
	kb := float64(n) / 1024
	if kb <= 1 {
		return 1
	}
	return 1 + (kb-1)*(readChargeAt100KB/readChargePerKB-1)/99
}

// CreateCharge is the expected charge of creating an item of n bytes.
func CreateCharge(n int) float64 { return createChargePerKB * sizeFactor(n) }

// ReplaceCharge is the expected charge of replacing an item with one of n
// bytes.
func ReplaceCharge(n int) float64 { return replaceFactor * CreateCharge(n) }

// DeleteCharge is the expected charge of deleting an item of n bytes: a
// write, priced as the insert of the same item.
func DeleteCharge(n int) float64 { return CreateCharge(n) }

// LookupCharge is the expected charge of a query that finds an item's
// copies by id: an index lookup, expected to cost about a 1 KB point read;
// its answer corrects the pacers by what it cost.
const LookupCharge = readChargePerKB

// ReadCharge is the expected charge of a point read of an item of n bytes.
func ReadCharge(n int) float64 { return readChargePerKB * sizeFactor(n) }

// FeedCharge is the expected charge of a change-feed page of items items
// of about itemBytes bytes each.
func FeedCharge(items, itemBytes int) float64 {
	return feedPageCharge + float64(items)*readChargePerKB*sizeFactor(itemBytes)
}
