package pipeline

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/rekey-dev/rekey/migrate"
)

// raceContainers is an account where another worker creates the target
// between this worker's read and its create.
type raceContainers struct {
	def      *migrate.Definition
	other    migrate.Definition
	creates  int
	settings migrate.ContainerSettings
}

func (c *raceContainers) ContainerDefinition(context.Context, string, string) (migrate.Definition, error) {
	if c.def == nil {
		return migrate.Definition{}, &migrate.RequestError{Status: http.StatusNotFound}
	}
	return *c.def, nil
}

func (c *raceContainers) CreateContainer(ctx context.Context, db, coll string, def migrate.Definition, manual, auto int) error {
	return c.CreateContainerWith(ctx, db, coll, def, nil, manual, auto)
}

func (c *raceContainers) ContainerSettings(context.Context, string, string) (migrate.ContainerSettings, error) {
	return nil, nil
}

func (c *raceContainers) CreateContainerWith(_ context.Context, _, _ string, _ migrate.Definition, settings migrate.ContainerSettings, _, _ int) error {
	c.creates++
	c.settings = settings
	c.def = &c.other // the other worker was first
	return &migrate.RequestError{Status: http.StatusConflict}
}

// Workers that start together (a Job's pods with --create-target) race to
// create the target: the one that loses checks the winner's definition
// instead of failing.
func TestEnsureTargetCreatedByAnotherWorker(t *testing.T) {
	want := migrate.TargetDefinition([]string{"/tenantId"})
	ref := migrate.ContainerRef{Database: "shop", Container: "target"}
	c := &raceContainers{other: want}
	settings := func(context.Context) (migrate.ContainerSettings, error) {
		return migrate.ContainerSettings{"defaultTtl": []byte("60")}, nil
	}
	created, err := EnsureTarget(context.Background(), c, ref, want, TargetOptions{Create: true, Settings: settings})
	if err != nil || created || c.creates != 1 || string(c.settings["defaultTtl"]) != "60" {
		t.Fatalf("created %v, err %v, creates %d, settings %v", created, err, c.creates, c.settings)
	}
	c = &raceContainers{other: migrate.TargetDefinition([]string{"/other"})}
	if _, err := EnsureTarget(context.Background(), c, ref, want, TargetOptions{Create: true}); err == nil || !strings.Contains(err.Error(), "/other") {
		t.Fatalf("a target another worker created with another key: %v", err)
	}
	c = &raceContainers{other: want}
	refused := errors.New("--unique-keys needed")
	if _, err := EnsureTarget(context.Background(), c, ref, want, TargetOptions{Create: true, Settings: func(context.Context) (migrate.ContainerSettings, error) { return nil, refused }}); !errors.Is(err, refused) || c.creates != 0 {
		t.Fatalf("settings refused: %v, %d creates", err, c.creates)
	}
}
