package migrate

import (
	"fmt"
	"strings"
	"time"
)

// Definition is a container's partition key definition.
type Definition struct {
	Paths   []string `json:"paths"`
	Kind    string   `json:"kind"`    // "Hash" or "MultiHash"
	Version int      `json:"version"` // 1 or 2
}

// TargetDefinition is the key definition a migration's target needs: the
// spec's paths, MultiHash when there are several, version 2.
func TargetDefinition(paths []string) Definition {
	kind := "Hash"
	if len(paths) > 1 {
		kind = "MultiHash"
	}
	return Definition{Paths: paths, Kind: kind, Version: 2}
}

// Item is a stored item: its body as the service returns it (system
// properties included) and its ETag.
type Item struct {
	ID   string
	Key  Key
	Body []byte
	ETag string
	RU   float64 // what reading it cost
}

// ChangeRequest asks for one page of a feed range's change feed.
type ChangeRequest struct {
	Range FeedRange
	// Continuation resumes after the page that returned it; empty starts
	// at StartFrom, or at the beginning of the feed when StartFrom is zero.
	Continuation string
	// StartFrom is where the range's changes start: all of it without a
	// Continuation, and with one, the parts of the range (physical
	// partitions) the continuation has not read yet; the parts it has read
	// resume from it. A reader that starts from a time passes it with every
	// request: a range's first page comes from one partition, and the
	// others are read later.
	StartFrom time.Time
	PageSize  int
}

// ChangePage is one page of a change feed: each changed item once, at its
// latest version, in the order of the changes. An empty page means the range
// has reached the end of its feed for now.
type ChangePage struct {
	Items [][]byte
	// Continuation resumes after this page. It stays valid across splits of
	// the range: it carries the children.
	Continuation string
	RU           float64
}

// WriteResult is the outcome of a successful write.
type WriteResult struct {
	RU   float64
	ETag string
}

// BatchResult is the outcome of a transactional batch. A batch commits all
// its operations or none: when Committed is false, Statuses holds each
// operation's status (the failing one's own, 424 for the others) and
// nothing was written.
type BatchResult struct {
	Committed bool
	RU        float64
	Statuses  []int
}

// ContainerRef names a container as DATABASE/CONTAINER.
type ContainerRef struct {
	Database  string
	Container string
}

// ParseContainerRef parses "DB/CONTAINER".
func ParseContainerRef(s string) (ContainerRef, error) {
	db, coll, ok := strings.Cut(s, "/")
	if !ok || db == "" || coll == "" || strings.Contains(coll, "/") {
		return ContainerRef{}, fmt.Errorf("%q: want DATABASE/CONTAINER", s)
	}
	return ContainerRef{Database: db, Container: coll}, nil
}

func (r ContainerRef) String() string { return r.Database + "/" + r.Container }
