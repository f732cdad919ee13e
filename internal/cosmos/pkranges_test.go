package cosmos

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/rekey-dev/rekey/internal/emulator/emulatortest"
	"github.com/rekey-dev/rekey/migrate"
	"github.com/rekey-dev/rekey/transform"
)

func TestPartitionKeyRangesCoverTheKeySpace(t *testing.T) {
	e := newEnv(t)
	for _, tt := range []struct {
		ru   int
		want int
	}{{400, 1}, {18000, 3}} {
		c := e.container(t, fmt.Sprintf("c%d", tt.ru), tt.ru)
		ranges, err := c.PartitionKeyRanges(tctx(t))
		if err != nil {
			t.Fatal(err)
		}
		if len(ranges) != tt.want || !covers(ranges) {
			t.Fatalf("%d RU/s: ranges %v, want %d covering the key space", tt.ru, ranges, tt.want)
		}
		// The same ranges the SDK lists as feed ranges.
		frs, err := c.FeedRanges(tctx(t))
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range ranges {
			if r.ID == "" || frs[i].Min != r.Min || frs[i].Max != r.Max {
				t.Errorf("range %d: %+v, SDK feed range %+v", i, r, frs[i])
			}
		}
	}
}

// TestPartitionKeyRangesFollowASplit: after a split, the next call reads
// only what changed (If-None-Match on the range feed) and lists the
// children instead of the parent; without a change the service answers
// 304 and the list stays.
func TestPartitionKeyRangesFollowASplit(t *testing.T) {
	srv := emulatortest.Start(t)
	client, rec := recordingClient(t, srv, nil, nil)
	if err := client.CreateContainer(tctx(t), testDB, "c", migrate.Definition{Paths: []string{"/pk"}}, 400, 0); err != nil {
		t.Fatal(err)
	}
	c := client.Container(testDB, "c")
	before, err := c.PartitionKeyRanges(tctx(t))
	if err != nil || len(before) != 1 {
		t.Fatalf("ranges %v, %v", before, err)
	}
	again, err := c.PartitionKeyRanges(tctx(t))
	if err != nil || len(again) != 1 || again[0] != before[0] {
		t.Fatalf("unchanged ranges read again: %v, %v", again, err)
	}
	if h, _ := rec.last("/pkranges"); h.Get("If-None-Match") == "" {
		t.Error("the second read was not conditional")
	}
	if err := srv.SplitRange(testDB, "c", before[0].ID); err != nil {
		t.Fatal(err)
	}
	after, err := c.PartitionKeyRanges(tctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != 2 || !covers(after) || after[0].ID == before[0].ID || after[1].ID == before[0].ID {
		t.Fatalf("after the split: %v, want two children of %v", after, before)
	}
}

// TestRangeOfKeyAgreesWithTheService writes items under many keys and
// checks that each item's key maps to the range whose change feed serves
// it.
func TestRangeOfKeyAgreesWithTheService(t *testing.T) {
	e := newEnv(t)
	for _, paths := range [][]string{{"/pk"}, {"/a", "/b"}} {
		name := fmt.Sprintf("c%d", len(paths))
		c := e.container(t, name, 24000, paths...)
		for i := range 60 {
			body := map[string]any{"id": fmt.Sprint(i), "pk": fmt.Sprintf("k%d", i), "a": fmt.Sprintf("t%d", i%7), "b": float64(i)}
			k := key(fmt.Sprintf("k%d", i))
			if len(paths) == 2 {
				k = migrate.Key{key(fmt.Sprintf("t%d", i%7))[0], numberValue(float64(i))}
			}
			mustCreate(t, c, k, doc(t, body))
		}
		ranges, err := c.PartitionKeyRanges(tctx(t))
		if err != nil || len(ranges) != 4 {
			t.Fatalf("%s: ranges %v, %v", name, ranges, err)
		}
		seen := 0
		for _, r := range ranges {
			page, err := c.ReadChanges(tctx(t), migrate.ChangeRequest{Range: migrate.FeedRange{Min: r.Min, Max: r.Max}, PageSize: 1000})
			if err != nil {
				t.Fatal(err)
			}
			for _, raw := range page.Items {
				var it struct {
					PK string  `json:"pk"`
					A  string  `json:"a"`
					B  float64 `json:"b"`
				}
				if err := json.Unmarshal(raw, &it); err != nil {
					t.Fatal(err)
				}
				k := key(it.PK)
				if len(paths) == 2 {
					k = migrate.Key{key(it.A)[0], numberValue(it.B)}
				}
				got, err := c.RangeOfKey(tctx(t), k)
				if err != nil || got != r {
					t.Errorf("%s: key %s is served by range %v, RangeOfKey says %v (%v)", name, k.String(), r, got, err)
				}
				seen++
			}
		}
		if seen != 60 {
			t.Errorf("%s: %d items seen across the ranges, want 60", name, seen)
		}
	}
}

// TestRangeOfKeyAfterASplit: the known ranges are used until a request
// meets the split (invalidateRanges), then re-read.
func TestRangeOfKeyAfterASplit(t *testing.T) {
	e := newEnv(t)
	c := e.container(t, "c", 400)
	k := key("p")
	parent, err := c.RangeOfKey(tctx(t), k)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.srv.SplitRange(testDB, "c", parent.ID); err != nil {
		t.Fatal(err)
	}
	if still, err := c.RangeOfKey(tctx(t), k); err != nil || still != parent {
		t.Fatalf("before the split is noticed: %v, %v; want the known parent %v", still, err, parent)
	}
	c.invalidateRanges()
	child, err := c.RangeOfKey(tctx(t), k)
	if err != nil || child.ID == parent.ID || child.Min == child.Max {
		t.Fatalf("after the split is noticed: %v, %v", child, err)
	}
}

func TestRangeOfKeyErrors(t *testing.T) {
	e := newEnv(t)
	c := e.container(t, "c", 400)
	if _, err := c.RangeOfKey(tctx(t), key("a", "b")); err == nil {
		t.Error("a two-component key on a one-path container was routed")
	}
	if _, err := e.client.Container(testDB, "absent").RangeOfKey(tctx(t), key("a")); !errors.Is(err, migrate.ErrNotFound) {
		t.Errorf("missing container: %v, want ErrNotFound", err)
	}
	if _, err := e.client.Container(testDB, "absent").PartitionKeyRanges(tctx(t)); !errors.Is(err, migrate.ErrNotFound) {
		t.Errorf("ranges of a missing container: %v, want ErrNotFound", err)
	}
}

func TestMergeRanges(t *testing.T) {
	whole := []PartitionKeyRange{{ID: "0", Min: "", Max: "FF"}}
	for _, tt := range []struct {
		name  string
		known []PartitionKeyRange
		added []rangeDoc
		want  []PartitionKeyRange
		ok    bool
	}{
		{"full read", nil, []rangeDoc{{ID: "1", Min: "80", Max: "FF"}, {ID: "0", Min: "", Max: "80"}},
			[]PartitionKeyRange{{"0", "", "80"}, {"1", "80", "FF"}}, true},
		{"full read with a gone parent", nil, []rangeDoc{{ID: "0", Min: "", Max: "FF"}, {ID: "1", Min: "", Max: "80", Parents: []string{"0"}}, {ID: "2", Min: "80", Max: "FF", Parents: []string{"0"}}},
			[]PartitionKeyRange{{"1", "", "80"}, {"2", "80", "FF"}}, true},
		{"nothing new", whole, nil, whole, true},
		{"split", whole, []rangeDoc{{ID: "1", Min: "", Max: "80", Parents: []string{"0"}}, {ID: "2", Min: "80", Max: "FF", Parents: []string{"0"}}},
			[]PartitionKeyRange{{"1", "", "80"}, {"2", "80", "FF"}}, true},
		{"half a split", whole, []rangeDoc{{ID: "1", Min: "", Max: "80", Parents: []string{"0"}}}, nil, false},
		{"gap", nil, []rangeDoc{{ID: "0", Min: "", Max: "40"}, {ID: "1", Min: "80", Max: "FF"}}, nil, false},
		{"zero-padded boundary", nil, []rangeDoc{{ID: "0", Min: "", Max: "80"}, {ID: "1", Min: "8000", Max: "FF"}},
			[]PartitionKeyRange{{"0", "", "80"}, {"1", "8000", "FF"}}, true},
	} {
		got, ok := mergeRanges(tt.known, tt.added)
		if ok != tt.ok || (ok && fmt.Sprint(got) != fmt.Sprint(tt.want)) {
			t.Errorf("%s: %v, %t; want %v, %t", tt.name, got, ok, tt.want, tt.ok)
		}
	}
}

// numberValue is a number key component.
func numberValue(f float64) transform.Value {
	return transform.Value{Type: transform.TypeNumber, Num: f}
}
