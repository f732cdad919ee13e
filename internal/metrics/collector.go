package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rekey-dev/rekey/lease"
	"github.com/rekey-dev/rekey/migrate/pacing"
	"github.com/rekey-dev/rekey/migrate/pipeline"
	"github.com/rekey-dev/rekey/migrate/status"
)

// Sources are what a Collector reads at each scrape. Stats is required;
// a nil func leaves its metrics out.
type Sources struct {
	// Stats are the run's live counters (this process's).
	Stats *pipeline.Stats
	// Partitions are the flow control's controllers, one per target
	// partition (pacing.Flow.Partitions).
	Partitions func() []pacing.PartitionState
	// Status is the migration's latest status as re-read from its state
	// (status.Poller.Latest): phase, ranges, lag.
	Status func() (rep status.Report, at time.Time, ok bool)
	// LeaseRU is the request units spent on the state's lease container
	// (cosmos.Client.LeaseRU); nil with a state directory.
	LeaseRU func() float64
	// Written, when set, counts the items written by outcome in place of
	// Stats: a rollback's Applier counts its own (created, updated,
	// unchanged, deleted).
	Written func() map[string]int64
	// SourceItems is the source's item count when the command started, 0
	// when unknown.
	SourceItems int64
	// Now is the clock lag is computed with; time.Now when nil.
	Now func() time.Time
}

// Phases lists every phase rekey_phase reports, so that the series of the
// phases not current read 0 rather than vanish.
var Phases = []string{
	"starting", status.PhaseNotStarted, status.PhaseCopying, status.PhaseSyncing, status.PhaseCuttingOver,
	status.PhaseCutOver, status.PhaseRollingBack, status.PhaseRolledBack,
}

// Collector is a prometheus.Collector of a worker's metrics.
type Collector struct {
	src Sources
}

// NewCollector returns a Collector reading src.
func NewCollector(src Sources) *Collector { return &Collector{src: src} }

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("rekey_"+name, help, labels, nil)
}

// The metrics; docs/metrics.md describes each.
var (
	descRead         = desc("items_read_total", "Changes read from the source's change feed by this process.")
	descWritten      = desc("items_written_total", "Items this process made current in the target, by outcome: created, updated (replaced with a newer version), unchanged (already there as read), deleted (copies of deleted source items and old copies of key changes, from the all-versions feed; a rollback's deletes).", "outcome")
	descDeadLettered = desc("items_dead_lettered_total", "Items this process sent to the dead-letter store.")
	descRU           = desc("request_units_total", "Request units spent by this process, by side: source (change-feed reads), target (writes and conflict checks), leases (the state's lease container).", "side")
	descThrottled    = desc("throttled_total", "Requests answered 429 (too many requests), by side: source or target.", "side")
	descRetries      = desc("retries_total", "Transient failures retried (not 429s).")
	descRequests     = desc("target_requests_total", "Requests sent to the target, every attempt counted (each operation of a bulk request answered on its own counts as one).")
	descBulk         = desc("target_bulk_requests_total", "Bulk requests sent to the target, every attempt counted.")
	descInFlightReq  = desc("in_flight_requests", "Requests to the target sent and not yet answered.")
	descInFlightB    = desc("in_flight_bytes", "Bytes of change-feed pages read and not yet checkpointed.")
	descPace         = desc("partition_pace_ru_per_second", "The flow control's pace for one target partition, in RU/s (0 in windowed mode).", "partition")
	descPartInFlight = desc("partition_in_flight_requests", "Requests in flight to one target partition.", "partition")
	descPartLimit    = desc("partition_in_flight_limit", "The flow control's bound on requests in flight to one target partition.", "partition")
	descPartThrottle = desc("partition_throttled_total", "429s one target partition answered, as its controller counted them (resets when a split or merge rebuilds the partition map).", "partition")
	descPhase        = desc("phase", "1 for the migration's current phase, 0 for the others.", "phase")
	descSourceItems  = desc("source_items", "The source's item count when the command started (approximate while the source is written to).")
	descItems        = desc("migration_items", "Items copied, as the leases of every worker checkpoint them.")
	descRangeItems   = desc("range_items", "Items one feed range has copied, as its lease checkpoints them.", "range")
	descRangeCaught  = desc("range_caught_up", "1 once a feed range has reached the end of its change feed, else 0.", "range")
	descLagItems     = desc("range_lag_items", "Changes waiting in the source after a caught-up range's checkpoint, probed in the source (capped at 10,000).", "range")
	descLagSeconds   = desc("range_lag_seconds", "Age of the oldest change a range has not copied: probed for a caught-up range, the age of the newest change copied for one still copying.", "range")
	descRangeFeed    = desc("range_all_versions", "1 when a feed range follows the source's all-versions-and-deletes change feed, 0 while it follows the latest-version feed.", "range")
	descFellBack     = desc("range_fell_back", "1 when a feed range fell back from the all-versions feed (its position left the retention window, or the source stopped keeping the feed): the deletes and key changes it missed are left to verify --fix and cutover.", "range")
	descStale        = desc("range_owner_stale", "1 when a range's owner has not renewed its lease within the lease TTL (the worker is most likely gone), else 0.", "range")
	descStatusAge    = desc("state_read_age_seconds", "Seconds since the migration's state was last read for the range and phase metrics.")
)

// Describe sends every metric's description.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		descRead, descWritten, descDeadLettered, descRU, descThrottled, descRetries, descRequests, descBulk,
		descInFlightReq, descInFlightB, descPace, descPartInFlight, descPartLimit, descPartThrottle,
		descPhase, descSourceItems, descItems, descRangeItems, descRangeCaught, descLagItems,
		descLagSeconds, descRangeFeed, descFellBack, descStale, descStatusAge,
	} {
		ch <- d
	}
}

// Collect reads the sources and sends the metrics.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	s := c.src.Stats.Snapshot()
	counter(descRead, float64(s.Read))
	written := map[string]int64{"created": s.Created, "updated": s.Updated, "unchanged": s.Unchanged, "deleted": s.Deleted}
	if c.src.Written != nil {
		written = c.src.Written()
	}
	for outcome, n := range written {
		counter(descWritten, float64(n), outcome)
	}
	counter(descDeadLettered, float64(s.DeadLettered))
	counter(descRU, s.SourceRU, "source")
	counter(descRU, s.TargetRU(), "target")
	if c.src.LeaseRU != nil {
		counter(descRU, c.src.LeaseRU(), "leases")
	}
	counter(descThrottled, float64(s.WritesThrottled), "target")
	counter(descThrottled, float64(max(s.Throttled-s.WritesThrottled, 0)), "source")
	counter(descRetries, float64(s.Retries))
	counter(descRequests, float64(s.WriteRequests))
	counter(descBulk, float64(s.BulkRequests))
	gauge(descInFlightReq, float64(s.InFlightRequests))
	gauge(descInFlightB, float64(s.InFlightBytes))
	if c.src.Partitions != nil {
		for _, p := range c.src.Partitions() {
			name := PartitionName(p.Min, p.Max)
			gauge(descPace, p.PaceRU, name)
			gauge(descPartInFlight, float64(p.InFlight), name)
			gauge(descPartLimit, float64(p.InFlightLimit), name)
			counter(descPartThrottle, float64(p.Throttled), name)
		}
	}
	if c.src.SourceItems > 0 {
		gauge(descSourceItems, float64(c.src.SourceItems))
	}
	c.collectStatus(gauge)
}

// collectStatus sends the metrics of the migration's state: its phase and
// its ranges.
func (c *Collector) collectStatus(gauge func(*prometheus.Desc, float64, ...string)) {
	phase := "starting"
	var rep status.Report
	var at time.Time
	ok := false
	if c.src.Status != nil {
		rep, at, ok = c.src.Status()
	}
	if ok {
		phase = rep.Phase
	}
	for _, p := range Phases {
		gauge(descPhase, boolValue(p == phase), p)
	}
	if !ok {
		return
	}
	now := time.Now()
	if c.src.Now != nil {
		now = c.src.Now()
	}
	gauge(descStatusAge, now.Sub(at).Seconds())
	gauge(descItems, float64(rep.Items))
	for _, r := range rep.Ranges {
		gauge(descRangeItems, float64(r.Items), r.ID)
		gauge(descRangeCaught, boolValue(!r.CaughtUpAt.IsZero()), r.ID)
		gauge(descRangeFeed, boolValue(r.Mode == lease.ModeAllVersions), r.ID)
		gauge(descFellBack, boolValue(r.Fallback != ""), r.ID)
		gauge(descStale, boolValue(r.Stale), r.ID)
		if r.LagItems != nil {
			gauge(descLagItems, float64(*r.LagItems), r.ID)
		}
		switch {
		case r.LagSeconds != nil:
			gauge(descLagSeconds, *r.LagSeconds, r.ID)
		case r.CaughtUpAt.IsZero() && !r.LastChangeAt.IsZero():
			gauge(descLagSeconds, max(at.Sub(r.LastChangeAt).Seconds(), 0), r.ID)
		}
	}
}

// PartitionName labels a target partition by its EPK range, [min,max).
func PartitionName(lo, hi string) string { return "[" + lo + "," + hi + ")" }

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
