package leasetest

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/rekey-dev/rekey/lease"
)

// RunDocuments checks that a Documents implementation keeps the contract
// the Cosmos store relies on: create-if-absent, ETag-conditional replace and
// delete, the three sentinel errors, and List by id prefix. It uses ids
// under a random prefix, so it can run against a shared container.
func RunDocuments(t *testing.T, docs lease.Documents) {
	t.Helper()
	ctx := context.Background()
	base := "leasetest-" + strings.ToLower(rand.Text()[:10])
	body := func(id, v string) []byte {
		b, _ := json.Marshal(map[string]string{"id": id, "v": v})
		return b
	}
	value := func(t *testing.T, d lease.Doc) string {
		t.Helper()
		var obj struct{ V string }
		if err := json.Unmarshal(d.Body, &obj); err != nil {
			t.Fatalf("document %s: body %q: %v", d.ID, d.Body, err)
		}
		return obj.V
	}

	t.Run("CreateRead", func(t *testing.T) {
		id := base + ".create"
		etag, err := docs.Create(ctx, id, body(id, "1"))
		if err != nil || etag == "" {
			t.Fatalf("Create = %q, %v", etag, err)
		}
		if _, err := docs.Create(ctx, id, body(id, "2")); !errors.Is(err, lease.ErrDocExists) {
			t.Fatalf("Create of a taken id = %v, want ErrDocExists", err)
		}
		d, err := docs.Read(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if d.ID != id || d.ETag != etag || value(t, d) != "1" {
			t.Fatalf("Read = %s %q v=%q, want %s %q v=1", d.ID, d.ETag, value(t, d), id, etag)
		}
		if _, err := docs.Read(ctx, base+".absent"); !errors.Is(err, lease.ErrDocNotFound) {
			t.Fatalf("Read of an absent id = %v, want ErrDocNotFound", err)
		}
	})

	t.Run("ReplaceIfMatch", func(t *testing.T) {
		id := base + ".replace"
		etag1, err := docs.Create(ctx, id, body(id, "1"))
		if err != nil {
			t.Fatal(err)
		}
		etag2, err := docs.Replace(ctx, id, body(id, "2"), etag1)
		if err != nil || etag2 == "" || etag2 == etag1 {
			t.Fatalf("Replace = %q, %v; want a new ETag", etag2, err)
		}
		if _, err := docs.Replace(ctx, id, body(id, "3"), etag1); !errors.Is(err, lease.ErrDocChanged) {
			t.Fatalf("Replace with a stale ETag = %v, want ErrDocChanged", err)
		}
		if d, err := docs.Read(ctx, id); err != nil || value(t, d) != "2" || d.ETag != etag2 {
			t.Fatalf("after a refused replace, Read = %+v, %v", d, err)
		}
		if _, err := docs.Replace(ctx, base+".absent", body(base+".absent", "1"), etag1); !errors.Is(err, lease.ErrDocNotFound) {
			t.Fatalf("Replace of an absent id = %v, want ErrDocNotFound", err)
		}
	})

	t.Run("DeleteIfMatch", func(t *testing.T) {
		id := base + ".delete"
		etag1, err := docs.Create(ctx, id, body(id, "1"))
		if err != nil {
			t.Fatal(err)
		}
		etag2, err := docs.Replace(ctx, id, body(id, "2"), etag1)
		if err != nil {
			t.Fatal(err)
		}
		if err := docs.Delete(ctx, id, etag1); !errors.Is(err, lease.ErrDocChanged) {
			t.Fatalf("Delete with a stale ETag = %v, want ErrDocChanged", err)
		}
		if err := docs.Delete(ctx, id, etag2); err != nil {
			t.Fatal(err)
		}
		if err := docs.Delete(ctx, id, etag2); !errors.Is(err, lease.ErrDocNotFound) {
			t.Fatalf("Delete of a deleted id = %v, want ErrDocNotFound", err)
		}
		if _, err := docs.Read(ctx, id); !errors.Is(err, lease.ErrDocNotFound) {
			t.Fatalf("Read of a deleted id = %v, want ErrDocNotFound", err)
		}
	})

	t.Run("ListByPrefix", func(t *testing.T) {
		p := base + ".list"
		want := map[string]bool{p + "..a": true, p + "..b": true}
		for _, id := range []string{p + "..a", p + "..b", p + ".meta", base + ".other..a"} {
			if _, err := docs.Create(ctx, id, body(id, "x")); err != nil {
				t.Fatal(err)
			}
		}
		got, err := docs.List(ctx, p+"..")
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("List(%q) returned %d documents, want %d", p+"..", len(got), len(want))
		}
		for _, d := range got {
			if !want[d.ID] || d.ETag == "" || value(t, d) != "x" {
				t.Errorf("List returned %s (ETag %q, body %s)", d.ID, d.ETag, d.Body)
			}
		}
	})
}
