package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/rekey-dev/rekey/lease"
	"github.com/rekey-dev/rekey/migrate/pacing"
	"github.com/rekey-dev/rekey/migrate/pipeline"
	"github.com/rekey-dev/rekey/migrate/status"
)

// The state's metrics: the phase as a state set, a caught-up range's
// probed lag, a copying range's lag from its newest change copied, the
// feed a range follows and its fallback, a stale owner; the partitions' pace; every metric passes the registry's checks.
func TestCollectorReadsTheState(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	lag, lagSec := int64(7), 3.0
	rep := status.Report{Phase: status.PhaseCopying, Items: 120, Ranges: []status.Range{
		{ID: "r0", Items: 100, CaughtUpAt: now.Add(-time.Minute), LagItems: &lag, LagSeconds: &lagSec, Mode: lease.ModeAllVersions},
		{ID: "r1", Items: 20, LastChangeAt: now.Add(-90 * time.Second), Owner: "pod-1", Stale: true, Mode: lease.ModeLatest,
			Fallback: "its position left the retention window", FallbackAt: now.Add(-time.Hour)},
	}}
	c := NewCollector(Sources{
		Stats:  &pipeline.Stats{},
		Status: func() (status.Report, time.Time, bool) { return rep, now, true },
		Partitions: func() []pacing.PartitionState {
			return []pacing.PartitionState{{Min: "", Max: "FF", PaceRU: 4000, InFlightLimit: 8}}
		},
		LeaseRU:     func() float64 { return 12.5 },
		SourceItems: 500,
		Now:         func() time.Time { return now.Add(2 * time.Second) },
	})
	want := `
# HELP rekey_phase 1 for the migration's current phase, 0 for the others.
# TYPE rekey_phase gauge
rekey_phase{phase="copying"} 1
rekey_phase{phase="cut over"} 0
rekey_phase{phase="cutting over"} 0
rekey_phase{phase="not started"} 0
rekey_phase{phase="rolled back"} 0
rekey_phase{phase="rolling back"} 0
rekey_phase{phase="starting"} 0
rekey_phase{phase="syncing"} 0
# HELP rekey_range_lag_items Changes waiting in the source after a caught-up range's checkpoint, probed in the source (capped at 10,000).
# TYPE rekey_range_lag_items gauge
rekey_range_lag_items{range="r0"} 7
# HELP rekey_range_lag_seconds Age of the oldest change a range has not copied: probed for a caught-up range, the age of the newest change copied for one still copying.
# TYPE rekey_range_lag_seconds gauge
rekey_range_lag_seconds{range="r0"} 3
rekey_range_lag_seconds{range="r1"} 90
# HELP rekey_range_all_versions 1 when a feed range follows the source's all-versions-and-deletes change feed, 0 while it follows the latest-version feed.
# TYPE rekey_range_all_versions gauge
rekey_range_all_versions{range="r0"} 1
rekey_range_all_versions{range="r1"} 0
# HELP rekey_range_fell_back 1 when a feed range fell back from the all-versions feed (its position left the retention window, or the source stopped keeping the feed): the deletes and key changes it missed are left to verify --fix and cutover.
# TYPE rekey_range_fell_back gauge
rekey_range_fell_back{range="r0"} 0
rekey_range_fell_back{range="r1"} 1
# HELP rekey_range_owner_stale 1 when a range's owner has not renewed its lease within the lease TTL (the worker is most likely gone), else 0.
# TYPE rekey_range_owner_stale gauge
rekey_range_owner_stale{range="r0"} 0
rekey_range_owner_stale{range="r1"} 1
# HELP rekey_partition_pace_ru_per_second The flow control's pace for one target partition, in RU/s (0 in windowed mode).
# TYPE rekey_partition_pace_ru_per_second gauge
rekey_partition_pace_ru_per_second{partition="[,FF)"} 4000
# HELP rekey_state_read_age_seconds Seconds since the migration's state was last read for the range and phase metrics.
# TYPE rekey_state_read_age_seconds gauge
rekey_state_read_age_seconds 2
`
	names := []string{"rekey_phase", "rekey_range_lag_items", "rekey_range_lag_seconds", "rekey_range_all_versions", "rekey_range_fell_back", "rekey_range_owner_stale", "rekey_partition_pace_ru_per_second", "rekey_state_read_age_seconds"}
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
	if problems, err := testutil.CollectAndLint(c); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
	if n := testutil.CollectAndCount(NewRegistry(c)); n == 0 {
		t.Error("the registry gathers nothing")
	}
}

// Before the state is first read the phase is "starting" and no range
// metric is made up.
func TestCollectorBeforeTheStateIsRead(t *testing.T) {
	c := NewCollector(Sources{Stats: &pipeline.Stats{}, Status: func() (status.Report, time.Time, bool) { return status.Report{}, time.Time{}, false }})
	want := `
# HELP rekey_phase 1 for the migration's current phase, 0 for the others.
# TYPE rekey_phase gauge
rekey_phase{phase="copying"} 0
rekey_phase{phase="cut over"} 0
rekey_phase{phase="cutting over"} 0
rekey_phase{phase="not started"} 0
rekey_phase{phase="rolled back"} 0
rekey_phase{phase="rolling back"} 0
rekey_phase{phase="starting"} 1
rekey_phase{phase="syncing"} 0
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "rekey_phase"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(c, "rekey_range_items", "rekey_migration_items", "rekey_state_read_age_seconds"); n != 0 {
		t.Errorf("%d state metrics before the state was read", n)
	}
}
