package emulator_test

import (
	"context"
	"net/http"
	"sort"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/azcosmos"
)

// The time-to-live tests run on the account's manual clock: items expire
// when the test advances it, never by waiting.

// ttlVisible returns the ids of pk's items that a point read, a query and
// the latest-version change feed each still see, so a test can check that
// an expired item leaves all three at once.
func ttlVisible(t *testing.T, pe *physicsEnv, c *azcosmos.ContainerClient, pk string, ids ...string) (reads, query, feed []string) {
	t.Helper()
	key := azcosmos.NewPartitionKeyString(pk)
	for _, id := range ids {
		_, err := c.ReadItem(context.Background(), key, id, nil)
		if err == nil {
			reads = append(reads, id)
		} else if responseError(t, err).StatusCode != http.StatusNotFound {
			t.Fatalf("read %s: %v", id, err)
		}
	}
	for _, raw := range queryAll(t, c, "SELECT * FROM c", key, nil) {
		query = append(query, decodeDoc(t, raw)["id"].(string))
	}
	from := pe.clock.Now().Add(-24 * time.Hour)
	for _, d := range newFeedReader(t, c, azcosmos.ChangeFeedOptions{StartFrom: &from}).drain() {
		feed = append(feed, d["id"].(string))
	}
	sort.Strings(query)
	sort.Strings(feed)
	return reads, query, feed
}

func sameIDs(got []string, want ...string) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i] != want[i] {
			return false
		}
	}
	return true
}

// TestTTLExpiryOnManualClock: an item expires defaultTtl seconds after its
// last write, or after its own ttl; -1 never expires; an expired item is
// gone for point reads, queries and the change feed in the same instant; a
// rewrite restarts the clock; removing the container's defaultTtl stops
// expiry whatever the items say.
func TestTTLExpiryOnManualClock(t *testing.T) {
	pe := newPhysicsEnv(t)
	createContainerRaw(t, pe.env, `{"id":"c","partitionKey":{"paths":["/pk"],"version":2},"defaultTtl":10}`)
	c, err := pe.db.NewContainer("c")
	if err != nil {
		t.Fatal(err)
	}
	start := pe.clock.Now().Unix()
	upsert(t, c, "p", doc{"id": "default", "pk": "p"})
	read, err := c.ReadItem(context.Background(), azcosmos.NewPartitionKeyString("p"), "default", nil)
	if err != nil {
		t.Fatal(err)
	}
	if ts := decodeDoc(t, read.Value)["_ts"]; ts != float64(start) {
		t.Errorf("_ts %v, want the account clock's %d", ts, start)
	}
	upsert(t, c, "p", doc{"id": "own30", "pk": "p", "ttl": 30})
	upsert(t, c, "p", doc{"id": "never", "pk": "p", "ttl": -1})
	upsert(t, c, "p", doc{"id": "rewritten", "pk": "p"})
	all := []string{"default", "never", "own30", "rewritten"}

	pe.clock.Advance(5 * time.Second)
	upsert(t, c, "p", doc{"id": "rewritten", "pk": "p", "v": 2}) // now expires at start+15
	pe.clock.Advance(4 * time.Second)                            // start+9
	if r, q, f := ttlVisible(t, pe, c, "p", all...); !sameIDs(r, all...) || !sameIDs(q, all...) || !sameIDs(f, all...) {
		t.Fatalf("at +9s: reads %v, query %v, feed %v; want all four", r, q, f)
	}
	pe.clock.Advance(time.Second) // start+10: "default" expires
	want := []string{"never", "own30", "rewritten"}
	if r, q, f := ttlVisible(t, pe, c, "p", all...); !sameIDs(r, want...) || !sameIDs(q, want...) || !sameIDs(f, want...) {
		t.Errorf("at +10s: reads %v, query %v, feed %v; want %v", r, q, f, want)
	}
	pe.clock.Advance(5 * time.Second) // start+15: the rewrite's ttl runs out
	want = []string{"never", "own30"}
	if r, q, f := ttlVisible(t, pe, c, "p", all...); !sameIDs(r, want...) || !sameIDs(q, want...) || !sameIDs(f, want...) {
		t.Errorf("at +15s: reads %v, query %v, feed %v; want %v", r, q, f, want)
	}

	// Without a container defaultTtl, no item expires, own ttl or not.
	res := rawDo(t, pe.srv, http.MethodPut, "/dbs/"+testDB+"/colls/c", nil, []byte(`{"id":"c","partitionKey":{"paths":["/pk"],"kind":"Hash","version":2}}`))
	if res.status != http.StatusOK {
		t.Fatalf("replace container without defaultTtl: status %d %s", res.status, res.body)
	}
	pe.clock.Advance(time.Hour)
	if r, _, _ := ttlVisible(t, pe, c, "p", all...); !sameIDs(r, want...) {
		t.Errorf("an hour after turning TTL off: reads %v, want %v", r, want)
	}
	// Turning it back on applies the items' own ttl to their old _ts.
	res = rawDo(t, pe.srv, http.MethodPut, "/dbs/"+testDB+"/colls/c", nil, []byte(`{"id":"c","partitionKey":{"paths":["/pk"],"kind":"Hash","version":2},"defaultTtl":-1}`))
	if res.status != http.StatusOK {
		t.Fatalf("replace container with defaultTtl -1: status %d %s", res.status, res.body)
	}
	if r, q, _ := ttlVisible(t, pe, c, "p", all...); !sameIDs(r, "never") || !sameIDs(q, "never") {
		t.Errorf("TTL back on: reads %v, query %v; want only the item that never expires", r, q)
	}
}

// TestTTLDeleteInAllVersionsFeed: on the manual clock, an expiry is absent
// from the all-versions feed until the item's time comes, then appears as a
// delete with timeToLiveExpired, the expired version as previous and the
// account clock's time as crts; a user delete says timeToLiveExpired false.
func TestTTLDeleteInAllVersionsFeed(t *testing.T) {
	pe := newPhysicsEnv(t)
	createContainerRaw(t, pe.env, `{"id":"c","partitionKey":{"paths":["/pk"],"version":2},"defaultTtl":-1,"changeFeedPolicy":{"retentionDuration":10}}`)
	res, _ := avadRead(t, pe.env, "c", "0", "*")
	start := res.header.Get("etag")
	written := pe.clock.Now().Unix()
	itemWrite(t, pe.env, "c", http.MethodPost, "docs", "a", []byte(`{"id":"short","pk":"a","ttl":5}`))
	itemWrite(t, pe.env, "c", http.MethodPost, "docs", "a", []byte(`{"id":"kept","pk":"a"}`))
	res, changes := avadRead(t, pe.env, "c", "0", start)
	if res.status != http.StatusOK || len(changes) != 2 {
		t.Fatalf("the creates: status %d, %d changes", res.status, len(changes))
	}
	afterCreates := res.header.Get("etag")

	pe.clock.Advance(4 * time.Second)
	if res, changes := avadRead(t, pe.env, "c", "0", afterCreates); res.status != http.StatusNotModified || len(changes) != 0 {
		t.Fatalf("a second before expiry: status %d, %d changes; want 304", res.status, len(changes))
	}
	pe.clock.Advance(time.Second)
	res, changes = avadRead(t, pe.env, "c", "0", afterCreates)
	if res.status != http.StatusOK || len(changes) != 1 {
		t.Fatalf("at expiry: status %d, %d changes; want the TTL delete", res.status, len(changes))
	}
	del := changes[0]
	if del.Metadata.OperationType != "delete" || del.Metadata.ID != "short" || del.Metadata.TimeToLiveExpired == nil || !*del.Metadata.TimeToLiveExpired {
		t.Errorf("TTL delete metadata %+v", del.Metadata)
	}
	if del.Metadata.CRTS != written+5 || del.Previous["id"] != "short" || del.Previous["_ts"] != float64(written) {
		t.Errorf("TTL delete: crts %d (want %d), previous %v", del.Metadata.CRTS, written+5, del.Previous)
	}

	next := res.header.Get("etag")
	itemWrite(t, pe.env, "c", http.MethodDelete, "docs/kept", "a", nil)
	if _, changes := avadRead(t, pe.env, "c", "0", next); len(changes) != 1 || changes[0].Metadata.TimeToLiveExpired == nil || *changes[0].Metadata.TimeToLiveExpired {
		t.Errorf("a user delete: %+v; want timeToLiveExpired false", changes)
	}
}
