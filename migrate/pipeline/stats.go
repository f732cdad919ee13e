package pipeline

import (
	"encoding/json"
	"fmt"
	"math"
	"sync/atomic"
	"time"
)

// Stats are a run's live counters, safe for concurrent use. Progress output
// reads them with Snapshot.
type Stats struct {
	// started is when the run began, set once by the Runner while progress
	// output may already read Snapshot.
	started atomic.Pointer[time.Time]

	read         atomic.Int64 // changes read from the source
	created      atomic.Int64 // items created in the target
	updated      atomic.Int64 // items replaced with a newer version
	unchanged    atomic.Int64 // items already in the target as read (replays)
	deadLettered atomic.Int64 // items sent to the dead-letter file
	collisions   atomic.Int64 // of which (id, key) collisions
	throttled    atomic.Int64 // 429 answers, source and target
	retries      atomic.Int64 // transient failures retried
	batches      atomic.Int64 // transactional batches committed
	deleted      atomic.Int64 // copies deleted: deletions and key changes (all-versions mode)
	ttlSkipped   atomic.Int64 // expiries by time to live left to the target's (--ttl-expiries skip)
	lookups      atomic.Int64 // searches for an item's copies (changes without a previous image)
	bulkRequests atomic.Int64 // bulk requests sent, every attempt

	writeRequests   atomic.Int64 // requests to the target, every attempt
	writesThrottled atomic.Int64 // of which answered 429

	inFlightRequests atomic.Int64 // requests to the target sent and not yet answered
	inFlightBytes    atomic.Int64 // bytes of pages read and not yet checkpointed

	sourceRU  atomicFloat // change-feed reads
	createRU  atomicFloat // creates and committed batches
	checkRU   atomicFloat // conflict checks: failed creates and reads of the existing item
	replaceRU atomicFloat // replaces
	deleteRU  atomicFloat // deletes of copies and the reads that examine them
	lookupRU  atomicFloat // searches for an item's copies
	appliedRU atomicFloat // pages written by a Runner's Applier (a rollback)
}

// atomicFloat is a float64 updated atomically.
type atomicFloat struct{ bits atomic.Uint64 }

func (f *atomicFloat) add(v float64) {
	for {
		old := f.bits.Load()
		if f.bits.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+v)) {
			return
		}
	}
}

func (f *atomicFloat) load() float64 { return math.Float64frombits(f.bits.Load()) }

// StatsSnapshot is a copy of the counters at one moment.
type StatsSnapshot struct {
	Elapsed      time.Duration `json:"elapsed"`
	Read         int64         `json:"read"`
	Created      int64         `json:"created"`
	Updated      int64         `json:"updated"`
	Unchanged    int64         `json:"unchanged"`
	DeadLettered int64         `json:"deadLettered"`
	Collisions   int64         `json:"collisions"`
	Throttled    int64         `json:"throttled"`
	Retries      int64         `json:"retries"`
	Batches      int64         `json:"batches"`
	BulkRequests int64         `json:"bulkRequests"`
	SourceRU     float64       `json:"sourceRU"`
	CreateRU     float64       `json:"createRU"`
	CheckRU      float64       `json:"checkRU"`
	ReplaceRU    float64       `json:"replaceRU"`
	// Deleted, TTLSkipped and Lookups count the all-versions feed's
	// deletions: copies deleted (deleted source items and the old copies
	// of key changes), expiries left to the target's time to live, and
	// searches for copies; DeleteRU and LookupRU what they cost.
	Deleted    int64   `json:"deleted"`
	TTLSkipped int64   `json:"ttlSkipped"`
	Lookups    int64   `json:"lookups"`
	DeleteRU   float64 `json:"deleteRU"`
	LookupRU   float64 `json:"lookupRU"`
	// AppliedRU is what a Runner's Applier (a rollback) spent writing.
	AppliedRU float64 `json:"appliedRU,omitempty"`

	// WriteRequests counts every request to the target (creates, batches,
	// conflict reads, replaces), retries included, and each operation of a
	// bulk request answered on its own as one; WritesThrottled those
	// answered 429 (the service counts a bulk request's operations so
	// too).
	WriteRequests   int64 `json:"writeRequests"`
	WritesThrottled int64 `json:"writesThrottled"`

	// InFlightRequests are the requests to the target sent and not yet
	// answered now; InFlightBytes the bytes of change-feed pages read and
	// not yet checkpointed (bounded by RunConfig.MaxInFlightMB).
	InFlightRequests int64 `json:"inFlightRequests"`
	InFlightBytes    int64 `json:"inFlightBytes"`
}

// MarshalJSON writes Elapsed as a duration string ("2.1s"), as every
// duration in rekey's JSON output is.
func (s StatsSnapshot) MarshalJSON() ([]byte, error) {
	type plain StatsSnapshot
	return json.Marshal(struct {
		plain
		Elapsed string `json:"elapsed"`
	}{plain(s), s.Elapsed.Round(time.Millisecond).String()})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (s *StatsSnapshot) UnmarshalJSON(b []byte) error {
	type plain StatsSnapshot
	var v struct {
		*plain
		Elapsed string `json:"elapsed"`
	}
	v.plain = (*plain)(s)
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	if v.Elapsed == "" {
		s.Elapsed = 0
		return nil
	}
	d, err := time.ParseDuration(v.Elapsed)
	if err != nil {
		return fmt.Errorf("stats elapsed %q: %w", v.Elapsed, err)
	}
	s.Elapsed = d
	return nil
}

// Written is the items now in the target as the source has them.
func (s StatsSnapshot) Written() int64 { return s.Created + s.Updated + s.Unchanged }

// TargetRU is every request unit spent on the target.
func (s StatsSnapshot) TargetRU() float64 {
	return s.CreateRU + s.CheckRU + s.ReplaceRU + s.DeleteRU + s.LookupRU + s.AppliedRU
}

// ThrottledShare is the share of requests to the target answered 429: the
// figure the service's guidance keeps within 1-5%.
func (s StatsSnapshot) ThrottledShare() float64 {
	if s.WriteRequests == 0 {
		return 0
	}
	return float64(s.WritesThrottled) / float64(s.WriteRequests)
}

// start records the start of the run, unless one is recorded already.
func (s *Stats) start(now time.Time) { s.started.CompareAndSwap(nil, &now) }

// elapsed is the time since the start of the run, zero before it.
func (s *Stats) elapsed() time.Duration {
	if t := s.started.Load(); t != nil {
		return time.Since(*t)
	}
	return 0
}

// Snapshot copies the counters.
func (s *Stats) Snapshot() StatsSnapshot {
	return StatsSnapshot{
		Elapsed:      s.elapsed(),
		Read:         s.read.Load(),
		Created:      s.created.Load(),
		Updated:      s.updated.Load(),
		Unchanged:    s.unchanged.Load(),
		DeadLettered: s.deadLettered.Load(),
		Collisions:   s.collisions.Load(),
		Throttled:    s.throttled.Load(),
		Retries:      s.retries.Load(),
		Batches:      s.batches.Load(),
		BulkRequests: s.bulkRequests.Load(),

		WriteRequests:    s.writeRequests.Load(),
		InFlightRequests: s.inFlightRequests.Load(),
		InFlightBytes:    s.inFlightBytes.Load(),
		WritesThrottled:  s.writesThrottled.Load(),
		SourceRU:         s.sourceRU.load(),
		CreateRU:         s.createRU.load(),
		CheckRU:          s.checkRU.load(),
		ReplaceRU:        s.replaceRU.load(),
		Deleted:          s.deleted.Load(),
		TTLSkipped:       s.ttlSkipped.Load(),
		Lookups:          s.lookups.Load(),
		DeleteRU:         s.deleteRU.load(),
		LookupRU:         s.lookupRU.load(),
	}
}
