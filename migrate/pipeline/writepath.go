package pipeline

import (
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/rekey-dev/rekey/migrate"
	"github.com/rekey-dev/rekey/migrate/pacing"
	"github.com/rekey-dev/rekey/transform"
)

// WriteMode is how the writer sends its writes.
type WriteMode int

const (
	// WriteBulk sends a page's writes in bulk requests, grouped by the
	// target's physical partition, when the target takes them
	// (migrate.BulkTarget), and as WriteItems when it does not. The
	// default.
	WriteBulk WriteMode = iota
	// WriteItems sends one request per item, and the items of one target
	// key as transactional batches: rekey run --bulk=false.
	WriteItems
)

// WritePathConfig is how a command writes to the target. Zero values take
// the defaults: bulk requests, pacing's (the paced per-partition
// controller, no bound on writes in flight but each partition's own, no
// RU caps), migrate.DefaultTransientTries, the real clock, no logging.
type WritePathConfig struct {
	// Mode is how writes travel: bulk requests or one request per item.
	Mode WriteMode
	// Flow is the flow control: the bound on writes in flight, the RU caps
	// of the target and the source, the controller, and the target's
	// provisioned RU/s when known.
	Flow pacing.Config
	// TransientTries is how often a transient failure (408, 449, 503, a
	// dropped connection) is tried before the command fails.
	TransientTries int
	// Clock times retries and pacing.
	Clock migrate.Clock
	// Log receives the retry warnings and the flow control's changes.
	Log *slog.Logger
}

// Validate names the first invalid field.
func (c WritePathConfig) Validate() error {
	if c.TransientTries < 0 {
		return fmt.Errorf("transient tries %d: must not be negative", c.TransientTries)
	}
	if c.Mode != WriteBulk && c.Mode != WriteItems {
		return fmt.Errorf("write mode %d: want bulk or items", c.Mode)
	}
	return c.Flow.Validate()
}

// WritePath is how every command that writes to the target writes: rekey
// run, cutover (its drains and its verify --fix), deadletter replay, verify
// --fix and the benchmark. It holds the target and its flow control (the
// per-partition limiter, the RU caps of both sides and the Controls that
// change them, see pacing.Flow), the one retry policy and the command's
// logger, so every write gets the same pacing, retries and warnings. A
// command builds one with NewWritePath and hands it to the Runner, the
// Verifier or both; it is safe for concurrent use.
type WritePath struct {
	target migrate.Target
	bulk   migrate.BulkTarget // target, when writes go in bulk requests
	flow   *pacing.Flow
	tries  int
	clock  migrate.Clock
	log    *slog.Logger
}

// NewWritePath builds the write path to target from cfg. It does not
// contact the service (the flow control reads the target's partitions on
// the first write) and keeps nothing of cfg but its values.
func NewWritePath(target migrate.Target, cfg WritePathConfig) *WritePath {
	p := &WritePath{target: target, tries: cfg.TransientTries, clock: cfg.Clock, log: cfg.Log}
	if bt, ok := target.(migrate.BulkTarget); ok && cfg.Mode == WriteBulk {
		p.bulk = bt
	}
	if p.tries <= 0 {
		p.tries = migrate.DefaultTransientTries
	}
	if p.clock == nil {
		p.clock = migrate.SystemClock{}
	}
	if p.log == nil {
		p.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	p.flow = pacing.New(target, cfg.Flow, p.clock, p.log)
	return p
}

// Flow is the write path's flow control: its Controls to watch a control
// file with, its Describe for the progress line.
func (p *WritePath) Flow() *pacing.Flow { return p.flow }

// Bulk reports whether the write path sends bulk requests.
func (p *WritePath) Bulk() bool { return p.bulk != nil }

// NewWriter returns a writer on the write path for one command: items
// transformed by tr, dead letters recorded in dead, key defaults recorded
// by defaults before the items that use them are written (nil: none). It
// counts into stats of its own. verify --fix writes through it.
func (p *WritePath) NewWriter(tr *transform.Transformer, dead migrate.DeadLetterStore, defaults *migrate.DefaultUses) *Writer {
	return p.writer(tr, dead, defaults, &Stats{})
}

// NewWriterCounting is NewWriter counting its requests, 429s and retries
// into stats: a Runner's, whose Applier writes with it (a rollback), so
// that the command's metrics see them.
func (p *WritePath) NewWriterCounting(tr *transform.Transformer, dead migrate.DeadLetterStore, defaults *migrate.DefaultUses, stats *Stats) *Writer {
	return p.writer(tr, dead, defaults, stats)
}

// writer returns a writer counting into stats.
func (p *WritePath) writer(tr *transform.Transformer, dead migrate.DeadLetterStore, defaults *migrate.DefaultUses, stats *Stats) *Writer {
	retry := p.retrier(stats)
	// The writer counts its 429s itself, each throttled operation of a
	// bulk request as one (pageWriter.attempt); the policy's wait may
	// cover several.
	retry.OnThrottle = nil
	w := &Writer{dst: p.target, bulk: p.bulk, tr: tr, retry: retry, limit: p.flow.Limiter, ruCap: p.flow.TargetCap,
		dead: dead, stats: stats, defaults: defaults}
	if w.bulk != nil {
		w.queue = newBulkQueue(w)
	}
	return w
}

// retrier is the retry policy counting into stats: every 429 and every
// transient retry, which it also logs.
func (p *WritePath) retrier(stats *Stats) *migrate.Retrier {
	return &migrate.Retrier{
		Clock:      p.clock,
		Tries:      p.tries,
		OnThrottle: func(time.Duration) { stats.throttled.Add(1) },
		OnRetry: func(err error) {
			stats.retries.Add(1)
			p.log.Warn("retrying after a transient failure", "err", err)
		},
	}
}
