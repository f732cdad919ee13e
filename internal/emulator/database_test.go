package emulator_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/data/azcosmos"

	"github.com/rekey-dev/rekey/internal/emulator/emulatortest"
)

func TestDatabaseLifecycle(t *testing.T) {
	srv := emulatortest.Start(t)
	client := newClient(t, srv, nil)
	ctx := context.Background()

	created, err := client.CreateDatabase(ctx, azcosmos.DatabaseProperties{ID: "orders"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if created.RawResponse.StatusCode != http.StatusCreated {
		t.Errorf("create: status %d, want 201", created.RawResponse.StatusCode)
	}
	p := created.DatabaseProperties
	if p.ID != "orders" || p.ResourceID == "" || p.SelfLink != "dbs/"+p.ResourceID+"/" || p.ETag == nil || p.LastModified.IsZero() {
		t.Errorf("created properties %+v", p)
	}
	if created.RequestCharge <= 0 {
		t.Errorf("request charge %v, want > 0", created.RequestCharge)
	}

	_, err = client.CreateDatabase(ctx, azcosmos.DatabaseProperties{ID: "orders"}, nil)
	wantStatus(t, err, http.StatusConflict)

	db, _ := client.NewDatabase("orders")
	read, err := db.Read(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if read.DatabaseProperties.ResourceID != p.ResourceID || *read.DatabaseProperties.ETag != *p.ETag {
		t.Errorf("read %+v, want the created database %+v", read.DatabaseProperties, p)
	}

	if _, err := client.CreateDatabase(ctx, azcosmos.DatabaseProperties{ID: "other"}, nil); err != nil {
		t.Fatal(err)
	}
	var ids []string
	pager := client.NewQueryDatabasesPager("SELECT * FROM root r WHERE r.id = @id", &azcosmos.QueryDatabasesOptions{
		QueryParameters: []azcosmos.QueryParameter{{Name: "@id", Value: "orders"}},
	})
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range page.Databases {
			ids = append(ids, d.ID)
		}
	}
	if len(ids) != 1 || ids[0] != "orders" {
		t.Errorf("query by id: %v, want [orders]", ids)
	}

	del, err := db.Delete(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if del.RawResponse.StatusCode != http.StatusNoContent {
		t.Errorf("delete: status %d, want 204", del.RawResponse.StatusCode)
	}
	_, err = db.Read(ctx, nil)
	wantStatus(t, err, http.StatusNotFound)
	_, err = db.Delete(ctx, nil)
	wantStatus(t, err, http.StatusNotFound)
}

func TestDatabaseThroughput(t *testing.T) {
	srv := emulatortest.Start(t)
	client := newClient(t, srv, nil)
	ctx := context.Background()

	t.Run("none", func(t *testing.T) {
		if _, err := client.CreateDatabase(ctx, azcosmos.DatabaseProperties{ID: "plain"}, nil); err != nil {
			t.Fatal(err)
		}
		db, _ := client.NewDatabase("plain")
		_, err := db.ReadThroughput(ctx, nil)
		if err == nil {
			t.Fatal("ReadThroughput of a database without throughput succeeded")
		}
		if re := responseError(t, err); re.StatusCode != http.StatusNotFound {
			t.Errorf("status %d, want 404", re.StatusCode)
		}
	})

	t.Run("manual", func(t *testing.T) {
		tp := azcosmos.NewManualThroughputProperties(1000)
		if _, err := client.CreateDatabase(ctx, azcosmos.DatabaseProperties{ID: "shared"}, &azcosmos.CreateDatabaseOptions{ThroughputProperties: &tp}); err != nil {
			t.Fatal(err)
		}
		db, _ := client.NewDatabase("shared")
		wantManual(t, readDBThroughput(t, db), 1000)
		if _, err := db.ReplaceThroughput(ctx, azcosmos.NewManualThroughputProperties(1500), nil); err != nil {
			t.Fatal(err)
		}
		wantManual(t, readDBThroughput(t, db), 1500)

		// Below the minimum and not a multiple of 100: refused.
		for _, ru := range []int32{300, 1550} {
			_, err := db.ReplaceThroughput(ctx, azcosmos.NewManualThroughputProperties(ru), nil)
			wantStatus(t, err, http.StatusBadRequest)
		}

		// A container without its own throughput shares the database's:
		// it has none to read, and its partitions follow the database's RU/s.
		if _, err := db.CreateContainer(ctx, azcosmos.ContainerProperties{ID: "c", PartitionKeyDefinition: azcosmos.PartitionKeyDefinition{Paths: []string{"/pk"}}}, nil); err != nil {
			t.Fatal(err)
		}
		c, _ := db.NewContainer("c")
		_, err := c.ReadThroughput(ctx, nil)
		if re := responseError(t, err); re.StatusCode != http.StatusNotFound {
			t.Errorf("container ReadThroughput in a shared database: status %d, want 404", re.StatusCode)
		}
	})

	t.Run("autoscale", func(t *testing.T) {
		tp := azcosmos.NewAutoscaleThroughputProperties(4000)
		if _, err := client.CreateDatabase(ctx, azcosmos.DatabaseProperties{ID: "auto"}, &azcosmos.CreateDatabaseOptions{ThroughputProperties: &tp}); err != nil {
			t.Fatal(err)
		}
		db, _ := client.NewDatabase("auto")
		wantAutoscale(t, readDBThroughput(t, db), 4000)
		if _, err := db.ReplaceThroughput(ctx, azcosmos.NewAutoscaleThroughputProperties(6000), nil); err != nil {
			t.Fatal(err)
		}
		wantAutoscale(t, readDBThroughput(t, db), 6000)
	})

	t.Run("shared partitions", func(t *testing.T) {
		tp := azcosmos.NewManualThroughputProperties(12000)
		if _, err := client.CreateDatabase(ctx, azcosmos.DatabaseProperties{ID: "big"}, &azcosmos.CreateDatabaseOptions{ThroughputProperties: &tp}); err != nil {
			t.Fatal(err)
		}
		db, _ := client.NewDatabase("big")
		if _, err := db.CreateContainer(ctx, azcosmos.ContainerProperties{ID: "c", PartitionKeyDefinition: azcosmos.PartitionKeyDefinition{Paths: []string{"/pk"}}}, nil); err != nil {
			t.Fatal(err)
		}
		c, _ := db.NewContainer("c")
		if n := len(feedRanges(t, c)); n != 2 {
			t.Errorf("container in a 12,000 RU/s database: %d ranges, want 2", n)
		}
	})
}

func readDBThroughput(t *testing.T, db *azcosmos.DatabaseClient) azcosmos.ThroughputProperties {
	t.Helper()
	resp, err := db.ReadThroughput(context.Background(), nil)
	if err != nil {
		t.Fatalf("read throughput: %v", err)
	}
	return *resp.ThroughputProperties
}

func wantManual(t *testing.T, tp azcosmos.ThroughputProperties, want int32) {
	t.Helper()
	got, ok := tp.ManualThroughput()
	if !ok || got != want {
		t.Errorf("manual throughput %d (manual %v), want %d", got, ok, want)
	}
	if _, auto := tp.AutoscaleMaxThroughput(); auto {
		t.Error("manual offer reads as autoscale")
	}
}

func wantAutoscale(t *testing.T, tp azcosmos.ThroughputProperties, want int32) {
	t.Helper()
	got, ok := tp.AutoscaleMaxThroughput()
	if !ok || got != want {
		t.Errorf("autoscale max %d (autoscale %v), want %d", got, ok, want)
	}
}

// feedRanges returns the container's feed ranges (one per physical partition).
func feedRanges(t testing.TB, c *azcosmos.ContainerClient) []azcosmos.FeedRange {
	t.Helper()
	r, err := c.ReadFeedRanges(context.Background(), nil)
	if err != nil {
		t.Fatalf("read feed ranges: %v", err)
	}
	return r
}
