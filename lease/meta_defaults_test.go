package lease_test

import (
	"context"
	"testing"

	"github.com/rekey-dev/rekey/lease"
	"github.com/rekey-dev/rekey/lease/leasetest"
)

// UpdateMeta never drops a recorded default use, nor the recorded phase: a
// writer that read the meta before another recorded a use or a cutover
// (a worker recording a use while cutover records its switch) keeps both.
func TestUpdateMetaKeepsDefaultUses(t *testing.T) {
	ctx := context.Background()
	file, err := lease.OpenFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	cosmos, err := lease.NewCosmos(leasetest.NewMemDocuments(), "rekey.m")
	if err != nil {
		t.Fatal(err)
	}
	used := lease.DefaultUse{Key: 0, Placeholder: 1, Field: "region", Default: "none"}
	for name, s := range map[string]lease.Store{"file": file, "cosmos": cosmos} {
		t.Run(name, func(t *testing.T) {
			stale, err := s.Init(ctx, lease.Meta{Version: 2, Source: "a", Target: "b", KeySpec: []string{"/pk={x}{region?none}"}})
			if err != nil {
				t.Fatal(err)
			}
			withUse := stale
			withUse.DefaultsUsed = []lease.DefaultUse{used, used}
			if err := s.UpdateMeta(ctx, withUse); err != nil {
				t.Fatal(err)
			}
			if _, err := s.SwapMeta(ctx, func(m *lease.Meta) error {
				m.Cutover = &lease.Cutover{Items: 1}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if err := s.UpdateMeta(ctx, stale); err != nil {
				t.Fatal(err)
			}
			got, err := s.ReadMeta(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if got.Cutover == nil || len(got.DefaultsUsed) != 1 || got.DefaultsUsed[0] != used {
				t.Fatalf("after a stale update: cutover %v, uses %+v", got.Cutover, got.DefaultsUsed)
			}
		})
	}
}
