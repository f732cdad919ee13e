package migratetest

import (
	"errors"
	"net/http"
	"slices"
	"testing"

	"github.com/rekey-dev/rekey/migrate"
)

// RunTarget checks that a container keeps the migrate.Target contract as
// the service does: 409 on a create that exists, 412 on a stale If-Match,
// 404 on an absent item, a new ETag on every write, a body whose key does
// not match refused, failures charged, and transactional batches that
// commit all or nothing with 424 for the operations that did not fail.
func RunTarget(t *testing.T, open Open) {
	t.Helper()
	fresh := func(t *testing.T) Store { return open(t, hashKey, 1).Store }

	t.Run("Lifecycle", func(t *testing.T) {
		s := fresh(t)
		created := create(t, s, "a", "p", 1)
		if created.ETag == "" || created.RU <= 0 {
			t.Fatalf("create = %+v; want an ETag and a charge", created)
		}
		it, err := s.Read(ctx(t), key("p"), "a")
		if err != nil {
			t.Fatal(err)
		}
		m := decoded(t, it.Body)
		if it.ETag != created.ETag || m["_etag"] != created.ETag || m["v"] != float64(1) || it.RU <= 0 {
			t.Fatalf("read = %+v (body %v); want the created version, its ETag in _etag and a charge", it, m)
		}
		for _, p := range []string{"_rid", "_self", "_ts"} {
			if _, ok := m[p]; !ok {
				t.Errorf("read body has no system property %s: %v", p, m)
			}
		}
		replaced, err := s.Replace(ctx(t), key("p"), "a", body("a", "p", 2), created.ETag)
		if err != nil {
			t.Fatal(err)
		}
		if replaced.ETag == "" || replaced.ETag == created.ETag || replaced.RU <= 0 {
			t.Fatalf("replace = %+v; want a new ETag and a charge", replaced)
		}
		_, err = s.Delete(ctx(t), key("p"), "a", created.ETag)
		wantFailure(t, "delete with the old ETag", err, migrate.ErrPreconditionFailed)
		if _, err := s.Delete(ctx(t), key("p"), "a", replaced.ETag); err != nil {
			t.Fatalf("delete with the current ETag: %v", err)
		}
		_, err = s.Read(ctx(t), key("p"), "a")
		wantFailure(t, "read after delete", err, migrate.ErrNotFound)
	})

	t.Run("CreateConflicts", func(t *testing.T) {
		s := fresh(t)
		create(t, s, "a", "p", 1)
		_, err := s.Create(ctx(t), key("p"), body("a", "p", 2))
		wantFailure(t, "create of an existing item", err, migrate.ErrConflict)
		it, err := s.Read(ctx(t), key("p"), "a")
		if err != nil || decoded(t, it.Body)["v"] != float64(1) {
			t.Fatalf("after the conflict: %s, %v; want the first version", it.Body, err)
		}
		create(t, s, "a", "q", 1) // the same id under another key is another item
	})

	t.Run("ReplaceIsConditional", func(t *testing.T) {
		s := fresh(t)
		first := create(t, s, "a", "p", 1)
		replace(t, s, "a", "p", 2) // no If-Match: whatever the ETag
		_, err := s.Replace(ctx(t), key("p"), "a", body("a", "p", 3), first.ETag)
		wantFailure(t, "replace with a stale ETag", err, migrate.ErrPreconditionFailed)
		it, err := s.Read(ctx(t), key("p"), "a")
		if err != nil || decoded(t, it.Body)["v"] != float64(2) {
			t.Fatalf("after the 412: %s, %v; want version 2", it.Body, err)
		}
		_, err = s.Replace(ctx(t), key("p"), "absent", body("absent", "p", 1), "")
		wantFailure(t, "replace of an absent item", err, migrate.ErrNotFound)
		_, err = s.Delete(ctx(t), key("p"), "absent", "")
		wantFailure(t, "delete of an absent item", err, migrate.ErrNotFound)
	})

	t.Run("KeyMustMatchTheBody", func(t *testing.T) {
		s := fresh(t)
		_, err := s.Create(ctx(t), key("q"), body("a", "p", 1))
		if !errors.Is(err, migrate.ErrBadRequest) {
			t.Fatalf("create under a key the body does not hold: %v, want ErrBadRequest", err)
		}
		if _, err := s.Read(ctx(t), key("q"), "a"); !errors.Is(err, migrate.ErrNotFound) {
			t.Fatalf("the refused item exists: %v", err)
		}
	})

	t.Run("BatchCommitsAll", func(t *testing.T) {
		s := fresh(t)
		res, err := s.CreateBatch(ctx(t), key("p"), [][]byte{body("a", "p", 1), body("b", "p", 1), body("c", "p", 1)})
		if err != nil || !res.Committed || res.RU <= 0 {
			t.Fatalf("batch = %+v, %v; want committed and charged", res, err)
		}
		for _, id := range []string{"a", "b", "c"} {
			if _, err := s.Read(ctx(t), key("p"), id); err != nil {
				t.Errorf("item %s after the batch: %v", id, err)
			}
		}
		if res, err := s.CreateBatch(ctx(t), key("p"), nil); err != nil || !res.Committed {
			t.Errorf("empty batch = %+v, %v; want committed", res, err)
		}
	})

	t.Run("BatchIsAtomic", func(t *testing.T) {
		s := fresh(t)
		create(t, s, "b", "p", 1)
		res, err := s.CreateBatch(ctx(t), key("p"), [][]byte{body("a", "p", 1), body("b", "p", 2), body("c", "p", 1)})
		if err != nil {
			t.Fatal(err)
		}
		want := []int{http.StatusFailedDependency, http.StatusConflict, http.StatusFailedDependency}
		if res.Committed || !slices.Equal(res.Statuses, want) || res.RU <= 0 {
			t.Fatalf("batch over an existing item = %+v; want not committed, statuses %v, a charge", res, want)
		}
		for _, id := range []string{"a", "c"} {
			if _, err := s.Read(ctx(t), key("p"), id); !errors.Is(err, migrate.ErrNotFound) {
				t.Errorf("item %s of the failed batch exists (%v): a batch is all or nothing", id, err)
			}
		}
		it, err := s.Read(ctx(t), key("p"), "b")
		if err != nil || decoded(t, it.Body)["v"] != float64(1) {
			t.Errorf("item b after the failed batch: %s, %v; want version 1", it.Body, err)
		}
		res, err = s.CreateBatch(ctx(t), key("p"), [][]byte{body("d", "p", 1), body("d", "p", 2)})
		want = []int{http.StatusFailedDependency, http.StatusConflict}
		if err != nil || res.Committed || !slices.Equal(res.Statuses, want) {
			t.Fatalf("batch repeating an id = %+v, %v; want statuses %v", res, err, want)
		}
		if _, err := s.Read(ctx(t), key("p"), "d"); !errors.Is(err, migrate.ErrNotFound) {
			t.Errorf("item d of the failed batch exists (%v)", err)
		}
	})
}
