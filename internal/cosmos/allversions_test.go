package cosmos

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rekey-dev/rekey/internal/emulator"
	"github.com/rekey-dev/rekey/internal/epk"
	"github.com/rekey-dev/rekey/migrate"
)

var everythingRange = migrate.FeedRange{Min: "", Max: "FF"}

// resourceCollections is the resource type of containers, which tests
// create and replace with raw requests.
const resourceCollections = "colls"

// allVersionsContainer creates db/id with a change feed policy keeping
// versions for retention minutes, ru RU/s and the extra properties given
// (defaultTtl, ...). azcosmos v1.5.0 has no change feed policy, so the
// container is created with a raw request.
func (e *env) allVersionsContainer(t testing.TB, id string, ru, retention int, extra map[string]any) *Container {
	t.Helper()
	_ = e.client.CreateContainer(tctx(t), testDB, "placeholder", migrate.Definition{Paths: []string{"/pk"}}, 400, 0) // the database
	props := map[string]any{
		"id":               id,
		"partitionKey":     map[string]any{"paths": []string{"/pk"}, "kind": "Hash", "version": 2},
		"changeFeedPolicy": map[string]any{"retentionDuration": retention},
	}
	for k, v := range extra {
		props[k] = v
	}
	body, _ := json.Marshal(props)
	h := http.Header{}
	h.Set("x-ms-offer-throughput", strconv.Itoa(ru))
	_, err := e.client.send(tctx(t), rawRequest{
		op: "create container " + id, method: http.MethodPost, header: h, body: body,
		target: rawTarget{resourceType: resourceCollections, link: "dbs/" + testDB},
		path:   "dbs/" + testDB + "/colls",
	})
	if err != nil {
		t.Fatalf("create container %s with a change feed policy: %v", id, err)
	}
	return e.client.Container(testDB, id)
}

// drainAllVersions reads pages from cont until one is empty, returning the
// changes and the last continuation.
func drainAllVersions(t testing.TB, c *Container, fr migrate.FeedRange, cont string, pageSize int) ([]ChangeEntry, string) {
	t.Helper()
	var all []ChangeEntry
	for range 1000 {
		page, err := c.ReadAllVersions(tctx(t), AllVersionsRequest{Range: fr, Continuation: cont, PageSize: pageSize})
		if err != nil {
			t.Fatalf("read all versions: %v", err)
		}
		if page.Continuation == "" || page.RU <= 0 {
			t.Fatalf("page without continuation or charge: %+v", page)
		}
		cont = page.Continuation
		if len(page.Changes) == 0 {
			return all, cont
		}
		all = append(all, page.Changes...)
	}
	t.Fatal("the feed did not end")
	return nil, ""
}

func TestAllVersionsNotEnabledWithoutAPolicy(t *testing.T) {
	e := newEnv(t)
	c := e.container(t, "plain", 400)
	_, err := c.AllVersionsBookmark(tctx(t), everythingRange)
	var re *migrate.RequestError
	if !errors.Is(err, ErrAllVersionsNotEnabled) || errors.Is(err, ErrOutOfRetention) || !errors.Is(err, migrate.ErrBadRequest) || !errors.As(err, &re) {
		t.Fatalf("bookmark on a container without a change feed policy: %v, want ErrAllVersionsNotEnabled with the 400", err)
	}

	// A continuation of a container whose policy was then removed: the
	// 400 is told from an out-of-retention one by the probe from now.
	c = e.allVersionsContainer(t, "was", 6000, 10, nil)
	bookmark, err := c.AllVersionsBookmark(tctx(t), everythingRange)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"id":"was","partitionKey":{"paths":["/pk"],"kind":"Hash","version":2}}`)
	if _, err := e.client.send(tctx(t), rawRequest{op: "replace container", method: http.MethodPut, body: body,
		target: rawTarget{resourceType: resourceCollections, link: containerLink(testDB, "was")}, path: containerPath(testDB, "was")}); err != nil {
		t.Fatal(err)
	}
	_, err = c.ReadAllVersions(tctx(t), AllVersionsRequest{Range: everythingRange, Continuation: bookmark})
	if !errors.Is(err, ErrAllVersionsNotEnabled) || errors.Is(err, ErrOutOfRetention) || !errors.As(err, &re) || re.Status != http.StatusBadRequest {
		t.Fatalf("read after the policy was removed: %v, want ErrAllVersionsNotEnabled with the 400", err)
	}
}

// TestAllVersionsCarriesEveryChange: from a bookmark taken before the
// writes, the feed returns each create, replace and delete in order, with
// the metadata the wire format documents.
func TestAllVersionsCarriesEveryChange(t *testing.T) {
	e := newEnv(t)
	c := e.allVersionsContainer(t, "c", 6000, 10, nil)
	bookmark, err := c.AllVersionsBookmark(tctx(t), everythingRange)
	if err != nil {
		t.Fatal(err)
	}
	first := mustCreate(t, c, key("a"), itemBody(t, "1", "a", 1))
	if _, err := c.Replace(tctx(t), key("a"), "1", itemBody(t, "1", "a", 2), first.ETag); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, c, key("b"), itemBody(t, "2", "b", 1))
	if _, err := c.Delete(tctx(t), key("a"), "1", ""); err != nil {
		t.Fatal(err)
	}
	changes, cont := drainAllVersions(t, c, everythingRange, bookmark, 2)
	want := []struct {
		op string
		id string
		v  float64
	}{{ChangeCreate, "1", 1}, {ChangeReplace, "1", 2}, {ChangeCreate, "2", 1}, {ChangeDelete, "1", 0}}
	if len(changes) != len(want) {
		t.Fatalf("%d changes, want %d: %+v", len(changes), len(want), changes)
	}
	var lsn int64
	for i, w := range want {
		ch := changes[i]
		m := ch.Metadata
		if m.OperationType != w.op || m.LSN <= lsn || m.CRTS <= 0 || len(ch.MetadataJSON) == 0 {
			t.Errorf("change %d: metadata %+v, want %s after LSN %d", i, m, w.op, lsn)
		}
		lsn = m.LSN
		switch w.op {
		case ChangeDelete:
			if ch.Current != nil || m.ID != w.id || string(m.PartitionKey) != `{"pk":"a"}` || m.TimeToLiveExpired || m.PreviousImageLSN == 0 {
				t.Errorf("delete: current %s, metadata %+v", ch.Current, m)
			}
			if ch.Previous != nil && fields(t, ch.Previous)["v"] != float64(2) {
				t.Errorf("delete: previous %s, want the last version", ch.Previous)
			}
		default:
			f := fields(t, ch.Current)
			if f["id"] != w.id || f["v"] != w.v {
				t.Errorf("change %d: current %s, want id %s v %v", i, ch.Current, w.id, w.v)
			}
			if (w.op == ChangeReplace) != (m.PreviousImageLSN != 0) {
				t.Errorf("change %d (%s): previousImageLSN %d", i, w.op, m.PreviousImageLSN)
			}
		}
	}
	// Nothing new: the same continuation gives an empty page again.
	if again, _ := drainAllVersions(t, c, everythingRange, cont, 2); len(again) != 0 {
		t.Errorf("%d changes after the end", len(again))
	}
}

// TestAllVersionsAcrossRangesAndASplit: the bookmark of the whole key
// space covers three partitions; changes made before and after a split
// are each returned once, whether the reader meets the split as a 410 (it
// knew the parent) or finds it in the ranges (a new client, as after a
// restart).
func TestAllVersionsAcrossRangesAndASplit(t *testing.T) {
	e := newEnv(t)
	e.allVersionsContainer(t, "c", 18000, 10, nil)
	client, rec := recordingClient(t, e.srv, nil, nil)
	c := client.Container(testDB, "c")
	bookmark, err := c.AllVersionsBookmark(tctx(t), everythingRange)
	if err != nil {
		t.Fatal(err)
	}
	var tok allVersionsToken
	if err := json.Unmarshal([]byte(bookmark), &tok); err != nil || len(tok.Positions) != 3 {
		t.Fatalf("bookmark %s: want three positions", bookmark)
	}
	write := func(from, to int) {
		for i := from; i < to; i++ {
			mustCreate(t, c, key(fmt.Sprintf("k%d", i)), itemBody(t, fmt.Sprint(i), fmt.Sprintf("k%d", i), i))
		}
	}
	got := map[string]int{}
	collect := func(changes []ChangeEntry) {
		for _, ch := range changes {
			got[fields(t, ch.Current)["id"].(string)]++
		}
	}
	write(0, 30)
	changes, cont := drainAllVersions(t, c, everythingRange, bookmark, 7)
	collect(changes)

	write(30, 60)
	ranges, err := c.PartitionKeyRanges(tctx(t))
	if err != nil {
		t.Fatal(err)
	}
	parent := ranges[1].ID
	if err := e.srv.SplitRange(testDB, "c", parent); err != nil {
		t.Fatal(err)
	}
	write(60, 75)
	changes, cont = drainAllVersions(t, c, everythingRange, cont, 7)
	collect(changes)
	metGone := false
	rec.mu.Lock()
	for i, p := range rec.paths {
		metGone = metGone || (strings.HasSuffix(p, "/docs") && rec.headers[i].Get("A-IM") == allVersionsAIM && rec.headers[i].Get(headerRangeID) == parent)
	}
	rec.mu.Unlock()
	if !metGone {
		t.Error("the reader never asked the split range, so its 410 was not exercised")
	}
	if err := json.Unmarshal([]byte(cont), &tok); err != nil || len(tok.Positions) != 4 {
		t.Errorf("continuation after the split %s: want four positions", cont)
	}

	write(75, 90)
	restarted := newTestClient(t, e.srv, nil).Container(testDB, "c")
	changes, _ = drainAllVersions(t, restarted, everythingRange, cont, 7)
	collect(changes)
	if len(got) != 90 {
		t.Fatalf("%d distinct items, want 90", len(got))
	}
	for id, n := range got {
		if n != 1 {
			t.Errorf("item %s came %d times", id, n)
		}
	}
}

// TestAllVersionsOfPartOfARange reads a feed range narrower than its
// partition (x-ms-start-epk / x-ms-end-epk): only that part's changes.
func TestAllVersionsOfPartOfARange(t *testing.T) {
	e := newEnv(t)
	c := e.allVersionsContainer(t, "c", 6000, 10, nil)
	halves := []migrate.FeedRange{{Min: "", Max: "20"}, {Min: "20", Max: "FF"}}
	var bookmarks []string
	for _, h := range halves {
		b, err := c.AllVersionsBookmark(tctx(t), h)
		if err != nil {
			t.Fatal(err)
		}
		bookmarks = append(bookmarks, b)
	}
	for i := range 40 {
		mustCreate(t, c, key(fmt.Sprintf("k%d", i)), itemBody(t, fmt.Sprint(i), fmt.Sprintf("k%d", i), i))
	}
	total := 0
	for i, h := range halves {
		changes, _ := drainAllVersions(t, c, h, bookmarks[i], 100)
		for _, ch := range changes {
			pk := fields(t, ch.Current)["pk"].(string)
			hash, err := epk.Hash(epk.Definition{Paths: []string{"/pk"}, Kind: epk.KindHash, Version: epk.Version2}, []any{pk})
			if err != nil || !(epk.Range{Min: h.Min, Max: h.Max}).Contains(hash) {
				t.Errorf("half %v served key %s (EPK %s, %v)", h, pk, hash, err)
			}
		}
		if len(changes) == 0 || len(changes) == 40 {
			t.Errorf("half %v: %d changes, want a part of 40", h, len(changes))
		}
		total += len(changes)
	}
	if total != 40 {
		t.Errorf("%d changes in the two halves, want 40", total)
	}
}

// manualClock is the emulator's clock in retention tests.
type manualClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestAllVersionsOutOfRetention: a continuation whose changes have left
// the retention window fails with ErrOutOfRetention, told apart from a
// container without a policy; a new bookmark works.
func TestAllVersionsOutOfRetention(t *testing.T) {
	clk := &manualClock{t: time.Now()}
	e := newEnv(t, func(o *emulator.ServerOptions) { o.Clock = clk.Now })
	c := e.allVersionsContainer(t, "c", 6000, 1, nil)
	bookmark, err := c.AllVersionsBookmark(tctx(t), everythingRange)
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(t, c, key("a"), itemBody(t, "1", "a", 1))
	clk.Advance(2 * time.Minute)
	mustCreate(t, c, key("a"), itemBody(t, "2", "a", 1))
	_, err = c.ReadAllVersions(tctx(t), AllVersionsRequest{Range: everythingRange, Continuation: bookmark})
	var re *migrate.RequestError
	if !errors.Is(err, ErrOutOfRetention) || errors.Is(err, ErrAllVersionsNotEnabled) || !errors.As(err, &re) || re.Status != http.StatusBadRequest {
		t.Fatalf("read past the retention: %v, want ErrOutOfRetention with the 400", err)
	}
	fresh, err := c.AllVersionsBookmark(tctx(t), everythingRange)
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(t, c, key("a"), itemBody(t, "3", "a", 1))
	if changes, _ := drainAllVersions(t, c, everythingRange, fresh, 10); len(changes) != 1 {
		t.Errorf("%d changes from a new bookmark, want 1", len(changes))
	}
}

func TestAllVersionsRefusesForeignContinuations(t *testing.T) {
	e := newEnv(t)
	c := e.allVersionsContainer(t, "c", 6000, 10, nil)
	other := e.allVersionsContainer(t, "other", 6000, 10, nil)
	mine, err := c.AllVersionsBookmark(tctx(t), everythingRange)
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := other.AllVersionsBookmark(tctx(t), everythingRange)
	if err != nil {
		t.Fatal(err)
	}
	latest, err := c.ReadChanges(tctx(t), migrate.ChangeRequest{Range: everythingRange})
	if err != nil {
		t.Fatal(err)
	}
	for name, req := range map[string]AllVersionsRequest{
		"none":                    {Range: everythingRange},
		"garbage":                 {Range: everythingRange, Continuation: "garbage"},
		"a latest-version token":  {Range: everythingRange, Continuation: latest.Continuation},
		"another container's":     {Range: everythingRange, Continuation: theirs},
		"another range's":         {Range: migrate.FeedRange{Min: "", Max: "80"}, Continuation: mine},
		"a position without ETag": {Range: everythingRange, Continuation: tokenText(t, mine, func(tok *allVersionsToken) { tok.Positions[0].ETag = "*" })},
		"positions with a gap":    {Range: everythingRange, Continuation: tokenText(t, mine, func(tok *allVersionsToken) { tok.Positions[0].Min = "10" })},
		"overlapping positions":   {Range: everythingRange, Continuation: tokenText(t, mine, func(tok *allVersionsToken) { tok.Positions = append(tok.Positions, tok.Positions[0]) })},
	} {
		_, err := c.ReadAllVersions(tctx(t), req)
		var re *migrate.RequestError
		if !errors.Is(err, ErrBadContinuation) || errors.As(err, &re) {
			t.Errorf("%s: %v, want ErrBadContinuation", name, err)
		}
	}
}

// tokenText rewrites a continuation with mutate.
func tokenText(t testing.TB, s string, mutate func(*allVersionsToken)) string {
	t.Helper()
	var tok allVersionsToken
	if err := json.Unmarshal([]byte(s), &tok); err != nil {
		t.Fatal(err)
	}
	mutate(&tok)
	return tok.encode()
}

// TestParseChangesWireShape parses the wire shape Microsoft's references
// document (.NET ChangeFeedItem/ChangeFeedMetadata, Azure Functions'
// CosmosDBv4ChangeFeedItem): a replace and a delete whose current is {}.
func TestParseChangesWireShape(t *testing.T) {
	body := `{"_rid":"x","Documents":[
	  {"current":{"id":"1","pk":"a","v":2,"_lsn":7},
	   "metadata":{"operationType":"replace","lsn":7,"crts":1700000000,"previousImageLSN":5}},
	  {"current":{},"previous":{"id":"1","pk":"a","v":2},
	   "metadata":{"operationType":"delete","lsn":8,"crts":1700000003,"previousImageLSN":7,
	               "timeToLiveExpired":true,"id":"1","partitionKey":{"pk":"a"}}}],"_count":2}`
	changes, err := parseChanges([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 2 {
		t.Fatalf("%d changes", len(changes))
	}
	r, d := changes[0], changes[1]
	if m := r.Metadata; m.OperationType != "replace" || m.LSN != 7 || m.CRTS != 1700000000 || m.PreviousImageLSN != 5 || m.ID != "" || m.PartitionKey != nil || fields(t, r.Current)["v"] != float64(2) || r.Previous != nil {
		t.Errorf("replace: %+v", r)
	}
	if d.Current != nil || fields(t, d.Previous)["id"] != "1" || d.Metadata.ID != "1" || !d.Metadata.TimeToLiveExpired || string(d.Metadata.PartitionKey) != `{"pk":"a"}` {
		t.Errorf("delete: %+v", d)
	}
	for _, bad := range []string{`{"Documents":[{"id":"1","pk":"a"}]}`, `{"Documents":[{"current":{},"metadata":{"operationType":"upsert","lsn":1}}]}`, `[]`} {
		if _, err := parseChanges([]byte(bad)); err == nil {
			t.Errorf("%s was accepted", bad)
		}
	}
}

func TestTokenSplitAndTiles(t *testing.T) {
	tok := allVersionsToken{Range: tokenRange{"", "FF"}, Positions: []position{{"", "80", `"5"`}, {"80", "FF", `"9"`}}}
	tok.split([]PartitionKeyRange{{"3", "", "40"}, {"4", "40", "A0"}})
	want := []position{{"", "40", `"5"`}, {"40", "80", `"5"`}, {"80", "FF", `"9"`}}
	if fmt.Sprint(tok.Positions) != fmt.Sprint(want) || !tiles(tok.Positions, tok.Range) {
		t.Errorf("split: %v, want %v", tok.Positions, want)
	}
	tok.rotate()
	if tok.Positions[2] != want[0] || !tiles(tok.Positions, tok.Range) {
		t.Errorf("rotate: %v", tok.Positions)
	}
	last := allVersionsToken{Range: tokenRange{"80", "FF"}, Positions: []position{{"80", "FF", `"1"`}}}
	last.split([]PartitionKeyRange{{"5", "80", "C0"}, {"6", "C0", "FF"}})
	if fmt.Sprint(last.Positions) != fmt.Sprint([]position{{"80", "C0", `"1"`}, {"C0", "FF", `"1"`}}) {
		t.Errorf("split at the top: %v", last.Positions)
	}
}
