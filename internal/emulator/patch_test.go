package emulator_test

import (
	"context"
	"net/http"
	"reflect"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/data/azcosmos"
)

func TestPatchOperations(t *testing.T) {
	e := newEnv(t)
	c := e.container(t, "c", 0)
	ctx := context.Background()
	pk := azcosmos.NewPartitionKeyString("a")
	start := doc{"id": "1", "pk": "a", "name": "old", "count": 5, "arr": []any{1, 2}, "nested": doc{"keep": 1, "drop": 2}}

	for _, tc := range []struct {
		name  string
		ops   func(p *azcosmos.PatchOperations)
		check func(t *testing.T, d doc)
	}{
		{"add field", func(p *azcosmos.PatchOperations) { p.AppendAdd("/new", "v") },
			func(t *testing.T, d doc) { want(t, d["new"], "v") }},
		{"add array insert", func(p *azcosmos.PatchOperations) { p.AppendAdd("/arr/0", 0) },
			func(t *testing.T, d doc) { want(t, d["arr"], []any{0.0, 1.0, 2.0}) }},
		{"add array append", func(p *azcosmos.PatchOperations) { p.AppendAdd("/arr/-", 3) },
			func(t *testing.T, d doc) { want(t, d["arr"], []any{1.0, 2.0, 3.0}) }},
		{"set existing", func(p *azcosmos.PatchOperations) { p.AppendSet("/name", "new") },
			func(t *testing.T, d doc) { want(t, d["name"], "new") }},
		{"set nested new", func(p *azcosmos.PatchOperations) { p.AppendSet("/nested/added", true) },
			func(t *testing.T, d doc) {
				want(t, d["nested"], map[string]any{"keep": 1.0, "drop": 2.0, "added": true})
			}},
		{"replace", func(p *azcosmos.PatchOperations) { p.AppendReplace("/name", doc{"first": "x"}) },
			func(t *testing.T, d doc) { want(t, d["name"], map[string]any{"first": "x"}) }},
		{"remove nested", func(p *azcosmos.PatchOperations) { p.AppendRemove("/nested/drop") },
			func(t *testing.T, d doc) { want(t, d["nested"], map[string]any{"keep": 1.0}) }},
		{"increment", func(p *azcosmos.PatchOperations) { p.AppendIncrement("/count", 3) },
			func(t *testing.T, d doc) { want(t, d["count"], 8.0) }},
		{"increment absent", func(p *azcosmos.PatchOperations) { p.AppendIncrement("/fresh", -2) },
			func(t *testing.T, d doc) { want(t, d["fresh"], -2.0) }},
		{"several in order", func(p *azcosmos.PatchOperations) {
			p.AppendSet("/a", 1)
			p.AppendIncrement("/a", 1)
			p.AppendRemove("/name")
		}, func(t *testing.T, d doc) {
			want(t, d["a"], 2.0)
			if _, ok := d["name"]; ok {
				t.Error("name not removed")
			}
		}},
		{"true condition", func(p *azcosmos.PatchOperations) {
			p.SetCondition("from c where c.count = 5")
			p.AppendSet("/name", "cond")
		}, func(t *testing.T, d doc) { want(t, d["name"], "cond") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			upsert(t, c, "a", start)
			var p azcosmos.PatchOperations
			tc.ops(&p)
			r, err := c.PatchItem(ctx, pk, "1", p, &azcosmos.ItemOptions{EnableContentResponseOnWrite: true})
			if err != nil {
				t.Fatal(err)
			}
			if r.RawResponse.StatusCode != http.StatusOK {
				t.Errorf("status %d, want 200", r.RawResponse.StatusCode)
			}
			got := decodeDoc(t, r.Value)
			tc.check(t, got)
			read, err := c.ReadItem(ctx, pk, "1", nil)
			if err != nil {
				t.Fatal(err)
			}
			if stored := decodeDoc(t, read.Value); !reflect.DeepEqual(stored, got) {
				t.Errorf("stored %v, patch returned %v", stored, got)
			}
		})
	}
}

func want(t *testing.T, got, w any) {
	t.Helper()
	if !reflect.DeepEqual(got, w) {
		t.Errorf("got %#v, want %#v", got, w)
	}
}

func TestPatchFailures(t *testing.T) {
	e := newEnv(t)
	c := e.container(t, "c", 0)
	ctx := context.Background()
	pk := azcosmos.NewPartitionKeyString("a")
	first := upsert(t, c, "a", doc{"id": "1", "pk": "a", "count": 5, "s": "text"})
	upsert(t, c, "a", doc{"id": "1", "pk": "a", "count": 5, "s": "text"})

	for _, tc := range []struct {
		name   string
		id     string
		ops    func(p *azcosmos.PatchOperations)
		opts   *azcosmos.ItemOptions
		status int
	}{
		{"false condition", "1", func(p *azcosmos.PatchOperations) {
			p.SetCondition("from c where c.count > 100")
			p.AppendSet("/x", 1)
		}, nil, http.StatusPreconditionFailed},
		{"stale etag", "1", func(p *azcosmos.PatchOperations) { p.AppendSet("/x", 1) },
			&azcosmos.ItemOptions{IfMatchEtag: &first.ETag}, http.StatusPreconditionFailed},
		{"missing item", "nope", func(p *azcosmos.PatchOperations) { p.AppendSet("/x", 1) }, nil, http.StatusNotFound},
		{"replace absent", "1", func(p *azcosmos.PatchOperations) { p.AppendReplace("/absent", 1) }, nil, http.StatusBadRequest},
		{"remove absent", "1", func(p *azcosmos.PatchOperations) { p.AppendRemove("/absent") }, nil, http.StatusBadRequest},
		{"increment string", "1", func(p *azcosmos.PatchOperations) { p.AppendIncrement("/s", 1) }, nil, http.StatusBadRequest},
		{"change partition key", "1", func(p *azcosmos.PatchOperations) { p.AppendSet("/pk", "b") }, nil, http.StatusBadRequest},
		{"change id", "1", func(p *azcosmos.PatchOperations) { p.AppendSet("/id", "2") }, nil, http.StatusBadRequest},
		{"eleven operations", "1", func(p *azcosmos.PatchOperations) {
			for i := 0; i < 11; i++ {
				p.AppendSet("/x", i)
			}
		}, nil, http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var p azcosmos.PatchOperations
			tc.ops(&p)
			_, err := c.PatchItem(ctx, pk, tc.id, p, tc.opts)
			wantStatus(t, err, tc.status)
		})
	}
	// None of the failures changed the item.
	r, err := c.ReadItem(ctx, pk, "1", nil)
	if err != nil {
		t.Fatal(err)
	}
	d := decodeDoc(t, r.Value)
	if _, ok := d["x"]; ok || d["count"] != 5.0 || d["pk"] != "a" {
		t.Errorf("item after failed patches: %v", d)
	}
}

// The SDK has no helper for "move"; it is sent as the service takes it.
func TestPatchMove(t *testing.T) {
	e := newEnv(t)
	c := e.container(t, "c", 0)
	upsert(t, c, "a", doc{"id": "1", "pk": "a", "from": doc{"v": 42}, "other": 1})
	hdr := map[string]string{"x-ms-documentdb-partitionkey": `["a"]`, "Content-Type": "application/json"}
	resp := rawDo(t, e.srv, http.MethodPatch, "/dbs/db/colls/c/docs/1", hdr,
		[]byte(`{"operations":[{"op":"move","from":"/from/v","path":"/to"}]}`))
	if resp.status != http.StatusOK {
		t.Fatalf("move: %d %s", resp.status, resp.body)
	}
	got := decodeDoc(t, resp.body)
	want(t, got["to"], 42.0)
	want(t, got["from"], map[string]any{})

	resp = rawDo(t, e.srv, http.MethodPatch, "/dbs/db/colls/c/docs/1", hdr,
		[]byte(`{"operations":[{"op":"move","from":"/absent","path":"/x"}]}`))
	if resp.status != http.StatusBadRequest {
		t.Errorf("move from an absent path: %d, want 400", resp.status)
	}
	checkErrorBody(t, resp.status, resp.body)
}

// TestPatchBareArrayBody: the service takes a patch body that is a bare array
// of operations, as the JavaScript SDK sends Item.patch([...]).
func TestPatchBareArrayBody(t *testing.T) {
	e := newEnv(t)
	c := e.container(t, "c", 0)
	upsert(t, c, "a", doc{"id": "1", "pk": "a", "n": 1})
	res := rawDo(t, e.srv, http.MethodPatch, "/dbs/db/colls/c/docs/1",
		map[string]string{"x-ms-documentdb-partitionkey": `["a"]`},
		[]byte(`[{"op":"add","path":"/added","value":"v"},{"op":"incr","path":"/n","value":2}]`))
	if res.status != http.StatusOK {
		t.Fatalf("patch with an array body: status %d %s", res.status, res.body)
	}
	d := decodeDoc(t, res.body)
	want(t, d["added"], "v")
	want(t, d["n"], 3.0)
}
