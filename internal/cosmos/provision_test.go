package cosmos

import (
	"errors"
	"reflect"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/data/azcosmos"

	"github.com/rekey-dev/rekey/migrate"
)

func TestCreateContainer(t *testing.T) {
	e := newEnv(t)
	ctx := tctx(t)
	def := migrate.Definition{Paths: []string{"/tenant", "/month"}}

	// The database is created with the container.
	if err := e.client.CreateContainer(ctx, "newdb", "target", def, 0, 4000); err != nil {
		t.Fatalf("create in a new database: %v", err)
	}
	got, err := e.client.ContainerDefinition(ctx, "newdb", "target")
	want := migrate.Definition{Paths: []string{"/tenant", "/month"}, Kind: "MultiHash", Version: 2}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("definition = %+v, %v; want %+v", got, err, want)
	}
	tp, err := e.client.ReadThroughput(ctx, "newdb", "target")
	if err != nil || tp != (Throughput{AutoscaleMax: 4000}) {
		t.Fatalf("throughput = %+v, %v; want autoscale 4000", tp, err)
	}

	// A second create in the existing database, manual throughput.
	if err := e.client.CreateContainer(ctx, "newdb", "other", migrate.Definition{Paths: []string{"/pk"}}, 800, 0); err != nil {
		t.Fatal(err)
	}
	if tp, err := e.client.ReadThroughput(ctx, "newdb", "other"); err != nil || tp != (Throughput{Manual: 800}) {
		t.Fatalf("throughput = %+v, %v; want manual 800", tp, err)
	}

	// Re-running is safe: an existing container is a conflict, untouched.
	err = e.client.CreateContainer(ctx, "newdb", "target", migrate.Definition{Paths: []string{"/other"}}, 400, 0)
	if !errors.Is(err, migrate.ErrConflict) {
		t.Fatalf("create of an existing container = %v, want ErrConflict", err)
	}
	if got, _ := e.client.ContainerDefinition(ctx, "newdb", "target"); !reflect.DeepEqual(got, want) {
		t.Fatalf("the existing container changed: %+v", got)
	}

	for name, call := range map[string]func() error{
		"both throughputs": func() error {
			return e.client.CreateContainer(ctx, "newdb", "x", migrate.Definition{Paths: []string{"/pk"}}, 400, 4000)
		},
		"no paths": func() error { return e.client.CreateContainer(ctx, "newdb", "x", migrate.Definition{}, 400, 0) },
		"bad path": func() error {
			return e.client.CreateContainer(ctx, "newdb", "x", migrate.Definition{Paths: []string{"pk"}}, 400, 0)
		},
		"negative": func() error {
			return e.client.CreateContainer(ctx, "newdb", "x", migrate.Definition{Paths: []string{"/pk"}}, -1, 0)
		},
	} {
		if err := call(); err == nil {
			t.Errorf("%s: created", name)
		}
	}

	if _, err := e.client.ContainerDefinition(ctx, "newdb", "absent"); !errors.Is(err, migrate.ErrNotFound) {
		t.Errorf("definition of a missing container = %v, want ErrNotFound", err)
	}
	if _, err := e.client.ContainerDefinition(ctx, "absentdb", "absent"); !errors.Is(err, migrate.ErrNotFound) {
		t.Errorf("definition in a missing database = %v, want ErrNotFound", err)
	}
	if _, err := e.client.ReadThroughput(ctx, "newdb", "absent"); !errors.Is(err, migrate.ErrNotFound) {
		t.Errorf("throughput of a missing container = %v, want ErrNotFound", err)
	}
}

func TestReadThroughputOfASharedDatabase(t *testing.T) {
	e := newEnv(t)
	ctx := tctx(t)
	shared := azcosmos.NewManualThroughputProperties(1000)
	if _, err := e.client.az.CreateDatabase(ctx, azcosmos.DatabaseProperties{ID: "shared"}, &azcosmos.CreateDatabaseOptions{ThroughputProperties: &shared}); err != nil {
		t.Fatal(err)
	}
	// No throughput of its own: the container shares its database's.
	if err := e.client.CreateContainer(ctx, "shared", "c", migrate.Definition{Paths: []string{"/pk"}}, 0, 0); err != nil {
		t.Fatal(err)
	}
	tp, err := e.client.ReadThroughput(ctx, "shared", "c")
	if err != nil || tp != (Throughput{Manual: 1000, Shared: true}) || tp.None() {
		t.Fatalf("throughput = %+v, %v; want the database's 1000 RU/s, shared", tp, err)
	}
}
