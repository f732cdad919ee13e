package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/rekey-dev/rekey/migrate"
)

// cosmosArgs are e.args with the state in the lease container leases/prod.
func (e *e2e) cosmosArgs(src, dst string, keys ...string) []string {
	a := e.args(src, dst, keys...)
	for i := range a {
		if a[i] == "--state" {
			a[i+1] = "cosmos://leases/prod"
		}
	}
	return a
}

// targetExists reports whether db/id exists in the emulator.
func (e *e2e) targetExists(db, id string) bool {
	_, err := e.client.ContainerDefinition(context.Background(), db, id)
	return err == nil
}

// Ordinary container names whose old lease prefix was over 40 bytes
// migrate with a lease-container state, and every command finds it. A
// --state that cannot work is refused before the target is created.
func TestCosmosStateWithLongNames(t *testing.T) {
	e := newE2E(t)
	src := e.container("customer-orders", 12_000, "/region")
	for i := 0; i < 20; i++ {
		put(t, src, regions[i%len(regions)], order(i, 1))
	}
	keys := []string{"/tenantId"}
	create := []string{"run", "--until-caught-up", "--create-target", "--target-throughput", "12000", "--poll-interval", "20ms", "--lease-ttl", "3s"}

	for _, bad := range []struct{ state, want string }{
		{"cosmos://leases", "want cosmos://DATABASE/CONTAINER"},
		{"cosmos://shop/customer-orders", "is the source container"},
		{"cosmos://shop/customer-orders-v2", "is the target container"},
	} {
		args := append(append([]string{}, create...), e.args("customer-orders", "customer-orders-v2", keys...)...)
		for i := range args {
			if args[i] == "--state" {
				args[i+1] = bad.state
			}
		}
		_, errOut, code := cli(t, context.Background(), args...)
		if code != ExitError || !strings.Contains(errOut, bad.want) {
			t.Errorf("--state %s: exit %d, want %d and %q\n%s", bad.state, code, ExitError, bad.want, errOut)
		}
		if e.targetExists(testDB, "customer-orders-v2") {
			t.Fatalf("--state %s was refused after the target was created", bad.state)
		}
	}

	conn := e.cosmosArgs("customer-orders", "customer-orders-v2", keys...)
	out, errOut, code := cli(t, context.Background(), append(append([]string{}, create...), conn...)...)
	if code != 0 {
		t.Fatalf("run with --state cosmos://leases/prod: exit %d\n%s%s", code, out, errOut)
	}
	checkCopy(t, src, e.client.Container(testDB, "customer-orders-v2"), keys, []string{"/region"}, nil)
	out, errOut, code = cli(t, context.Background(), append([]string{"status"}, conn...)...)
	if code != 0 || !strings.Contains(out, "items copied: 20") {
		t.Fatalf("status: exit %d\n%s%s", code, out, errOut)
	}
	out, errOut, code = cli(t, context.Background(), append([]string{"deadletter", "list"}, conn...)...)
	if code != 0 || !strings.Contains(out, "no dead letters") {
		t.Fatalf("deadletter list: exit %d\n%s%s", code, out, errOut)
	}
}

// A state that an older rekey created under the old prefix
// ("rekey.<db>.<ctr>.<db>.<ctr>") is still found: a run resumes it instead
// of starting a second migration under the new prefix.
func TestCosmosStateUnderTheOldPrefix(t *testing.T) {
	e := newE2E(t)
	src := e.container("orders", 12_000, "/region")
	for i := 0; i < 10; i++ {
		put(t, src, regions[i%len(regions)], order(i, 1))
	}
	put(t, src, "eu", tenantOrder("dead-1", "eu", "")) // a dead letter in the state too
	keys := []string{"/pk={tenantId}-{createdAt|yyyyMM}"}
	conn := e.cosmosArgs("orders", "target", keys...)
	run := append([]string{"run", "--until-caught-up", "--create-target", "--target-throughput", "12000", "--poll-interval", "20ms", "--lease-ttl", "3s"}, conn...)
	if out, errOut, code := cli(t, context.Background(), run...); code != 0 {
		t.Fatalf("first run: exit %d\n%s%s", code, out, errOut)
	}
	src0, dst0 := mustRef(t, testDB+"/orders"), mustRef(t, testDB+"/target")
	oldPrefix := "rekey." + testDB + ".orders." + testDB + ".target"
	newPrefix := migrate.LeasePrefix(src0, dst0)
	if moved := e.movePrefix(t, newPrefix, oldPrefix); moved < 3 {
		t.Fatalf("moved %d documents: want the meta, the leases and the dead letter", moved)
	}

	put(t, src, regions[100%len(regions)], order(100, 1))
	if out, errOut, code := cli(t, context.Background(), run...); code != 0 {
		t.Fatalf("run on the old state: exit %d\n%s%s", code, out, errOut)
	}
	docs := e.client.LeaseDocuments("leases", "prod")
	if l, err := docs.List(context.Background(), newPrefix); err != nil || len(l) != 0 {
		t.Fatalf("the run started a new state under %s (%d documents, %v) instead of resuming the old one", newPrefix, len(l), err)
	}
	out, errOut, code := cli(t, context.Background(), append([]string{"status"}, conn...)...)
	if code != 0 || !strings.Contains(out, "items copied: 12") || !strings.Contains(out, "dead letters: 1") {
		t.Fatalf("status of the old state: exit %d\n%s%s", code, out, errOut)
	}
}

// movePrefix renames every document under from to the same id under to, as
// if an older rekey had written them there, and returns how many it moved.
func (e *e2e) movePrefix(t *testing.T, from, to string) int {
	t.Helper()
	ctx := context.Background()
	docs := e.client.LeaseDocuments("leases", "prod")
	l, err := docs.List(ctx, from+".")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range l {
		var body map[string]any
		if err := json.Unmarshal(d.Body, &body); err != nil {
			t.Fatal(err)
		}
		for _, sys := range []string{"_rid", "_self", "_etag", "_attachments", "_ts"} {
			delete(body, sys)
		}
		id := to + strings.TrimPrefix(d.ID, from)
		body["id"] = id
		b, _ := json.Marshal(body)
		if _, err := docs.Create(ctx, id, b); err != nil {
			t.Fatal(err)
		}
		if err := docs.Delete(ctx, d.ID, d.ETag); err != nil {
			t.Fatal(err)
		}
	}
	return len(l)
}
