package lease_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/rekey-dev/rekey/lease"
	"github.com/rekey-dev/rekey/lease/leasetest"
)

func TestFileLayout(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "nested", ".rekey")
	clock := leasetest.NewClock(leasetest.Epoch)
	s, err := lease.OpenFile(dir, lease.WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Init(ctx, lease.Meta{Version: 1}); err != nil {
		t.Fatal(err)
	}
	l := leasetest.FullLease("05C1E0-FF", lease.Range{Min: "05C1E0", Max: "FF"})
	if _, err := s.Create(ctx, l); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"state.json", "lock", "leases/05C1E0-FF.json"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("layout: %v", err)
		}
	}

	// The file holds the document the Cosmos store writes, but for the
	// "_etag" the service adds there.
	docs := leasetest.NewMemDocuments()
	cs, err := lease.NewCosmos(docs, lease.DefaultPrefix, lease.WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.Create(ctx, l); err != nil {
		t.Fatal(err)
	}
	fromFile, err := os.ReadFile(filepath.Join(dir, "leases", "05C1E0-FF.json"))
	if err != nil {
		t.Fatal(err)
	}
	fromCosmos, _ := docs.Raw("rekey..05C1E0-FF")
	a, b := jsonObject(t, fromFile), jsonObject(t, fromCosmos)
	if a["_etag"] == nil {
		t.Errorf("lease file has no _etag: %s", fromFile)
	}
	delete(a, "_etag")
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("file store document\n%s\ndiffers from Cosmos store document\n%s", fromFile, fromCosmos)
	}
}

func jsonObject(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	return m
}

func TestOpenFileRemovesTempFiles(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := lease.OpenFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, lease.Lease{ID: "a", Range: lease.Range{Max: "FF"}}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	// What a crash between CreateTemp and rename leaves: torn temp files.
	for _, p := range []string{".state.json.tmp-123", "leases/.a.json.tmp-456", "leases/.b.json.tmp-789"} {
		if err := os.WriteFile(filepath.Join(dir, p), []byte(`{"id":`), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s, err = lease.OpenFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n := countTempFiles(t, dir); n != 0 {
		t.Fatalf("%d temp files remain after OpenFile", n)
	}
	list, err := s.List(ctx)
	if err != nil || len(list) != 1 || list[0].ID != "a" {
		t.Fatalf("List = %+v, %v; want lease a only", list, err)
	}
}

func TestFileStoreCorruptFiles(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name, file, content string
		op                  func(s *lease.FileStore) error
	}{
		{"torn lease", "leases/a.json", `{"id":"rekey..a","version":1,"Lea`, listOp},
		{"empty lease", "leases/a.json", ``, listOp},
		{"lease of another id", "leases/b.json", leaseDoc(t, "a"), listOp},
		{"lease without etag", "leases/a.json", `{"id":"rekey..a","version":1,"LeaseToken":"a","FeedRange":{"Range":{"min":"","max":"FF"}}}`, listOp},
		{"torn lease on update", "leases/a.json", `{"id"`, func(s *lease.FileStore) error {
			_, err := s.Update(ctx, lease.Lease{ID: "a", ETag: "x"})
			return err
		}},
		{"torn state", "state.json", `{"version":1,"sou`, func(s *lease.FileStore) error {
			_, err := s.Init(ctx, lease.Meta{})
			return err
		}},
		{"state is an array", "state.json", `[]`, func(s *lease.FileStore) error {
			_, err := s.ReadMeta(ctx)
			return err
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.MkdirAll(filepath.Join(dir, "leases"), 0o755); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, tc.file)
			if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := lease.OpenFile(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			err = tc.op(s)
			if !errors.Is(err, lease.ErrCorrupt) || !strings.Contains(err.Error(), path) {
				t.Fatalf("error %v: want ErrCorrupt naming %s", err, path)
			}
		})
	}
}

func listOp(s *lease.FileStore) error {
	_, err := s.List(context.Background())
	return err
}

// leaseDoc returns a valid lease file for id.
func leaseDoc(t *testing.T, id string) string {
	t.Helper()
	dir := t.TempDir()
	s, err := lease.OpenFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Create(context.Background(), lease.Lease{ID: id, Range: lease.Range{Max: "FF"}}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "leases", id+".json"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestFileStoreReadOnly(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if _, err := lease.OpenFile(filepath.Join(dir, "absent"), lease.ReadOnly()); !errors.Is(err, lease.ErrNoMeta) {
		t.Fatalf("ReadOnly open of a missing directory = %v, want ErrNoMeta", err)
	}
	rw, err := lease.OpenFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer rw.Close()
	if _, err := rw.ReadMeta(ctx); !errors.Is(err, lease.ErrNoMeta) {
		t.Fatalf("ReadMeta before Init = %v, want ErrNoMeta", err)
	}
	if _, err := rw.Init(ctx, lease.Meta{Version: 1, Source: "s"}); err != nil {
		t.Fatal(err)
	}
	l, err := rw.Create(ctx, lease.Lease{ID: "a", Range: lease.Range{Max: "FF"}})
	if err != nil {
		t.Fatal(err)
	}

	// While the writer holds the lock, a reader still reads.
	ro, err := lease.OpenFile(dir, lease.ReadOnly())
	if err != nil {
		t.Fatalf("ReadOnly open while locked: %v", err)
	}
	defer ro.Close()
	if m, err := ro.ReadMeta(ctx); err != nil || m.Source != "s" {
		t.Fatalf("ReadMeta = %+v, %v", m, err)
	}
	if list, err := ro.List(ctx); err != nil || len(list) != 1 || list[0] != l {
		t.Fatalf("List = %+v, %v; want [%+v]", list, err, l)
	}
	if _, err := ro.Update(ctx, l); !errors.Is(err, lease.ErrReadOnly) {
		t.Fatalf("Update on a read-only store = %v, want ErrReadOnly", err)
	}
	if err := ro.UpdateMeta(ctx, lease.Meta{}); !errors.Is(err, lease.ErrReadOnly) {
		t.Fatalf("UpdateMeta on a read-only store = %v, want ErrReadOnly", err)
	}
}

func TestFileStoreClosed(t *testing.T) {
	s, err := lease.OpenFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := s.List(context.Background()); err == nil {
		t.Fatal("List after Close succeeded")
	}
}

// Range workers checkpoint their own leases concurrently; each sees every
// one of its writes succeed, and the files end as the last writes left them.
func TestFileStoreConcurrentWorkers(t *testing.T) {
	ctx := context.Background()
	s, err := lease.OpenFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const workers, writes = 8, 25
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l, err := s.Create(ctx, lease.Lease{ID: fmt.Sprintf("w%d", w), Range: lease.Range{Min: fmt.Sprintf("%02X", w*16), Max: "FF"}})
			if err != nil {
				t.Error(err)
				return
			}
			for range writes {
				l.Items++
				if l, err = s.Update(ctx, l); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	list, err := s.List(ctx)
	if err != nil || len(list) != workers {
		t.Fatalf("List = %d leases, %v", len(list), err)
	}
	for i, l := range list {
		if l.ID != fmt.Sprintf("w%d", i) || l.Items != writes {
			t.Errorf("lease %d = %s with %d items, want w%d with %d", i, l.ID, l.Items, i, writes)
		}
	}
}
