package cosmos

import (
	"errors"
	"testing"

	"github.com/rekey-dev/rekey/migrate"
	"github.com/rekey-dev/rekey/transform"
)

func TestItemLifecycle(t *testing.T) {
	e := newEnv(t)
	c := e.container(t, "c", 400)
	ctx := tctx(t)

	created := mustCreate(t, c, key("p"), itemBody(t, "1", "p", 1))
	if created.ETag == "" || created.RU <= 0 {
		t.Fatalf("create: %+v, want an ETag and a charge", created)
	}
	if _, err := c.Create(ctx, key("p"), itemBody(t, "1", "p", 1)); !errors.Is(err, migrate.ErrConflict) {
		t.Fatalf("second create = %v, want ErrConflict", err)
	}

	it, err := c.ReadItem(ctx, key("p"), "1")
	if err != nil {
		t.Fatal(err)
	}
	if it.ID != "1" || it.ETag != created.ETag || fields(t, it.Body)["v"] != float64(1) || fields(t, it.Body)["_rid"] == nil {
		t.Fatalf("read %+v, want id 1, ETag %s, v 1 and system properties", it, created.ETag)
	}

	replaced, err := c.Replace(ctx, key("p"), "1", itemBody(t, "1", "p", 2), created.ETag)
	if err != nil || replaced.ETag == "" || replaced.ETag == created.ETag {
		t.Fatalf("replace = %+v, %v; want a new ETag", replaced, err)
	}
	if _, err := c.Replace(ctx, key("p"), "1", itemBody(t, "1", "p", 3), created.ETag); !errors.Is(err, migrate.ErrPreconditionFailed) {
		t.Fatalf("replace with a stale ETag = %v, want ErrPreconditionFailed", err)
	}
	if _, err := c.Replace(ctx, key("p"), "1", itemBody(t, "1", "p", 4), ""); err != nil {
		t.Fatalf("unconditional replace: %v", err)
	}
	if _, err := c.Replace(ctx, key("p"), "absent", itemBody(t, "absent", "p", 1), ""); !errors.Is(err, migrate.ErrNotFound) {
		t.Fatalf("replace of a missing item = %v, want ErrNotFound", err)
	}

	if _, err := c.Delete(ctx, key("p"), "1", replaced.ETag); !errors.Is(err, migrate.ErrPreconditionFailed) {
		t.Fatalf("delete with a stale ETag = %v, want ErrPreconditionFailed", err)
	}
	cur, err := c.Read(ctx, key("p"), "1")
	if err != nil {
		t.Fatal(err)
	}
	if res, err := c.Delete(ctx, key("p"), "1", cur.ETag); err != nil || res.RU <= 0 {
		t.Fatalf("delete = %+v, %v", res, err)
	}
	if _, err := c.Read(ctx, key("p"), "1"); !errors.Is(err, migrate.ErrNotFound) {
		t.Fatalf("read after delete = %v, want ErrNotFound", err)
	}
	if _, err := c.Delete(ctx, key("p"), "1", ""); !errors.Is(err, migrate.ErrNotFound) {
		t.Fatalf("second delete = %v, want ErrNotFound", err)
	}
}

func TestKeysOfEveryType(t *testing.T) {
	e := newEnv(t)
	c := e.container(t, "h", 400, "/a", "/b", "/c")
	ctx := tctx(t)
	keys := []struct {
		k    migrate.Key
		body map[string]any
	}{
		{migrate.Key{transform.StringValue("s"), {Type: transform.TypeNumber, Num: 12.5}, {Type: transform.TypeBool, Bool: true}},
			map[string]any{"a": "s", "b": 12.5, "c": true}},
		{migrate.Key{{Type: transform.TypeNull}, {Type: transform.TypeNumber, Num: -3}, {Type: transform.TypeBool}},
			map[string]any{"a": nil, "b": -3, "c": false}},
	}
	for _, kk := range keys {
		kk.body["id"] = "same"
		mustCreate(t, c, kk.k, doc(t, kk.body))
		it, err := c.Read(ctx, kk.k, "same")
		if err != nil {
			t.Fatalf("read with key %s: %v", kk.k.String(), err)
		}
		got, want := fields(t, it.Body), fields(t, doc(t, kk.body))
		for _, f := range []string{"a", "b", "c"} {
			if got[f] != want[f] {
				t.Errorf("key %s read %s=%v, want %v", kk.k.String(), f, got[f], want[f])
			}
		}
	}
	if _, err := c.Read(ctx, migrate.Key{transform.StringValue("s")}, "same"); err == nil {
		t.Error("a partial key read an item")
	}
	if _, err := c.Create(ctx, nil, doc(t, map[string]any{"id": "x"})); err == nil {
		t.Error("created an item without a key")
	}
}

// Ids the gateway cannot address in a URL are read with a query and
// replaced or deleted with a one-operation batch.
func TestUnaddressableIDs(t *testing.T) {
	e := newEnv(t)
	c := e.container(t, "c", 400)
	ctx := tctx(t)
	for _, id := range []string{"a/b", `a\b`, "a#b", "trailing ", "tab\tin", "line\nfeed", "pct%20", "pct%E9%B1%80", `q/"uote\"d`, "<html>/&"} {
		t.Run(id, func(t *testing.T) {
			created := mustCreate(t, c, key("p"), itemBody(t, id, "p", 1))
			it, err := c.Read(ctx, key("p"), id)
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			if it.ID != id || it.ETag != created.ETag || fields(t, it.Body)["id"] != id {
				t.Fatalf("read %+v, want id %q with ETag %s", it, id, created.ETag)
			}
			if _, err := c.Read(ctx, key("other"), id); !errors.Is(err, migrate.ErrNotFound) {
				t.Fatalf("read under another key = %v, want ErrNotFound", err)
			}

			replaced, err := c.Replace(ctx, key("p"), id, itemBody(t, id, "p", 2), it.ETag)
			if err != nil || replaced.ETag == "" || replaced.ETag == it.ETag {
				t.Fatalf("replace = %+v, %v; want a new ETag", replaced, err)
			}
			if got, _ := c.Read(ctx, key("p"), id); fields(t, got.Body)["v"] != float64(2) || got.ETag != replaced.ETag {
				t.Fatalf("after replace: %s (ETag %s), want v 2 and ETag %s", got.Body, got.ETag, replaced.ETag)
			}
			_, err = c.Replace(ctx, key("p"), id, itemBody(t, id, "p", 3), it.ETag)
			var re *migrate.RequestError
			if !errors.Is(err, migrate.ErrPreconditionFailed) || !errors.As(err, &re) || re.ActivityID == "" {
				t.Fatalf("replace with a stale ETag = %v, want ErrPreconditionFailed with an activity id", err)
			}
			if _, err := c.Delete(ctx, key("p"), id, it.ETag); !errors.Is(err, migrate.ErrPreconditionFailed) {
				t.Fatalf("delete with a stale ETag = %v, want ErrPreconditionFailed", err)
			}
			if _, err := c.Delete(ctx, key("p"), id, replaced.ETag); err != nil {
				t.Fatalf("delete: %v", err)
			}
			if _, err := c.Read(ctx, key("p"), id); !errors.Is(err, migrate.ErrNotFound) {
				t.Fatalf("read after delete = %v, want ErrNotFound", err)
			}
			if _, err := c.Delete(ctx, key("p"), id, ""); !errors.Is(err, migrate.ErrNotFound) {
				t.Fatalf("delete of a deleted item = %v, want ErrNotFound", err)
			}
			if _, err := c.Replace(ctx, key("p"), id, itemBody(t, id, "p", 4), ""); !errors.Is(err, migrate.ErrNotFound) {
				t.Fatalf("replace of a deleted item = %v, want ErrNotFound", err)
			}
		})
	}
}

// Items stored without their key field live under the undefined key:
// ReadItem finds them with a cross-partition query; writes refuse the key.
func TestUndefinedKeyComponents(t *testing.T) {
	e := newEnv(t)
	c := e.container(t, "c", 12000, "/tenant", "/user")
	ctx := tctx(t)
	writer := undefinedKeyClient(t, e.srv).Container(testDB, "c")
	undef := transform.Value{Type: transform.TypeUndefined}

	// Same id under three keys: (t1, undefined), (t1, u1), (undefined, undefined).
	mustCreate(t, writer, key("t1", undefinedSentinel), doc(t, map[string]any{"id": "x", "tenant": "t1", "v": "half"}))
	mustCreate(t, c, key("t1", "u1"), doc(t, map[string]any{"id": "x", "tenant": "t1", "user": "u1", "v": "full"}))
	mustCreate(t, writer, key(undefinedSentinel, undefinedSentinel), doc(t, map[string]any{"id": "x", "v": "none"}))

	for _, tt := range []struct {
		k    migrate.Key
		want string
	}{
		{migrate.Key{transform.StringValue("t1"), undef}, "half"},
		{migrate.Key{undef, undef}, "none"},
		{key("t1", "u1"), "full"},
	} {
		it, err := c.ReadItem(ctx, tt.k, "x")
		if err != nil {
			t.Fatalf("read with key %s: %v", tt.k.String(), err)
		}
		if got := fields(t, it.Body)["v"]; got != tt.want || it.ETag == "" {
			t.Errorf("key %s read v=%v (ETag %q), want %s", tt.k.String(), got, it.ETag, tt.want)
		}
	}
	if _, err := c.ReadItem(ctx, migrate.Key{transform.StringValue("t2"), undef}, "x"); !errors.Is(err, migrate.ErrNotFound) {
		t.Errorf("read of an absent undefined-key item = %v, want ErrNotFound", err)
	}

	for name, err := range map[string]error{
		"create": func() error {
			_, err := c.Create(ctx, migrate.Key{undef, undef}, doc(t, map[string]any{"id": "y"}))
			return err
		}(),
		"delete": func() error { _, err := c.Delete(ctx, migrate.Key{undef, undef}, "x", ""); return err }(),
		"batch": func() error {
			_, err := c.CreateBatch(ctx, migrate.Key{undef, undef}, [][]byte{doc(t, map[string]any{"id": "y"})})
			return err
		}(),
		"query": c.Query(ctx, "SELECT * FROM c", nil, &migrate.Key{undef, undef}, 0, func([][]byte, float64) error { return nil }),
	} {
		var re *migrate.RequestError
		if !errors.Is(err, ErrUndefinedKey) || errors.As(err, &re) {
			t.Errorf("%s with an undefined key = %v, want ErrUndefinedKey", name, err)
		}
	}
}
