package cosmos

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rekey-dev/rekey/internal/emulator"
	"github.com/rekey-dev/rekey/internal/epk"
	"github.com/rekey-dev/rekey/migrate"
	"github.com/rekey-dev/rekey/migrate/migratetest"
)

// The migratetest contract suites against the adapter on the emulator: the
// same checks the in-memory fakes pass, so that tests built on the fakes
// (and the simulator) stand on the service's behaviour.
func TestContainerKeepsTheTargetContract(t *testing.T) {
	migratetest.RunTarget(t, emulatorFixtures(t))
}

func TestContainerKeepsTheSourceContract(t *testing.T) {
	migratetest.RunSource(t, emulatorFixtures(t))
}

func TestContainerKeepsTheVersionsContract(t *testing.T) {
	migratetest.RunVersions(t, emulatorVersionsFixtures(t))
}

// emulatorVersionsFixtures opens each fixture as a new container of one
// emulator on a manual clock: two partitions, the default time to live of
// migratetest.VersionsTTL, and a change feed policy of the retention asked
// (whole minutes; none for 0).
func emulatorVersionsFixtures(t *testing.T) migratetest.OpenVersions {
	clk := &manualClock{t: time.Now()}
	e := newEnv(t, func(o *emulator.ServerOptions) { o.Clock = clk.Now })
	var n atomic.Int64
	return func(t *testing.T, retention time.Duration) migratetest.Fixture {
		id := fmt.Sprintf("versions%d", n.Add(1))
		extra := map[string]any{"defaultTtl": int(migratetest.VersionsTTL / time.Second)}
		if retention == 0 {
			extra["changeFeedPolicy"] = nil
		}
		c := e.allVersionsContainer(t, id, 12000, int(retention/time.Minute), extra)
		return migratetest.Fixture{
			Store: c,
			Split: func(t *testing.T, at string) { splitAt(t, e, id, at) },
			Now:   clk.Now,
			Sleep: func(_ *testing.T, d time.Duration) { clk.Advance(d) },
		}
	}
}

// emulatorFixtures opens each fixture as a new container of one emulator,
// provisioned for the partitions asked (6,000 RU/s each).
func emulatorFixtures(t *testing.T) migratetest.Open {
	e := newEnv(t)
	var n atomic.Int64
	return func(t *testing.T, def migrate.Definition, partitions int) migratetest.Fixture {
		id := fmt.Sprintf("contract%d", n.Add(1))
		if err := e.client.CreateContainer(tctx(t), testDB, id, def, 6000*partitions, 0); err != nil {
			t.Fatalf("create container %s: %v", id, err)
		}
		c := e.client.Container(testDB, id)
		return migratetest.Fixture{
			Store: c,
			Split: func(t *testing.T, at string) { splitAt(t, e, id, at) },
			Now:   time.Now,
			Sleep: func(_ *testing.T, d time.Duration) { time.Sleep(d) },
		}
	}
}

// splitAt splits the emulator partition of container id that holds the EPK.
func splitAt(t *testing.T, e *env, id, at string) {
	t.Helper()
	m, err := e.srv.ContainerMetrics(testDB, id)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range m.Partitions {
		if (epk.Range{Min: p.MinInclusive, Max: p.MaxExclusive}).Contains(at) {
			if err := e.srv.SplitRange(testDB, id, p.ID); err != nil {
				t.Fatal(err)
			}
			return
		}
	}
	t.Fatalf("no partition of %s holds EPK %q: %+v", id, at, m.Partitions)
}
