package emulator_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/data/azcosmos"

	"github.com/rekey-dev/rekey/internal/emulator"
)

func TestItemLifecycle(t *testing.T) {
	e := newEnv(t)
	c := e.container(t, "c", 0)
	ctx := context.Background()
	pk := azcosmos.NewPartitionKeyString("a")
	item := mustJSON(t, doc{"id": "1", "pk": "a", "n": 1})

	created, err := c.CreateItem(ctx, pk, item, nil)
	if err != nil {
		t.Fatal(err)
	}
	if created.RawResponse.StatusCode != http.StatusCreated || created.ETag == "" || created.RequestCharge <= 0 {
		t.Errorf("create: status %d etag %q charge %v", created.RawResponse.StatusCode, created.ETag, created.RequestCharge)
	}
	_, err = c.CreateItem(ctx, pk, item, nil)
	wantStatus(t, err, http.StatusConflict)

	read, err := c.ReadItem(ctx, pk, "1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if read.RawResponse.StatusCode != http.StatusOK || read.ETag != created.ETag {
		t.Errorf("read: status %d etag %q, want 200 and the create's %q", read.RawResponse.StatusCode, read.ETag, created.ETag)
	}
	got := decodeDoc(t, read.Value)
	if got["n"] != 1.0 || got["_etag"] != string(created.ETag) {
		t.Errorf("read %v", got)
	}
	_, err = c.ReadItem(ctx, pk, "2", nil)
	wantStatus(t, err, http.StatusNotFound)
	_, err = c.ReadItem(ctx, azcosmos.NewPartitionKeyString("b"), "1", nil)
	wantStatus(t, err, http.StatusNotFound)

	// Replace with If-Match: the current ETag wins, a stale one gets 412.
	v2 := mustJSON(t, doc{"id": "1", "pk": "a", "n": 2})
	replaced, err := c.ReplaceItem(ctx, pk, "1", v2, &azcosmos.ItemOptions{IfMatchEtag: &created.ETag})
	if err != nil {
		t.Fatal(err)
	}
	if replaced.RawResponse.StatusCode != http.StatusOK || replaced.ETag == created.ETag {
		t.Errorf("replace: status %d etag %q", replaced.RawResponse.StatusCode, replaced.ETag)
	}
	_, err = c.ReplaceItem(ctx, pk, "1", v2, &azcosmos.ItemOptions{IfMatchEtag: &created.ETag})
	wantStatus(t, err, http.StatusPreconditionFailed)
	_, err = c.ReplaceItem(ctx, pk, "missing", mustJSON(t, doc{"id": "missing", "pk": "a"}), nil)
	wantStatus(t, err, http.StatusNotFound)

	// Upsert: 201 when new, 200 when it replaces.
	u := mustJSON(t, doc{"id": "u", "pk": "a"})
	if r, err := c.UpsertItem(ctx, pk, u, nil); err != nil || r.RawResponse.StatusCode != http.StatusCreated {
		t.Errorf("first upsert: %v %v", statusOf(r.Response), err)
	}
	if r, err := c.UpsertItem(ctx, pk, u, nil); err != nil || r.RawResponse.StatusCode != http.StatusOK {
		t.Errorf("second upsert: %v %v", statusOf(r.Response), err)
	}
	stale := azcore.ETag(`"00000000-0000-0000-0000-000000000000"`)
	_, err = c.UpsertItem(ctx, pk, u, &azcosmos.ItemOptions{IfMatchEtag: &stale})
	wantStatus(t, err, http.StatusPreconditionFailed)

	// Delete: 204, then 404; a stale If-Match is refused.
	_, err = c.DeleteItem(ctx, pk, "1", &azcosmos.ItemOptions{IfMatchEtag: &created.ETag})
	wantStatus(t, err, http.StatusPreconditionFailed)
	del, err := c.DeleteItem(ctx, pk, "1", nil)
	if err != nil || del.RawResponse.StatusCode != http.StatusNoContent {
		t.Fatalf("delete: %v %v", statusOf(del.Response), err)
	}
	_, err = c.DeleteItem(ctx, pk, "1", nil)
	wantStatus(t, err, http.StatusNotFound)
	_, err = c.ReadItem(ctx, pk, "1", nil)
	wantStatus(t, err, http.StatusNotFound)
}

func statusOf(r azcosmos.Response) int {
	if r.RawResponse == nil {
		return 0
	}
	return r.RawResponse.StatusCode
}

func TestItemSystemProperties(t *testing.T) {
	e := newEnv(t)
	c := e.container(t, "c", 0)
	ctx := context.Background()
	cp, err := c.Read(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	before := time.Now().Unix()
	resp, err := c.CreateItem(ctx, azcosmos.NewPartitionKeyString("a"), mustJSON(t, doc{
		"id": "1", "pk": "a", "_custom": "kept", "_rid": "spoofed", "_ts": 1, "_etag": "spoofed",
	}), &azcosmos.ItemOptions{EnableContentResponseOnWrite: true})
	if err != nil {
		t.Fatal(err)
	}
	got := decodeDoc(t, resp.Value)
	rid, _ := got["_rid"].(string)
	if rid == "" || rid == "spoofed" {
		t.Errorf("_rid %q", rid)
	}
	if want := cp.ContainerProperties.SelfLink + "docs/" + rid + "/"; got["_self"] != want {
		t.Errorf("_self %q, want %q", got["_self"], want)
	}
	if got["_etag"] != string(resp.ETag) {
		t.Errorf("_etag %q, want the response ETag %q", got["_etag"], resp.ETag)
	}
	if got["_attachments"] != "attachments/" {
		t.Errorf("_attachments %v", got["_attachments"])
	}
	ts, ok := got["_ts"].(float64)
	if !ok || int64(ts) < before-1 || int64(ts) > time.Now().Unix()+1 {
		t.Errorf("_ts %v, want the write time in seconds (%d)", got["_ts"], before)
	}
	if got["_custom"] != "kept" {
		t.Errorf("user field _custom: %v", got["_custom"])
	}
	if _, ok := got["_lsn"]; ok {
		t.Error("_lsn appears on a point read; only the change feed carries it")
	}
}

func TestItemSameIDInTwoPartitions(t *testing.T) {
	e := newEnv(t)
	c := e.container(t, "c", 0)
	ctx := context.Background()
	upsert(t, c, "a", doc{"id": "same", "pk": "a", "v": "A"})
	upsert(t, c, "b", doc{"id": "same", "pk": "b", "v": "B"})
	for pk, want := range map[string]string{"a": "A", "b": "B"} {
		r, err := c.ReadItem(ctx, azcosmos.NewPartitionKeyString(pk), "same", nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := decodeDoc(t, r.Value)["v"]; got != want {
			t.Errorf("pk %s: v %v, want %s", pk, got, want)
		}
	}
	if _, err := c.DeleteItem(ctx, azcosmos.NewPartitionKeyString("a"), "same", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ReadItem(ctx, azcosmos.NewPartitionKeyString("b"), "same", nil); err != nil {
		t.Errorf("deleting (a, same) removed (b, same): %v", err)
	}
	n := queryAll(t, c, "SELECT * FROM c WHERE c.id = 'same'", azcosmos.NewPartitionKey(), nil)
	if len(n) != 1 {
		t.Errorf("%d items with id same, want 1", len(n))
	}
}

func TestItemPartitionKeyMismatch(t *testing.T) {
	e := newEnv(t)
	c := e.container(t, "c", 0)
	ctx := context.Background()
	body := mustJSON(t, doc{"id": "1", "pk": "body"})
	header := azcosmos.NewPartitionKeyString("header")
	upsert(t, c, "header", doc{"id": "1", "pk": "header"})
	for name, call := range map[string]func() error{
		"create":  func() error { _, err := c.CreateItem(ctx, header, body, nil); return err },
		"upsert":  func() error { _, err := c.UpsertItem(ctx, header, body, nil); return err },
		"replace": func() error { _, err := c.ReplaceItem(ctx, header, "1", body, nil); return err },
		"missing field": func() error {
			_, err := c.CreateItem(ctx, header, mustJSON(t, doc{"id": "2"}), nil)
			return err
		},
		"type differs": func() error {
			_, err := c.CreateItem(ctx, azcosmos.NewPartitionKeyString("5"), mustJSON(t, doc{"id": "3", "pk": 5}), nil)
			return err
		},
	} {
		t.Run(name, func(t *testing.T) {
			err := call()
			wantStatus(t, err, http.StatusBadRequest)
			if sub := responseError(t, err).RawResponse.Header.Get("x-ms-substatus"); sub != "1001" {
				t.Errorf("x-ms-substatus %q, want 1001", sub)
			}
		})
	}
}

func TestItemPartitionKeyTypes(t *testing.T) {
	e := newEnv(t)
	c := e.container(t, "c", 0)
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		value any
		pk    azcosmos.PartitionKey
	}{
		{"string", "5", azcosmos.NewPartitionKeyString("5")},
		{"integer", 5, azcosmos.NewPartitionKeyNumber(5)},
		{"fraction", 2.5, azcosmos.NewPartitionKeyNumber(2.5)},
		{"negative", -7, azcosmos.NewPartitionKeyNumber(-7)},
		{"true", true, azcosmos.NewPartitionKeyBool(true)},
		{"false", false, azcosmos.NewPartitionKeyBool(false)},
		{"null", nil, azcosmos.NullPartitionKey},
		{"empty string", "", azcosmos.NewPartitionKeyString("")},
		{"unicode", "ключ 鱀", azcosmos.NewPartitionKeyString("ключ 鱀")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The same id under every key: each key is its own logical partition.
			if _, err := c.CreateItem(ctx, tc.pk, mustJSON(t, doc{"id": "x", "pk": tc.value, "case": tc.name}), nil); err != nil {
				t.Fatalf("create: %v", err)
			}
			r, err := c.ReadItem(ctx, tc.pk, "x", nil)
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			if got := decodeDoc(t, r.Value)["case"]; got != tc.name {
				t.Errorf("read the item of case %v", got)
			}
			if _, err := c.PatchItem(ctx, tc.pk, "x", patchSet("/seen", true), nil); err != nil {
				t.Errorf("patch: %v", err)
			}
		})
	}
	items := queryAll(t, c, "SELECT * FROM c WHERE c.id = 'x'", azcosmos.NewPartitionKey(), nil)
	if len(items) != 9 {
		t.Errorf("%d items with id x, want 9 (one per key)", len(items))
	}
}

func patchSet(path string, v any) azcosmos.PatchOperations {
	var p azcosmos.PatchOperations
	p.AppendSet(path, v)
	return p
}

func TestItemHierarchicalKeys(t *testing.T) {
	e := newEnv(t)
	c := e.container(t, "c", 0, "/tenant", "/user")
	ctx := context.Background()
	keys := []struct{ tenant, user string }{{"t1", "u1"}, {"t1", "u2"}, {"t2", "u1"}}
	for _, k := range keys {
		pk := azcosmos.NewPartitionKeyString(k.tenant).AppendString(k.user)
		if _, err := c.CreateItem(ctx, pk, mustJSON(t, doc{"id": "same", "tenant": k.tenant, "user": k.user}), nil); err != nil {
			t.Fatalf("create %v: %v", k, err)
		}
	}
	for _, k := range keys {
		r, err := c.ReadItem(ctx, azcosmos.NewPartitionKeyString(k.tenant).AppendString(k.user), "same", nil)
		if err != nil {
			t.Fatalf("read %v: %v", k, err)
		}
		if d := decodeDoc(t, r.Value); d["tenant"] != k.tenant || d["user"] != k.user {
			t.Errorf("read %v got %v", k, d)
		}
	}
	_, err := c.ReadItem(ctx, azcosmos.NewPartitionKeyString("t2").AppendString("u2"), "same", nil)
	wantStatus(t, err, http.StatusNotFound)

	// Only part of the key: not enough for a point operation.
	_, err = c.ReadItem(ctx, azcosmos.NewPartitionKeyString("t1"), "same", nil)
	wantStatus(t, err, http.StatusBadRequest)

	// Body and header disagree on the second level.
	_, err = c.CreateItem(ctx, azcosmos.NewPartitionKeyString("t1").AppendString("u9"), mustJSON(t, doc{"id": "m", "tenant": "t1", "user": "u1"}), nil)
	wantStatus(t, err, http.StatusBadRequest)

	// A prefix of the key scopes a query to that tenant's partitions.
	items := queryAll(t, c, "SELECT * FROM c", azcosmos.NewPartitionKeyString("t1"), nil)
	if len(items) != 2 {
		t.Errorf("prefix query t1: %d items, want 2", len(items))
	}
	for _, b := range items {
		if decodeDoc(t, b)["tenant"] != "t1" {
			t.Errorf("prefix query t1 returned %s", b)
		}
	}
}

func TestItemSizeLimit(t *testing.T) {
	e := newEnv(t)
	c := e.container(t, "c", 0)
	ctx := context.Background()
	pk := azcosmos.NewPartitionKeyString("a")
	big := mustJSON(t, doc{"id": "big", "pk": "a", "pad": strings.Repeat("x", 2*1024*1024)})
	_, err := c.CreateItem(ctx, pk, big, nil)
	wantStatus(t, err, http.StatusRequestEntityTooLarge)
	_, err = c.UpsertItem(ctx, pk, big, nil)
	wantStatus(t, err, http.StatusRequestEntityTooLarge)

	fits := mustJSON(t, doc{"id": "fits", "pk": "a", "pad": strings.Repeat("x", 2*1024*1024-1024)})
	if _, err := c.CreateItem(ctx, pk, fits, nil); err != nil {
		t.Fatalf("an item just under 2 MB: %v", err)
	}
	// Growing it past the limit in place is refused too.
	_, err = c.PatchItem(ctx, pk, "fits", patchSet("/more", strings.Repeat("y", 4096)), nil)
	wantStatus(t, err, http.StatusRequestEntityTooLarge)
}

// The routing gateway decodes the request path in ways that make some ids
// unaddressable (they are created from the body, then a read's signature no
// longer matches): the same cases the SDK's emulator suite checks
// (TestItemIdEncodingRoutingGW). The compute gateway serves them all; see
// TestGatewayIdDecoding.
func TestItemIDEncoding(t *testing.T) {
	e := newEnv(t, func(o *emulator.ServerOptions) { o.Gateway = emulator.RoutingGateway })
	c := e.container(t, "c", 0)
	ctx := context.Background()
	for _, tc := range []struct {
		id   string
		want int // status of read, replace and delete after a 201 create
	}{
		{"Plain", http.StatusOK},
		{"With spaces", http.StatusOK},
		{" LeadingSpace", http.StatusOK},
		{"TrailingSpace ", http.StatusUnauthorized},
		{"Special,=.:~+-@()^${}[]!_Chars", http.StatusOK},
		{"Question?Mark", http.StatusOK},
		{"Forward/Slash", http.StatusUnauthorized},
		{`Back\Slash`, http.StatusUnauthorized},
		{"Pound#Sign", http.StatusUnauthorized},
		{"Percent%20Encoded", http.StatusUnauthorized},
		{"Tab\tChar", http.StatusBadRequest},
		{"Line\nFeed", http.StatusBadRequest},
		{"Unicode鱀", http.StatusOK},
	} {
		t.Run(tc.id, func(t *testing.T) {
			pk := azcosmos.NewPartitionKeyString(tc.id)
			body := mustJSON(t, doc{"id": tc.id, "pk": tc.id})
			if r, err := c.CreateItem(ctx, pk, body, nil); err != nil || r.RawResponse.StatusCode != http.StatusCreated {
				t.Fatalf("create: %v", err)
			}
			_, rerr := c.ReadItem(ctx, pk, tc.id, nil)
			_, perr := c.ReplaceItem(ctx, pk, tc.id, body, nil)
			_, derr := c.DeleteItem(ctx, pk, tc.id, nil)
			for op, err := range map[string]error{"read": rerr, "replace": perr, "delete": derr} {
				if tc.want == http.StatusOK {
					if err != nil {
						t.Errorf("%s: %v", op, err)
					}
					continue
				}
				if err == nil {
					t.Errorf("%s succeeded, want %d", op, tc.want)
					continue
				}
				if got := responseError(t, err).StatusCode; got != tc.want {
					t.Errorf("%s: status %d, want %d", op, got, tc.want)
				}
			}
		})
	}
}

func TestItemContentResponseOnWrite(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.container(t, "c", 0)
	pk := azcosmos.NewPartitionKeyString("a")

	minimal, _ := e.db.NewContainer("c")
	r, err := minimal.CreateItem(ctx, pk, mustJSON(t, doc{"id": "1", "pk": "a"}), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Value) != 0 {
		t.Errorf("default client: create returned a body %s", r.Value)
	}
	if r.ETag == "" {
		t.Error("minimal response lacks the ETag")
	}
	r, err = minimal.UpsertItem(ctx, pk, mustJSON(t, doc{"id": "1", "pk": "a"}), &azcosmos.ItemOptions{EnableContentResponseOnWrite: true})
	if err != nil || decodeDoc(t, r.Value)["id"] != "1" {
		t.Errorf("per-request content response: %s %v", r.Value, err)
	}

	full := newClient(t, e.srv, func(o *azcosmos.ClientOptions) { o.EnableContentResponseOnWrite = true })
	fc, _ := full.NewContainer(testDB, "c")
	for name, call := range map[string]func() (azcosmos.ItemResponse, error){
		"create": func() (azcosmos.ItemResponse, error) {
			return fc.CreateItem(ctx, pk, mustJSON(t, doc{"id": "2", "pk": "a"}), nil)
		},
		"upsert": func() (azcosmos.ItemResponse, error) {
			return fc.UpsertItem(ctx, pk, mustJSON(t, doc{"id": "3", "pk": "a"}), nil)
		},
		"replace": func() (azcosmos.ItemResponse, error) {
			return fc.ReplaceItem(ctx, pk, "1", mustJSON(t, doc{"id": "1", "pk": "a"}), nil)
		},
		"patch": func() (azcosmos.ItemResponse, error) { return fc.PatchItem(ctx, pk, "1", patchSet("/x", 1), nil) },
	} {
		r, err := call()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(r.Value) == 0 || decodeDoc(t, r.Value)["_etag"] != string(r.ETag) {
			t.Errorf("%s with content response: body %q", name, r.Value)
		}
	}
}
