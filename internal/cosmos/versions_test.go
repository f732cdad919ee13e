package cosmos

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/rekey-dev/rekey/migrate"
	"github.com/rekey-dev/rekey/transform"
)

// ReadVersions gives the pipeline each change with its operation, LSN,
// time and images, and a delete's id and source key from its metadata.
func TestReadVersionsAdapter(t *testing.T) {
	e := newEnv(t)
	c := e.allVersionsContainer(t, "c", 6000, 10, nil)
	var vs migrate.VersionSource = c
	bookmark, err := vs.VersionsBookmark(tctx(t), everythingRange)
	if err != nil {
		t.Fatal(err)
	}
	first := mustCreate(t, c, key("a"), itemBody(t, "1", "a", 1))
	if _, err := c.Replace(tctx(t), key("a"), "1", itemBody(t, "1", "a", 2), first.ETag); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Delete(tctx(t), key("a"), "1", ""); err != nil {
		t.Fatal(err)
	}
	page, err := vs.ReadVersions(tctx(t), migrate.VersionRequest{Range: everythingRange, Continuation: bookmark, PageSize: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Changes) != 3 || page.Continuation == "" || page.RU <= 0 {
		t.Fatalf("page %+v: want three changes", page)
	}
	ops := []string{migrate.OpCreate, migrate.OpReplace, migrate.OpDelete}
	for i, ch := range page.Changes {
		if ch.Op != ops[i] || ch.LSN == 0 || ch.TS == 0 || (i > 0 && ch.LSN <= page.Changes[i-1].LSN) {
			t.Errorf("change %d: %+v, want %s in LSN order", i, ch, ops[i])
		}
	}
	del := page.Changes[2]
	if del.Current != nil || del.ID != "1" || !del.SourceKey.Equal(key("a")) || del.TTLExpired {
		t.Errorf("delete: %+v, want id 1 and source key [\"a\"] from its metadata", del)
	}
	if del.Previous != nil && fields(t, del.Previous)["v"] != float64(2) {
		t.Errorf("delete: previous %s", del.Previous)
	}
	if fields(t, page.Changes[1].Current)["v"] != float64(2) {
		t.Errorf("replace: current %s", page.Changes[1].Current)
	}
}

// A delete's metadata partitionKey, as the service writes it (an object of
// each key path's last property name) or as an array, becomes the source
// key in the container's path order.
func TestMetadataKey(t *testing.T) {
	num := migrate.Key{transform.Value{Type: transform.TypeNumber, Num: 7, Raw: "7"}}
	tests := []struct {
		paths []string
		raw   string
		want  migrate.Key
		err   bool
	}{
		{[]string{"/pk"}, `{"pk":"a"}`, key("a"), false},
		{[]string{"/address/city"}, `{"city":"Oslo"}`, key("Oslo"), false},
		{[]string{"/tenant", "/user"}, `{"user":"u","tenant":"t"}`, key("t", "u"), false},
		{[]string{"/pk"}, `{"pk":7}`, num, false},
		{[]string{"/pk"}, `{"pk":{}}`, migrate.Key{{Type: transform.TypeUndefined}}, false},
		{[]string{"/pk"}, `{"pk":null}`, migrate.Key{{Type: transform.TypeNull}}, false},
		{[]string{"/tenant", "/user"}, `["t","u"]`, key("t", "u"), false},
		{[]string{"/pk"}, `{"other":"a"}`, nil, true},
		{[]string{"/pk"}, `["a","b"]`, nil, true},
		{[]string{"/pk"}, `null`, nil, true},
	}
	for _, tc := range tests {
		got, err := metadataKey(tc.paths, json.RawMessage(tc.raw))
		if (err != nil) != tc.err || (!tc.err && !got.Equal(tc.want)) {
			t.Errorf("metadataKey(%v, %s) = %v, %v; want %v (error %v)", tc.paths, tc.raw, got, err, tc.want, tc.err)
		}
	}
}

// FindCopies finds an item's copies under any key by id and source key
// fields, an absent source key field matching an undefined component, and
// leaves other source items' copies out.
func TestFindCopies(t *testing.T) {
	e := newEnv(t)
	c := e.container(t, "target", 12000, "/pk")
	for _, it := range []map[string]any{
		{"id": "x", "pk": "t1", "region": "eu", "v": 1},
		{"id": "x", "pk": "t2", "region": "eu", "v": 2}, // an orphaned copy of the same item
		{"id": "x", "pk": "t3", "region": "us", "v": 1}, // another source item
		{"id": "y", "pk": "t1", "region": "eu", "v": 1},
		{"id": "x", "pk": "t4", "v": 1}, // a source item without the key field
	} {
		mustCreate(t, c, key(it["pk"].(string)), doc(t, it))
	}
	var finder migrate.CopyFinder = c
	found, ru, err := finder.FindCopies(tctx(t), "x", []string{"/region"}, key("eu"))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, it := range found {
		if it.ID != "x" || it.ETag == "" {
			t.Errorf("copy %+v: want its id and ETag", it)
		}
		got[it.Key.String()] = true
	}
	if len(found) != 2 || !got[`["t1"]`] || !got[`["t2"]`] || ru <= 0 {
		t.Fatalf("copies of x in eu: %v (%.1f RU), want under t1 and t2", got, ru)
	}
	found, _, err = finder.FindCopies(tctx(t), "x", []string{"/region"}, migrate.Key{{Type: transform.TypeUndefined}})
	if err != nil || len(found) != 1 || !found[0].Key.Equal(key("t4")) {
		t.Fatalf("copies of x without a region: %+v %v", found, err)
	}
	found, _, err = finder.FindCopies(tctx(t), "z", []string{"/region"}, key("eu"))
	if err != nil || len(found) != 0 {
		t.Fatalf("copies of an item never copied: %+v %v", found, err)
	}
}

// DefaultTTL reads a container's defaultTtl: 0 when off.
func TestDefaultTTL(t *testing.T) {
	e := newEnv(t)
	plain := e.container(t, "plain", 400)
	withTTL := e.allVersionsContainer(t, "ttl", 400, 10, map[string]any{"defaultTtl": 3600})
	for _, tc := range []struct {
		c    *Container
		want int
	}{{plain, 0}, {withTTL, 3600}} {
		got, err := tc.c.DefaultTTL(tctx(t))
		if err != nil || got != tc.want {
			t.Errorf("%s: defaultTtl %d, %v; want %d", tc.c, got, err, tc.want)
		}
	}
	if _, err := e.client.Container(testDB, "absent").DefaultTTL(tctx(t)); !errors.Is(err, migrate.ErrNotFound) {
		t.Errorf("an absent container: %v, want ErrNotFound", err)
	}
}
