// Package rig is a migration over in-memory containers (migratetest) for
// the tests of the subsystems that work on a whole migration (verify,
// cutover): a source keyed on /region with two partitions, a target keyed
// on /pk={tenant}, a file state, a dead-letter file, and the Runner and
// Verifier that work on them.
package rig

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/rekey-dev/rekey/lease"
	"github.com/rekey-dev/rekey/migrate"
	"github.com/rekey-dev/rekey/migrate/deadletter"
	"github.com/rekey-dev/rekey/migrate/migratetest"
	"github.com/rekey-dev/rekey/migrate/pacing"
	"github.com/rekey-dev/rekey/migrate/pipeline"
	"github.com/rekey-dev/rekey/migrate/verify"
	"github.com/rekey-dev/rekey/transform"
)

// Rig is one migration's containers and state.
type Rig struct {
	Src, Dst *migratetest.Container
	Tr       *transform.Transformer
	Store    *lease.FileStore
	Dead     *deadletter.FileStore
	// Clock is verify's and cutover's; the Runner keeps real time.
	Clock *migratetest.Clock
	// Writes is the write path to Dst that the Runner and the Verifier
	// share: 32 writes in flight, no RU caps, real time.
	Writes *pipeline.WritePath
}

// SourceKey and TargetKey are the rig's partition key definitions.
var (
	SourceKey = migrate.Definition{Paths: []string{"/region"}, Kind: "Hash", Version: 2}
	TargetKey = migrate.Definition{Paths: []string{"/pk"}, Kind: "Hash", Version: 2}
)

// New returns a rig with empty containers and a fresh state, closed when
// the test ends. srcOpts adjust the source container (its clock, say).
func New(t testing.TB, srcOpts ...migratetest.Option) *Rig {
	t.Helper()
	tr := migratetest.Transformer(t, "/region", "/pk={tenant}")
	dir := t.TempDir()
	store, err := lease.OpenFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if _, err := store.Init(context.Background(), migrate.NewMeta("src", "dst", tr, time.Time{})); err != nil {
		t.Fatal(err)
	}
	dead, err := deadletter.OpenFile(filepath.Join(dir, "deadletter.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dead.Close() })
	dst := migratetest.MustNew(t, TargetKey)
	src := migratetest.MustNew(t, SourceKey, append([]migratetest.Option{migratetest.WithPartitions(2)}, srcOpts...)...)
	writes := pipeline.NewWritePath(dst, pipeline.WritePathConfig{Flow: pacing.Config{Controller: pacing.ControllerFixed}})
	return &Rig{Src: src, Dst: dst, Tr: tr, Store: store, Dead: dead, Clock: &migratetest.Clock{}, Writes: writes}
}

// Doc is a source item of the rig.
func Doc(id, region, tenant string, v int) string {
	return fmt.Sprintf(`{"id":%q,"region":%q,"tenant":%q,"v":%d}`, id, region, tenant, v)
}

// IDOf reads an item body's id.
func IDOf(body string) string {
	var d struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal([]byte(body), &d)
	return d.ID
}

// Key is a single-component string key.
func Key(s string) migrate.Key { return migrate.Key{transform.StringValue(s)} }

// CopyOf is the target key and copy the spec makes of a source item.
func (r *Rig) CopyOf(t testing.TB, body string) (migrate.Key, string) {
	t.Helper()
	res, err := r.Tr.Apply([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	return migrate.Key(res.Key), string(res.Item)
}

// TargetCopy is what the target holds where the spec puts a source item.
func (r *Rig) TargetCopy(t testing.TB, body string) (migrate.Item, bool) {
	t.Helper()
	key, _ := r.CopyOf(t, body)
	return r.Dst.Get(key, IDOf(body))
}

// Runner copies on real time: its heartbeats and polls would spin on a
// fake clock. Tests give it PollInterval 1ms.
func (r *Rig) Runner() *pipeline.Runner {
	return &pipeline.Runner{Source: r.Src, Transformer: r.Tr, Store: r.Store, DeadLetters: r.Dead, Writes: r.Writes}
}

// Verifier verifies on the rig's fake clock.
func (r *Rig) Verifier() *verify.Verifier {
	return &verify.Verifier{Source: r.Src, Target: r.Dst, Writer: r.Dst, Writes: r.Writes, Transformer: r.Tr, DeadLetters: r.Dead, State: r.Store, Clock: r.Clock}
}

// CopyAll runs the migration until every range caught up.
func (r *Rig) CopyAll(t testing.TB) {
	t.Helper()
	if _, err := r.Runner().Run(context.Background(), pipeline.RunConfig{UntilCaughtUp: true, PollInterval: time.Millisecond}); err != nil {
		t.Fatalf("run: %v", err)
	}
}

// DeadCount is the number of items dead now.
func (r *Rig) DeadCount(t testing.TB) int {
	t.Helper()
	n, err := r.Dead.Count()
	if err != nil {
		t.Fatal(err)
	}
	return n
}
