package emulator_test

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/azcosmos"
)

// The cost model's figures reach clients as x-ms-request-charge: a 1 KB
// insert about 5.5 RU with the default indexing policy and less without
// indexing, a replace twice that, a 1 KB point read 1 RU, queries growing with
// the items they examine, a change-feed page a small charge plus about 1 RU
// per item.
func TestRequestCharges(t *testing.T) {
	e := newEnv(t)
	indexed := e.container(t, "indexed", 400)
	none := "unindexed"
	if _, err := e.db.CreateContainer(context.Background(), azcosmos.ContainerProperties{
		ID:                     none,
		PartitionKeyDefinition: azcosmos.PartitionKeyDefinition{Paths: []string{"/pk"}, Version: 2},
		IndexingPolicy:         &azcosmos.IndexingPolicy{IndexingMode: azcosmos.IndexingModeNone, Automatic: false},
	}, nil); err != nil {
		t.Fatal(err)
	}
	unindexed, _ := e.db.NewContainer(none)
	ctx := context.Background()
	pk := azcosmos.NewPartitionKeyString("k")
	near := func(what string, got float32, want float64) {
		t.Helper()
		if math.Abs(float64(got)-want) > 0.15*want {
			t.Errorf("%s: charged %.2f RU, want about %.2f", what, got, want)
		}
	}

	oneKB := payload("a", "k", 1000)
	created, err := indexed.CreateItem(ctx, pk, oneKB, nil)
	if err != nil {
		t.Fatal(err)
	}
	near("1 KB insert", created.RequestCharge, 5.5)
	replaced, err := indexed.ReplaceItem(ctx, pk, "a", oneKB, nil)
	if err != nil {
		t.Fatal(err)
	}
	near("1 KB replace", replaced.RequestCharge, 11)
	read, err := indexed.ReadItem(ctx, pk, "a", nil)
	if err != nil {
		t.Fatal(err)
	}
	near("1 KB point read", read.RequestCharge, 1)
	big, err := indexed.CreateItem(ctx, pk, payload("b", "k", 10*1024), nil)
	if err != nil {
		t.Fatal(err)
	}
	near("10 KB insert", big.RequestCharge, 5.5*(1+9.0*9/99))
	plain, err := unindexed.CreateItem(ctx, pk, oneKB, nil)
	if err != nil {
		t.Fatal(err)
	}
	if plain.RequestCharge >= created.RequestCharge*0.7 {
		t.Errorf("an insert without indexing charged %.2f RU, want clearly less than the indexed %.2f", plain.RequestCharge, created.RequestCharge)
	}

	for i := 0; i < 200; i++ {
		upsert(t, indexed, "k", doc{"id": fmt.Sprintf("q%d", i), "pk": "k", "n": i})
	}
	charge := func(q string) float32 {
		pager := indexed.NewQueryItemsPager(q, pk, nil)
		page, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return page.RequestCharge
	}
	one := charge("SELECT * FROM c WHERE c.id = 'q1'")
	scan := charge("SELECT * FROM c WHERE c.n = 1")
	if scan <= one {
		t.Errorf("a filter examining every item charged %.2f RU, an id lookup %.2f: want the scan to cost more", scan, one)
	}

	small := e.container(t, "feed", 400)
	for i := 0; i < 20; i++ {
		upsert(t, small, "k", doc{"id": fmt.Sprintf("f%d", i), "pk": "k"})
	}
	ranges, err := small.ReadFeedRanges(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	feed, err := small.ReadChangeFeed(ctx, &azcosmos.ChangeFeedOptions{FeedRange: &ranges[0], MaxItemCount: 10})
	if err != nil {
		t.Fatal(err)
	}
	if feed.Count != 10 {
		t.Fatalf("change feed page: %d items, want 10", feed.Count)
	}
	near("change-feed page of 10 small items", feed.RequestCharge, 12)
}

// Autoscale throttles at its maximum and reports a current level between
// 10% and 100% of it.
func TestAutoscaleLevel(t *testing.T) {
	p := newPhysicsEnv(t)
	props := azcosmos.NewAutoscaleThroughputProperties(4000)
	if _, err := p.db.CreateContainer(context.Background(), azcosmos.ContainerProperties{
		ID: "auto", PartitionKeyDefinition: azcosmos.PartitionKeyDefinition{Paths: []string{"/pk"}, Version: 2},
	}, &azcosmos.CreateContainerOptions{ThroughputProperties: &props}); err != nil {
		t.Fatal(err)
	}
	c, _ := p.db.NewContainer("auto")
	m, _ := p.srv.ContainerMetrics(testDB, "auto")
	if !m.Autoscale || m.ThroughputRU != 4000 || m.CurrentRU != 400 {
		t.Fatalf("idle autoscale container: %+v, want max 4000 at 10%% (400)", m)
	}
	// 2,000 RU/s for two simulated seconds.
	p.load(t, c, 2000, 2*time.Second, 20, func(i int) string { return fmt.Sprintf("k%d", i) })
	m, _ = p.srv.ContainerMetrics(testDB, "auto")
	if m.CurrentRU < 1500 || m.CurrentRU > 2500 {
		t.Errorf("autoscale level under a 2,000 RU/s load: %.0f", m.CurrentRU)
	}
	if m.Throttled != 0 {
		t.Errorf("autoscale throttled %d requests under its maximum", m.Throttled)
	}
}

// A database's shared throughput is divided among its containers'
// partitions, and follows a throughput replace at once.
func TestSharedThroughput(t *testing.T) {
	p := newPhysicsEnv(t)
	ctx := context.Background()
	tp := azcosmos.NewManualThroughputProperties(1200)
	if _, err := p.client.CreateDatabase(ctx, azcosmos.DatabaseProperties{ID: "shared"}, &azcosmos.CreateDatabaseOptions{ThroughputProperties: &tp}); err != nil {
		t.Fatal(err)
	}
	db, _ := p.client.NewDatabase("shared")
	for _, id := range []string{"a", "b", "c"} {
		if _, err := db.CreateContainer(ctx, azcosmos.ContainerProperties{ID: id, PartitionKeyDefinition: azcosmos.PartitionKeyDefinition{Paths: []string{"/pk"}}}, nil); err != nil {
			t.Fatal(err)
		}
	}
	total := 0
	for _, id := range []string{"a", "b", "c"} {
		m, err := p.srv.ContainerMetrics("shared", id)
		if err != nil {
			t.Fatal(err)
		}
		total += m.ThroughputRU
		if m.ThroughputRU != 400 {
			t.Errorf("container %s: budget %d RU/s, want a third of 1200", id, m.ThroughputRU)
		}
	}
	if total != 1200 {
		t.Errorf("budgets sum to %d, want 1200", total)
	}
	if _, err := db.ReplaceThroughput(ctx, azcosmos.NewManualThroughputProperties(3000), nil); err != nil {
		t.Fatal(err)
	}
	m, _ := p.srv.ContainerMetrics("shared", "b")
	if m.ThroughputRU != 1000 {
		t.Errorf("after raising the database to 3000 RU/s, container b has %d, want 1000", m.ThroughputRU)
	}
}
