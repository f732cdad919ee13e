package migrate

// The all-versions-and-deletes change feed, as the pipeline reads it
// (docs/cosmos-change-feed.md): every create, replace and delete of the
// source, TTL expiries included, in LSN order per physical partition. A
// Source that can read it also implements VersionSource (ports.go).

// Operation types of a VersionChange.
const (
	OpCreate  = "create"
	OpReplace = "replace"
	OpDelete  = "delete"
)

// VersionRequest asks for one page of a feed range's all-versions feed.
type VersionRequest struct {
	Range FeedRange
	// Continuation is where to resume: a bookmark (VersionsBookmark) or the
	// Continuation of the previous page. Required: the mode starts only
	// from "now" or from a continuation.
	Continuation string
	PageSize     int
}

// VersionPage is one page of changes in LSN order. An empty page means the
// range has reached the end of its feed for now; its Continuation still
// moves (positions of quiet partitions advance) and is worth keeping.
type VersionPage struct {
	Changes      []VersionChange
	Continuation string
	RU           float64
}

// VersionChange is one change of a source item.
type VersionChange struct {
	// Op is OpCreate, OpReplace (an upsert is one of the two) or OpDelete.
	Op string
	// LSN orders the changes of one physical partition.
	LSN int64
	// TS is the change's conflict-resolution timestamp, seconds since the
	// epoch.
	TS int64
	// Current is the item after a create or replace, with its system
	// properties; nil for a delete.
	Current []byte
	// Previous is the item before a replace or delete, when the service
	// sends it (the container must opt in to previous images); nil
	// otherwise.
	Previous []byte
	// ID and SourceKey name the item of a delete (from the change's
	// metadata); for a create or replace they are read from Current.
	ID        string
	SourceKey Key
	// TTLExpired: the delete was the item's time to live running out.
	TTLExpired bool
}
