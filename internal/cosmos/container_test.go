package cosmos

import (
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/rekey-dev/rekey/migrate"
)

func TestDefinition(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		id   string
		def  migrate.Definition
		want migrate.Definition
	}{
		{"hash", migrate.Definition{Paths: []string{"/pk"}}, migrate.Definition{Paths: []string{"/pk"}, Kind: "Hash", Version: 2}},
		{"hashv1", migrate.Definition{Paths: []string{"/a/b"}, Version: 1}, migrate.Definition{Paths: []string{"/a/b"}, Kind: "Hash", Version: 1}},
		{"multi", migrate.Definition{Paths: []string{"/tenant", "/user", "/month"}}, migrate.Definition{Paths: []string{"/tenant", "/user", "/month"}, Kind: "MultiHash", Version: 2}},
	}
	for _, tt := range tests {
		if err := e.client.CreateContainer(tctx(t), testDB, tt.id, tt.def, 400, 0); err != nil {
			t.Fatalf("create %s: %v", tt.id, err)
		}
		got, err := e.client.Container(testDB, tt.id).Definition(tctx(t))
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Definition(%s) = %+v, %v; want %+v", tt.id, got, err, tt.want)
		}
	}
	if _, err := e.client.Container(testDB, "absent").Definition(tctx(t)); !errors.Is(err, migrate.ErrNotFound) {
		t.Errorf("Definition of a missing container = %v, want ErrNotFound", err)
	}
	if _, err := e.client.Container("", "x").Definition(tctx(t)); err == nil {
		t.Error("Definition of a container without a database name succeeded")
	}
}

func TestFeedRangesCoverTheKeySpaceInOrder(t *testing.T) {
	e := newEnv(t)
	c := e.container(t, "c", 24000) // four physical partitions
	got, err := c.FeedRanges(tctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 {
		t.Fatalf("%d ranges for 24,000 RU/s, want 4: %v", len(got), got)
	}
	if got[0].Min != "" || got[len(got)-1].Max != "FF" {
		t.Errorf("ranges %v do not span [\"\", \"FF\")", got)
	}
	for i := 1; i < len(got); i++ {
		if got[i].Min != got[i-1].Max {
			t.Errorf("range %d starts at %s, the previous ends at %s", i, got[i].Min, got[i-1].Max)
		}
	}
	if _, err := e.client.Container(testDB, "absent").FeedRanges(tctx(t)); !errors.Is(err, migrate.ErrNotFound) {
		t.Errorf("FeedRanges of a missing container = %v, want ErrNotFound", err)
	}
}

func TestItemCount(t *testing.T) {
	e := newEnv(t)
	c := e.container(t, "c", 400)
	n, err := c.ItemCount(tctx(t))
	if err != nil || n != 0 {
		t.Fatalf("ItemCount of an empty container = %d, %v", n, err)
	}
	for i := range 7 {
		mustCreate(t, c, key(fmt.Sprint(i%3)), itemBody(t, fmt.Sprint(i), fmt.Sprint(i%3), i))
	}
	if _, err := c.Delete(tctx(t), key("0"), "0", ""); err != nil {
		t.Fatal(err)
	}
	if n, err := c.ItemCount(tctx(t)); err != nil || n != 6 {
		t.Errorf("ItemCount = %d, %v; want 6", n, err)
	}
	if _, err := e.client.Container(testDB, "absent").ItemCount(tctx(t)); !errors.Is(err, migrate.ErrNotFound) {
		t.Errorf("ItemCount of a missing container = %v, want ErrNotFound", err)
	}
}

func TestUsageField(t *testing.T) {
	h := "documentSize=0;documentsSize=12;documentsCount=42;collectionSize=12;"
	if n, ok := usageField(h, "documentsCount"); !ok || n != 42 {
		t.Errorf("documentsCount = %d, %v", n, ok)
	}
	if _, ok := usageField(h, "missing"); ok {
		t.Error("found a missing field")
	}
	if _, ok := usageField("documentsCount=x;", "documentsCount"); ok {
		t.Error("parsed a non-number")
	}
}
