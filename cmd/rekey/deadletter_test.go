package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rekey-dev/rekey/migrate"
	"github.com/rekey-dev/rekey/migrate/deadletter"
)

// One item per dead-letter cause: each lands in the dead-letter file with its
// reason, is counted, and the rest is copied. Fixing the cause (a default in
// the key spec, a trimmed item) and replaying writes the item and clears it.
func TestDeadLettersAndReplay(t *testing.T) {
	e := newE2E(t)
	src := e.container("orders", 12_000, "/region")
	good := func(id, region string) map[string]any {
		return map[string]any{"id": id, "region": region, "tenantId": "contoso", "createdAt": "2024-05-01T00:00:00Z"}
	}
	put(t, src, "eu", good("ok-1", "eu"))
	put(t, src, "us", good("ok-2", "us"))
	noTenant := good("no-tenant", "eu")
	delete(noTenant, "tenantId")
	put(t, src, "eu", noTenant) // missing-field
	objTenant := good("obj-tenant", "eu")
	objTenant["tenantId"] = map[string]any{"name": "x"}
	put(t, src, "eu", objTenant) // wrong-type
	longTenant := good("long-tenant", "eu")
	longTenant["tenantId"] = strings.Repeat("t", 2100)
	put(t, src, "eu", longTenant) // key-too-large
	conflicting := good("conflict", "eu")
	conflicting["pk"] = "something else"
	put(t, src, "eu", conflicting) // key-conflict: the synthetic path exists with another value
	// collision: one id in two source partitions mapping to one target key
	put(t, src, "eu", good("twin", "eu"))
	put(t, src, "us", good("twin", "us"))
	big := good("big", "eu")
	big["blob"] = strings.Repeat("b", 2*1024*1024-300) // fits the source, not the target with its key
	put(t, src, "eu", big)

	keys := []string{"/pk={tenantId}-{createdAt|yyyyMM}"}
	args := append([]string{"run", "--until-caught-up", "--create-target", "--target-throughput", "20000"}, e.args("orders", "target", keys...)...)
	out, errOut, code := cli(t, context.Background(), args...)
	if code != 0 {
		t.Fatalf("run: exit %d\n%s%s", code, out, errOut)
	}
	if !strings.Contains(out, "dead-lettered     6 now in") || !strings.Contains(out, "collisions 1") {
		t.Fatalf("summary should count 6 dead letters and 1 collision:\n%s", out)
	}

	list, _, code := cli(t, context.Background(), append([]string{"deadletter", "list", "-o", "json"}, e.args("orders", "target", keys...)...)...)
	if code != 0 {
		t.Fatalf("deadletter list: exit %d", code)
	}
	kinds := map[string]string{}
	for _, dl := range decodeDeadLetterList(t, list) {
		kinds[dl.SourceID] = dl.Kind
		if dl.Reason == "" || len(dl.Item) == 0 && dl.SourceID != "big" {
			t.Errorf("dead letter %s lacks a reason or the item", dl.SourceID)
		}
	}
	want := map[string]string{"no-tenant": "missing-field", "obj-tenant": "wrong-type", "long-tenant": "key-too-large",
		"conflict": "key-conflict", "twin": migrate.KindCollision, "big": migrate.KindTooLarge}
	for id, kind := range want {
		if kinds[id] != kind {
			t.Errorf("item %s: dead-letter kind %q, want %q (all: %v)", id, kinds[id], kind, kinds)
		}
	}
	table, _, _ := cli(t, context.Background(), append([]string{"deadletter", "list"}, e.args("orders", "target", keys...)...)...)
	if !strings.Contains(table, "6 items") || !strings.Contains(table, "SOURCE ID") {
		t.Errorf("table listing:\n%s", table)
	}

	// Fix two causes: a default for the missing tenant, and trim the big item.
	delete(big, "blob")
	put(t, src, "eu", big)
	fixed := []string{"/pk={tenantId?unknown}-{createdAt|yyyyMM}"}
	out, errOut, code = cli(t, context.Background(), append([]string{"deadletter", "replay"}, e.args("orders", "target", fixed...)...)...)
	if code != ExitStillDead || !strings.Contains(out, "2 written") || !strings.Contains(out, "4 dead letters remain") {
		t.Fatalf("replay: exit %d\n%s%s", code, out, errOut)
	}
	tgt := e.client.Container(testDB, "target")
	for id, key := range map[string]string{"no-tenant": "unknown-202405", "big": "contoso-202405"} {
		if _, err := tgt.Read(context.Background(), keyOf(key), id); err != nil {
			t.Errorf("after replay, %s should be in the target under %s: %v", id, key, err)
		}
	}
	// Any other change of the key spec is refused.
	_, errOut, code = cli(t, context.Background(), append([]string{"run", "--until-caught-up"}, e.args("orders", "target", "/pk={createdAt|yyyyMM}")...)...)
	if code != ExitError || !strings.Contains(errOut, "records a migration with key spec") {
		t.Fatalf("a changed key spec: exit %d\n%s", code, errOut)
	}
}

// decodeDeadLetterList reads `rekey deadletter list -o json`: one
// document whose count is its number of items.
func decodeDeadLetterList(t *testing.T, out string) []migrate.DeadLetter {
	t.Helper()
	var doc struct {
		Items []migrate.DeadLetter `json:"items"`
		Count *int                 `json:"count"`
	}
	dec := json.NewDecoder(strings.NewReader(out))
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("deadletter list -o json: %v\n%s", err, out)
	}
	if dec.More() || doc.Count == nil || *doc.Count != len(doc.Items) || doc.Items == nil {
		t.Fatalf("deadletter list -o json: want one document with items and their count:\n%s", out)
	}
	return doc.Items
}

// The JSON listing is one document, an item per line, also when empty.
func TestDeadLetterListJSONDocument(t *testing.T) {
	store, err := deadletter.OpenFile(filepath.Join(t.TempDir(), "deadletter.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	var empty bytes.Buffer
	if err := listDeadLetters(&empty, store, "json"); err != nil {
		t.Fatal(err)
	}
	if got := empty.String(); got != "{\n  \"items\": [],\n  \"count\": 0\n}\n" {
		t.Errorf("empty listing %q", got)
	}
	for _, id := range []string{"a", "b", "c"} {
		if err := store.Add(migrate.DeadLetter{SourceID: id, SourceKey: json.RawMessage(`["k"]`), Kind: migrate.KindCollision, Reason: "twin", Item: json.RawMessage(`{"id":"` + id + `"}`)}); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	if err := listDeadLetters(&out, store, "json"); err != nil {
		t.Fatal(err)
	}
	items := decodeDeadLetterList(t, out.String())
	if len(items) != 3 || items[0].SourceID != "a" || items[2].SourceID != "c" || strings.Count(out.String(), "\n") != 3+5 {
		t.Errorf("listing of 3:\n%s", out.String())
	}
}
