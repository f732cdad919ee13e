package emulator_test

import (
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/azcosmos"

	"github.com/rekey-dev/rekey/internal/emulator"
)

func TestContainerLifecycle(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	ttl := int32(3600)
	props := azcosmos.ContainerProperties{
		ID:                     "orders",
		PartitionKeyDefinition: azcosmos.PartitionKeyDefinition{Kind: azcosmos.PartitionKeyKindHash, Paths: []string{"/customerId"}, Version: 2},
		DefaultTimeToLive:      &ttl,
		IndexingPolicy: &azcosmos.IndexingPolicy{
			Automatic:     true,
			IndexingMode:  azcosmos.IndexingModeConsistent,
			IncludedPaths: []azcosmos.IncludedPath{{Path: "/customerId/?"}},
			ExcludedPaths: []azcosmos.ExcludedPath{{Path: "/*"}},
		},
	}
	created, err := e.db.CreateContainer(ctx, props, nil)
	if err != nil {
		t.Fatal(err)
	}
	if created.RawResponse.StatusCode != http.StatusCreated {
		t.Errorf("create: status %d, want 201", created.RawResponse.StatusCode)
	}
	_, err = e.db.CreateContainer(ctx, props, nil)
	wantStatus(t, err, http.StatusConflict)

	c, _ := e.db.NewContainer("orders")
	read, err := c.Read(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := read.ContainerProperties
	if got.ResourceID == "" || got.ETag == nil || got.SelfLink == "" {
		t.Errorf("system properties missing: %+v", got)
	}
	if !reflect.DeepEqual(got.PartitionKeyDefinition, props.PartitionKeyDefinition) {
		t.Errorf("partition key %+v, want %+v", got.PartitionKeyDefinition, props.PartitionKeyDefinition)
	}
	if got.DefaultTimeToLive == nil || *got.DefaultTimeToLive != ttl {
		t.Errorf("defaultTtl %v, want %d", got.DefaultTimeToLive, ttl)
	}
	if ip := got.IndexingPolicy; ip == nil || len(ip.IncludedPaths) != 1 || ip.IncludedPaths[0].Path != "/customerId/?" ||
		len(ip.ExcludedPaths) != 1 || ip.ExcludedPaths[0].Path != "/*" || !consistent(ip.IndexingMode) {
		t.Errorf("indexing policy %+v, want the one created", got.IndexingPolicy)
	}

	// Replace: the indexing policy and TTL may change.
	got.IndexingPolicy = &azcosmos.IndexingPolicy{Automatic: true, IndexingMode: azcosmos.IndexingModeConsistent,
		IncludedPaths: []azcosmos.IncludedPath{{Path: "/*"}}}
	got.DefaultTimeToLive = nil
	replaced, err := c.Replace(ctx, *got, nil)
	if err != nil {
		t.Fatal(err)
	}
	if *replaced.ContainerProperties.ETag == *read.ContainerProperties.ETag {
		t.Error("replace kept the ETag")
	}
	reread, err := c.Read(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ip := reread.ContainerProperties.IndexingPolicy; len(ip.IncludedPaths) != 1 || ip.IncludedPaths[0].Path != "/*" || len(ip.ExcludedPaths) != 0 {
		t.Errorf("replaced indexing policy %+v", ip)
	}
	if reread.ContainerProperties.DefaultTimeToLive != nil {
		t.Errorf("defaultTtl %d after removing it", *reread.ContainerProperties.DefaultTimeToLive)
	}

	// ... but not the partition key.
	bad := *reread.ContainerProperties
	bad.PartitionKeyDefinition = azcosmos.PartitionKeyDefinition{Paths: []string{"/tenantId"}, Version: 2}
	_, err = c.Replace(ctx, bad, nil)
	wantStatus(t, err, http.StatusBadRequest)

	var ids []string
	pager := e.db.NewQueryContainersPager("SELECT * FROM root r WHERE r.id = @id", &azcosmos.QueryContainersOptions{
		QueryParameters: []azcosmos.QueryParameter{{Name: "@id", Value: "orders"}},
	})
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range page.Containers {
			ids = append(ids, p.ID)
		}
	}
	if !reflect.DeepEqual(ids, []string{"orders"}) {
		t.Errorf("query containers by id: %v", ids)
	}

	del, err := c.Delete(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if del.RawResponse.StatusCode != http.StatusNoContent {
		t.Errorf("delete: status %d, want 204", del.RawResponse.StatusCode)
	}
	_, err = c.Read(ctx, nil)
	wantStatus(t, err, http.StatusNotFound)
}

func TestContainerPartitionKeyDefinitions(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		def  azcosmos.PartitionKeyDefinition
		want azcosmos.PartitionKeyDefinition // zero: as given
		fail bool
	}{
		{name: "hash v1", def: azcosmos.PartitionKeyDefinition{Paths: []string{"/a"}},
			want: azcosmos.PartitionKeyDefinition{Kind: azcosmos.PartitionKeyKindHash, Paths: []string{"/a"}}},
		{name: "hash v2", def: azcosmos.PartitionKeyDefinition{Kind: azcosmos.PartitionKeyKindHash, Paths: []string{"/a"}, Version: 2}},
		{name: "multihash", def: azcosmos.PartitionKeyDefinition{Kind: azcosmos.PartitionKeyKindMultiHash, Paths: []string{"/t", "/u", "/s"}, Version: 2}},
		{name: "multihash v1", def: azcosmos.PartitionKeyDefinition{Kind: azcosmos.PartitionKeyKindMultiHash, Paths: []string{"/t", "/u"}, Version: 1}, fail: true},
		{name: "four paths", def: azcosmos.PartitionKeyDefinition{Kind: azcosmos.PartitionKeyKindMultiHash, Paths: []string{"/a", "/b", "/c", "/d"}, Version: 2}, fail: true},
		{name: "hash two paths", def: azcosmos.PartitionKeyDefinition{Kind: azcosmos.PartitionKeyKindHash, Paths: []string{"/a", "/b"}, Version: 2}, fail: true},
		{name: "no slash", def: azcosmos.PartitionKeyDefinition{Paths: []string{"a"}, Version: 2}, fail: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.db.CreateContainer(ctx, azcosmos.ContainerProperties{ID: tc.name, PartitionKeyDefinition: tc.def}, nil)
			if tc.fail {
				wantStatus(t, err, http.StatusBadRequest)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			c, _ := e.db.NewContainer(tc.name)
			read, err := c.Read(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			want := tc.want
			if want.Paths == nil {
				want = tc.def
			}
			if !reflect.DeepEqual(read.ContainerProperties.PartitionKeyDefinition, want) {
				t.Errorf("stored %+v, want %+v", read.ContainerProperties.PartitionKeyDefinition, want)
			}
		})
	}
}

func TestContainerDefaultIndexingPolicy(t *testing.T) {
	e := newEnv(t)
	c := e.container(t, "c", 0)
	read, err := c.Read(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ip := read.ContainerProperties.IndexingPolicy
	if ip == nil || !ip.Automatic || !consistent(ip.IndexingMode) || len(ip.IncludedPaths) != 1 || ip.IncludedPaths[0].Path != "/*" {
		t.Errorf("default indexing policy %+v", ip)
	}
}

// consistent reports whether m is the consistent mode, which the service
// writes in lower case ("consistent") and the SDK's constant capitalizes.
func consistent(m azcosmos.IndexingMode) bool {
	return strings.EqualFold(string(m), string(azcosmos.IndexingModeConsistent))
}

func TestContainerThroughput(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()

	manual := e.container(t, "manual", 400)
	wantManual(t, readThroughput(t, manual), 400)
	if _, err := manual.ReplaceThroughput(ctx, azcosmos.NewManualThroughputProperties(900), nil); err != nil {
		t.Fatal(err)
	}
	wantManual(t, readThroughput(t, manual), 900)
	_, err := manual.ReplaceThroughput(ctx, azcosmos.NewManualThroughputProperties(350), nil)
	wantStatus(t, err, http.StatusBadRequest)

	tp := azcosmos.NewAutoscaleThroughputProperties(4000)
	if _, err := e.db.CreateContainer(ctx, azcosmos.ContainerProperties{ID: "auto", PartitionKeyDefinition: azcosmos.PartitionKeyDefinition{Paths: []string{"/pk"}}},
		&azcosmos.CreateContainerOptions{ThroughputProperties: &tp}); err != nil {
		t.Fatal(err)
	}
	auto, _ := e.db.NewContainer("auto")
	wantAutoscale(t, readThroughput(t, auto), 4000)
	if _, err := auto.ReplaceThroughput(ctx, azcosmos.NewAutoscaleThroughputProperties(5000), nil); err != nil {
		t.Fatal(err)
	}
	wantAutoscale(t, readThroughput(t, auto), 5000)

	// A container created without throughput in a database without any gets
	// the minimum: 400 RU/s manual.
	plain := e.container(t, "plain", 0)
	wantManual(t, readThroughput(t, plain), 400)
}

func readThroughput(t *testing.T, c *azcosmos.ContainerClient) azcosmos.ThroughputProperties {
	t.Helper()
	resp, err := c.ReadThroughput(context.Background(), nil)
	if err != nil {
		t.Fatalf("read throughput: %v", err)
	}
	return *resp.ThroughputProperties
}

// A new container gets max(1, ceil(RU/s / 6,000)) physical partitions.
func TestContainerPartitionsAtCreate(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		ru   int32
		want int
	}{{400, 1}, {6000, 1}, {6100, 2}, {12000, 2}, {12100, 3}, {30000, 5}} {
		c := e.container(t, "c"+strconv.Itoa(int(tc.ru)), tc.ru)
		ranges := feedRanges(t, c)
		if len(ranges) != tc.want {
			t.Errorf("%d RU/s: %d feed ranges, want %d", tc.ru, len(ranges), tc.want)
		}
		checkContiguous(t, ranges)
	}
	// The service takes throughput in steps of 100 RU/s.
	p := azcosmos.NewManualThroughputProperties(6001)
	_, err := e.db.CreateContainer(context.Background(), azcosmos.ContainerProperties{ID: "odd", PartitionKeyDefinition: azcosmos.PartitionKeyDefinition{Paths: []string{"/pk"}}},
		&azcosmos.CreateContainerOptions{ThroughputProperties: &p})
	wantStatus(t, err, http.StatusBadRequest)
}

// checkContiguous checks that ranges cover "" to "FF" without gaps or overlaps.
func checkContiguous(t testing.TB, ranges []azcosmos.FeedRange) {
	t.Helper()
	if len(ranges) == 0 {
		t.Fatal("no ranges")
	}
	if ranges[0].MinInclusive != "" || ranges[len(ranges)-1].MaxExclusive != "FF" {
		t.Errorf("ranges span %q..%q, want \"\"..\"FF\"", ranges[0].MinInclusive, ranges[len(ranges)-1].MaxExclusive)
	}
	for i := 1; i < len(ranges); i++ {
		if ranges[i].MinInclusive != ranges[i-1].MaxExclusive {
			t.Errorf("range %d starts at %q, range %d ends at %q", i, ranges[i].MinInclusive, i-1, ranges[i-1].MaxExclusive)
		}
	}
}

// Raising throughput past partitions x 10,000 RU/s splits partitions after
// the split delay; the parent keeps serving until then.
func TestContainerThroughputRaiseSplits(t *testing.T) {
	e := newEnv(t)
	c := e.container(t, "c", 400)
	upsert(t, c, "a", doc{"id": "1", "pk": "a"})
	resp, err := c.ReplaceThroughput(context.Background(), azcosmos.NewManualThroughputProperties(25000), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.RawResponse.Header.Get("x-ms-offer-replace-pending") != "true" {
		t.Error("a raise that splits should answer x-ms-offer-replace-pending: true")
	}
	deadline := time.Now().Add(5 * time.Second)
	var ranges []pkRange
	for {
		ranges = readPKRanges(t, e.srv, "c")
		if len(ranges) == 3 || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if len(ranges) != 3 {
		t.Fatalf("%d ranges after raising to 25,000 RU/s, want 3", len(ranges))
	}
	// The item moved with its range.
	if _, err := c.ReadItem(context.Background(), azcosmos.NewPartitionKeyString("a"), "1", nil); err != nil {
		t.Fatalf("read after split: %v", err)
	}
}

// pkRange is one document of the /pkranges feed.
type pkRange struct {
	ID           string   `json:"id"`
	MinInclusive string   `json:"minInclusive"`
	MaxExclusive string   `json:"maxExclusive"`
	Parents      []string `json:"parents"`
}

// readPKRanges reads a container's partition key ranges with a raw request,
// bypassing the SDK's routing-map cache.
func readPKRanges(t testing.TB, srv *emulator.Server, coll string) []pkRange {
	t.Helper()
	resp := rawDo(t, srv, http.MethodGet, "/dbs/"+testDB+"/colls/"+coll+"/pkranges", nil, nil)
	if resp.status != http.StatusOK {
		t.Fatalf("pkranges: %d %s", resp.status, resp.body)
	}
	var feed struct {
		PartitionKeyRanges []pkRange `json:"PartitionKeyRanges"`
	}
	if err := json.Unmarshal(resp.body, &feed); err != nil {
		t.Fatal(err)
	}
	return feed.PartitionKeyRanges
}
