package emulator_test

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/data/azcosmos"
)

func TestBatchSuccess(t *testing.T) {
	e := newEnv(t)
	c := e.container(t, "c", 0)
	ctx := context.Background()
	pk := azcosmos.NewPartitionKeyString("a")
	upsert(t, c, "a", doc{"id": "existing", "pk": "a", "v": 0})
	upsert(t, c, "a", doc{"id": "doomed", "pk": "a"})

	b := c.NewTransactionalBatch(pk)
	b.CreateItem(mustJSON(t, doc{"id": "new", "pk": "a"}), nil)
	b.UpsertItem(mustJSON(t, doc{"id": "up", "pk": "a"}), nil)
	b.ReplaceItem("existing", mustJSON(t, doc{"id": "existing", "pk": "a", "v": 1}), nil)
	b.PatchItem("existing", patchSet("/patched", true), nil)
	b.DeleteItem("doomed", nil)
	b.ReadItem("existing", nil)
	resp, err := c.ExecuteTransactionalBatch(ctx, b, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !resp.Success || resp.RawResponse.StatusCode != http.StatusOK {
		t.Fatalf("batch: success %v status %d", resp.Success, resp.RawResponse.StatusCode)
	}
	wantCodes := []int32{201, 201, 200, 200, 204, 200}
	if len(resp.OperationResults) != len(wantCodes) {
		t.Fatalf("%d results, want %d", len(resp.OperationResults), len(wantCodes))
	}
	for i, r := range resp.OperationResults {
		if r.StatusCode != wantCodes[i] {
			t.Errorf("operation %d: status %d, want %d", i, r.StatusCode, wantCodes[i])
		}
		if r.RequestCharge <= 0 {
			t.Errorf("operation %d: charge %v", i, r.RequestCharge)
		}
	}
	// The read sees the batch's own earlier writes.
	read := decodeDoc(t, resp.OperationResults[5].ResourceBody)
	if read["v"] != 1.0 || read["patched"] != true {
		t.Errorf("read inside the batch: %v", read)
	}
	for id, present := range map[string]bool{"new": true, "up": true, "existing": true, "doomed": false} {
		_, err := c.ReadItem(ctx, pk, id, nil)
		if present && err != nil {
			t.Errorf("%s after the batch: %v", id, err)
		}
		if !present {
			wantStatus(t, err, http.StatusNotFound)
		}
	}
}

func TestBatchRollsBackOnFailure(t *testing.T) {
	e := newEnv(t)
	c := e.container(t, "c", 0)
	ctx := context.Background()
	pk := azcosmos.NewPartitionKeyString("a")
	upsert(t, c, "a", doc{"id": "existing", "pk": "a", "v": 0})
	upsert(t, c, "a", doc{"id": "keep", "pk": "a"})

	for _, tc := range []struct {
		name    string
		failing func(b *azcosmos.TransactionalBatch)
		status  int32
	}{
		{"conflict", func(b *azcosmos.TransactionalBatch) {
			b.CreateItem(mustJSON(t, doc{"id": "existing", "pk": "a"}), nil)
		}, http.StatusConflict},
		{"missing", func(b *azcosmos.TransactionalBatch) {
			b.ReplaceItem("absent", mustJSON(t, doc{"id": "absent", "pk": "a"}), nil)
		}, http.StatusNotFound},
		{"other partition", func(b *azcosmos.TransactionalBatch) { b.UpsertItem(mustJSON(t, doc{"id": "x", "pk": "b"}), nil) }, http.StatusBadRequest},
		{"false patch condition", func(b *azcosmos.TransactionalBatch) {
			var p azcosmos.PatchOperations
			p.SetCondition("from c where c.v = 42")
			p.AppendSet("/v", 43)
			b.PatchItem("existing", p, nil)
		}, http.StatusPreconditionFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := c.NewTransactionalBatch(pk)
			b.CreateItem(mustJSON(t, doc{"id": "new", "pk": "a"}), nil)
			b.ReplaceItem("existing", mustJSON(t, doc{"id": "existing", "pk": "a", "v": 99}), nil)
			b.DeleteItem("keep", nil)
			tc.failing(&b)
			b.UpsertItem(mustJSON(t, doc{"id": "after", "pk": "a"}), nil)
			resp, err := c.ExecuteTransactionalBatch(ctx, b, nil)
			if err != nil {
				t.Fatal(err)
			}
			if resp.Success || resp.RawResponse.StatusCode != http.StatusMultiStatus {
				t.Fatalf("success %v status %d, want a 207 failure", resp.Success, resp.RawResponse.StatusCode)
			}
			for i, r := range resp.OperationResults {
				want := int32(http.StatusFailedDependency)
				if i == 3 {
					want = tc.status
				}
				if r.StatusCode != want {
					t.Errorf("operation %d: status %d, want %d", i, r.StatusCode, want)
				}
			}
			// Nothing of the batch was written.
			for _, id := range []string{"new", "after"} {
				_, err := c.ReadItem(ctx, pk, id, nil)
				wantStatus(t, err, http.StatusNotFound)
			}
			r, err := c.ReadItem(ctx, pk, "existing", nil)
			if err != nil || decodeDoc(t, r.Value)["v"] != 0.0 {
				t.Errorf("existing after the failed batch: %s %v", r.Value, err)
			}
			if _, err := c.ReadItem(ctx, pk, "keep", nil); err != nil {
				t.Errorf("keep was deleted by a failed batch: %v", err)
			}
		})
	}
}

func TestBatchLimits(t *testing.T) {
	e := newEnv(t)
	c := e.container(t, "c", 0)
	ctx := context.Background()
	pk := azcosmos.NewPartitionKeyString("a")
	batch := func(n, offset int) azcosmos.TransactionalBatch {
		b := c.NewTransactionalBatch(pk)
		for i := 0; i < n; i++ {
			b.UpsertItem(mustJSON(t, doc{"id": fmt.Sprint(offset + i), "pk": "a"}), nil)
		}
		return b
	}
	_, err := c.ExecuteTransactionalBatch(ctx, batch(101, 0), nil)
	wantStatus(t, err, http.StatusBadRequest)
	if n := len(queryAll(t, c, "SELECT * FROM c", pk, nil)); n != 0 {
		t.Errorf("a refused batch wrote %d items", n)
	}
	resp, err := c.ExecuteTransactionalBatch(ctx, batch(100, 1000), nil)
	if err != nil || !resp.Success {
		t.Fatalf("100 operations: %v", err)
	}
	if n := len(queryAll(t, c, "SELECT * FROM c", pk, nil)); n != 100 {
		t.Errorf("%d items after a 100-operation batch", n)
	}
}

func TestReadManyItems(t *testing.T) {
	e := newEnv(t)
	c := e.container(t, "c", 30000)
	if n := len(feedRanges(t, c)); n != 5 {
		t.Fatalf("%d ranges, want 5", n)
	}
	ctx := context.Background()
	var ids []azcosmos.ItemIdentity
	want := map[string]bool{}
	for i := 0; i < 60; i++ {
		pk := fmt.Sprintf("pk%d", i%20)
		id := fmt.Sprintf("item%d", i)
		upsert(t, c, pk, doc{"id": id, "pk": pk})
		if i%3 != 0 {
			ids = append(ids, azcosmos.ItemIdentity{ID: id, PartitionKey: azcosmos.NewPartitionKeyString(pk)})
			want[pk+"/"+id] = true
		}
	}
	// The same id under a second key, and identities that do not exist.
	upsert(t, c, "pk0", doc{"id": "item1", "pk": "pk0"})
	ids = append(ids,
		azcosmos.ItemIdentity{ID: "item1", PartitionKey: azcosmos.NewPartitionKeyString("pk0")},
		azcosmos.ItemIdentity{ID: "item2", PartitionKey: azcosmos.NewPartitionKeyString("pk0")},
		azcosmos.ItemIdentity{ID: "nope", PartitionKey: azcosmos.NewPartitionKeyString("pk3")},
	)
	want["pk0/item1"] = true

	resp, err := c.ReadManyItems(ctx, ids, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, b := range resp.Items {
		d := decodeDoc(t, b)
		got = append(got, fmt.Sprint(d["pk"], "/", d["id"]))
	}
	sort.Strings(got)
	var wantList []string
	for k := range want {
		wantList = append(wantList, k)
	}
	sort.Strings(wantList)
	if fmt.Sprint(got) != fmt.Sprint(wantList) {
		t.Errorf("ReadMany returned\n%v\nwant\n%v", got, wantList)
	}
	if resp.RequestCharge <= 0 {
		t.Errorf("charge %v", resp.RequestCharge)
	}
}
