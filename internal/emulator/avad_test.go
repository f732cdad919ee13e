package emulator_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"
	"time"
)

// avadChange is one all-versions-and-deletes feed entry as the wire has it.
type avadChange struct {
	Current  map[string]any `json:"current"`
	Previous map[string]any `json:"previous"`
	Metadata struct {
		OperationType     string         `json:"operationType"`
		LSN               uint64         `json:"lsn"`
		CRTS              int64          `json:"crts"`
		PreviousImageLSN  uint64         `json:"previousImageLSN"`
		TimeToLiveExpired *bool          `json:"timeToLiveExpired"`
		ID                string         `json:"id"`
		PartitionKey      map[string]any `json:"partitionKey"`
	} `json:"metadata"`
}

func createContainerRaw(t *testing.T, e *env, body string) {
	t.Helper()
	res := rawDo(t, e.srv, http.MethodPost, "/dbs/"+testDB+"/colls", nil, []byte(body))
	if res.status != http.StatusCreated {
		t.Fatalf("create container %s: status %d %s", body, res.status, res.body)
	}
}

// avadRead reads one page of the all-versions feed of range 0 after the
// continuation inm ("*" for now).
func avadRead(t *testing.T, e *env, coll, rangeID, inm string) (rawResponse, []avadChange) {
	t.Helper()
	h := map[string]string{
		"A-IM": "Full-Fidelity Feed", "x-ms-cosmos-changefeed-wire-format-version": "2021-09-15",
		"x-ms-documentdb-partitionkeyrangeid": rangeID,
	}
	if inm != "" {
		h["If-None-Match"] = inm
	}
	res := rawDo(t, e.srv, http.MethodGet, "/dbs/"+testDB+"/colls/"+coll+"/docs", h, nil)
	var page struct{ Documents []avadChange }
	if res.status == http.StatusOK {
		if err := json.Unmarshal(res.body, &page); err != nil {
			t.Fatalf("feed page: %v: %s", err, res.body)
		}
	}
	return res, page.Documents
}

func itemWrite(t *testing.T, e *env, coll, method, path, pk string, body []byte) {
	t.Helper()
	h := map[string]string{"x-ms-documentdb-partitionkey": `["` + pk + `"]`}
	res := rawDo(t, e.srv, method, "/dbs/"+testDB+"/colls/"+coll+"/"+path, h, body)
	if res.status >= 300 {
		t.Fatalf("%s %s: status %d %s", method, path, res.status, res.body)
	}
}

// TestAllVersionsFeed: creates, replaces and deletes in the service's wire
// shape, from now and from a continuation; the policy reads back.
func TestAllVersionsFeed(t *testing.T) {
	e := newEnv(t)
	createContainerRaw(t, e, `{"id":"c","partitionKey":{"paths":["/pk"],"kind":"Hash","version":2},"changeFeedPolicy":{"retentionDuration":10}}`)
	if res := rawDo(t, e.srv, http.MethodGet, "/dbs/"+testDB+"/colls/c", nil, nil); !bytes.Contains(res.body, []byte(`"changeFeedPolicy":{"retentionDuration":10}`)) {
		t.Errorf("container read: %s", res.body)
	}
	res, _ := avadRead(t, e, "c", "0", "*")
	if res.status != http.StatusNotModified {
		t.Fatalf("from now on an empty container: status %d", res.status)
	}
	start := res.header.Get("etag")
	itemWrite(t, e, "c", http.MethodPost, "docs", "a", []byte(`{"id":"1","pk":"a","v":1}`))
	itemWrite(t, e, "c", http.MethodPut, "docs/1", "a", []byte(`{"id":"1","pk":"a","v":2}`))
	itemWrite(t, e, "c", http.MethodDelete, "docs/1", "a", nil)
	res, changes := avadRead(t, e, "c", "0", start)
	if res.status != http.StatusOK || len(changes) != 3 {
		t.Fatalf("status %d, %d changes, want 3: %s", res.status, len(changes), res.body)
	}
	create, replace, del := changes[0], changes[1], changes[2]
	if create.Metadata.OperationType != "create" || create.Current["v"] != 1.0 || create.Metadata.PreviousImageLSN != 0 || create.Previous != nil {
		t.Errorf("create: %+v", create)
	}
	if replace.Metadata.OperationType != "replace" || replace.Current["v"] != 2.0 || replace.Metadata.PreviousImageLSN != create.Metadata.LSN {
		t.Errorf("replace: %+v", replace)
	}
	if del.Metadata.OperationType != "delete" || len(del.Current) != 0 || del.Previous["v"] != 2.0 ||
		del.Metadata.PreviousImageLSN != replace.Metadata.LSN || del.Metadata.ID != "1" ||
		del.Metadata.PartitionKey["pk"] != "a" || del.Metadata.TimeToLiveExpired == nil || *del.Metadata.TimeToLiveExpired {
		t.Errorf("delete: %+v", del)
	}
	if !(create.Metadata.LSN < replace.Metadata.LSN && replace.Metadata.LSN < del.Metadata.LSN) || create.Metadata.CRTS == 0 {
		t.Errorf("lsn/crts: %d %d %d crts %d", create.Metadata.LSN, replace.Metadata.LSN, del.Metadata.LSN, create.Metadata.CRTS)
	}
	next := res.header.Get("etag")
	if res, _ := avadRead(t, e, "c", "0", next); res.status != http.StatusNotModified {
		t.Errorf("after the last change: status %d, want 304", res.status)
	}
	for _, h := range []map[string]string{{}, {"If-Modified-Since": time.Now().UTC().Format(http.TimeFormat)}} {
		h["A-IM"] = "Full-Fidelity Feed"
		h["x-ms-documentdb-partitionkeyrangeid"] = "0"
		if res := rawDo(t, e.srv, http.MethodGet, "/dbs/"+testDB+"/colls/c/docs", h, nil); res.status != http.StatusBadRequest {
			t.Errorf("start from the beginning or a time %v: status %d, want 400", h, res.status)
		}
	}
}

// TestAllVersionsRetention: a continuation whose changes have left the
// retention window is answered 400; so is a container without a policy.
func TestAllVersionsRetention(t *testing.T) {
	pe := newPhysicsEnv(t)
	createContainerRaw(t, pe.env, `{"id":"c","partitionKey":{"paths":["/pk"],"version":2},"changeFeedPolicy":{"retentionDuration":5}}`)
	createContainerRaw(t, pe.env, `{"id":"nopolicy","partitionKey":{"paths":["/pk"],"version":2}}`)
	if res, _ := avadRead(t, pe.env, "nopolicy", "0", "*"); res.status != http.StatusBadRequest {
		t.Errorf("container without a policy: status %d, want 400", res.status)
	}
	res, _ := avadRead(t, pe.env, "c", "0", "*")
	start := res.header.Get("etag")
	itemWrite(t, pe.env, "c", http.MethodPost, "docs", "a", []byte(`{"id":"1","pk":"a"}`))
	pe.clock.Advance(4 * time.Minute)
	if res, changes := avadRead(t, pe.env, "c", "0", start); res.status != http.StatusOK || len(changes) != 1 {
		t.Fatalf("inside the window: status %d, %d changes", res.status, len(changes))
	}
	pe.clock.Advance(2 * time.Minute)
	itemWrite(t, pe.env, "c", http.MethodPost, "docs", "a", []byte(`{"id":"2","pk":"a"}`))
	if res, _ := avadRead(t, pe.env, "c", "0", start); res.status != http.StatusBadRequest {
		t.Errorf("continuation out of the retention window: status %d, want 400", res.status)
	}
	if res, changes := avadRead(t, pe.env, "c", "0", "*"); res.status != http.StatusNotModified || len(changes) != 0 {
		t.Errorf("from now after pruning: status %d", res.status)
	}
}

// TestAllVersionsAcrossSplitAndTTL: a continuation taken on a range keeps
// working on its children after a split, a rolled-back batch leaves no
// change, and a TTL expiry is a delete with timeToLiveExpired.
func TestAllVersionsAcrossSplitAndTTL(t *testing.T) {
	pe := newPhysicsEnv(t)
	e := pe.env
	createContainerRaw(t, e, `{"id":"c","partitionKey":{"paths":["/pk"],"version":2},"defaultTtl":-1,"changeFeedPolicy":{"retentionDuration":10}}`)
	res, _ := avadRead(t, e, "c", "0", "*")
	start := res.header.Get("etag")
	for _, pk := range []string{"a", "b", "c", "d", "e", "f"} {
		itemWrite(t, e, "c", http.MethodPost, "docs", pk, []byte(`{"id":"x","pk":"`+pk+`"}`))
	}
	itemWrite(t, e, "c", http.MethodPost, "docs", "g", []byte(`{"id":"short","pk":"g","ttl":1}`))
	batch := rawDo(t, e.srv, http.MethodPost, "/dbs/"+testDB+"/colls/c/docs", map[string]string{
		"x-ms-cosmos-is-batch-request": "true", "x-ms-cosmos-batch-atomic": "true", "x-ms-documentdb-partitionkey": `["a"]`,
	}, []byte(`[{"operationType":"Create","resourceBody":{"id":"y","pk":"a"}},{"operationType":"Create","resourceBody":{"id":"x","pk":"a"}}]`))
	if batch.status != http.StatusMultiStatus {
		t.Fatalf("failing batch: status %d", batch.status)
	}
	if err := e.srv.SplitRange(testDB, "c", "0"); err != nil {
		t.Fatal(err)
	}
	pe.clock.Advance(time.Second) // the ttl of 1 second passes on the account's clock
	seen := map[string]int{}
	ttlDeletes := 0
	for _, child := range []string{"1", "2"} {
		res, changes := avadRead(t, e, "c", child, start)
		if res.status != http.StatusOK {
			t.Fatalf("child range %s: status %d %s", child, res.status, res.body)
		}
		for _, ch := range changes {
			seen[ch.Metadata.OperationType]++
			if ch.Metadata.OperationType == "delete" && ch.Metadata.TimeToLiveExpired != nil && *ch.Metadata.TimeToLiveExpired && ch.Metadata.ID == "short" {
				ttlDeletes++
			}
			if ch.Current["id"] == "y" {
				t.Errorf("a change of a rolled-back batch is in the feed")
			}
		}
	}
	if seen["create"] != 7 || seen["delete"] != 1 || ttlDeletes != 1 {
		t.Errorf("changes across both children: %v, ttl deletes %d; want 7 creates and the TTL delete", seen, ttlDeletes)
	}
	if res := rawDo(t, e.srv, http.MethodGet, "/dbs/"+testDB+"/colls/c/docs/short", map[string]string{"x-ms-documentdb-partitionkey": `["g"]`}, nil); res.status != http.StatusNotFound {
		t.Errorf("expired item read: status %d, want 404", res.status)
	}
}
