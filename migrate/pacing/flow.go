package pacing

import (
	"fmt"
	"io"
	"log/slog"

	"github.com/rekey-dev/rekey/migrate"
)

// Config is how a command's requests are paced: the bound on writes in
// flight, the RU caps of both sides and the controller. Zero values take
// the defaults: no bound on the writes in flight but each partition's own,
// no caps, ControllerPaced.
type Config struct {
	// MaxConcurrency bounds the writes in flight across all partitions of
	// the target (0: no bound; each partition's in-flight limit follows its
	// pace and the latency). ControllerFixed needs a bound and takes
	// FixedConcurrency when there is none.
	MaxConcurrency int
	// MaxRU caps the RU/s spent on the target (0: no cap), MaxSourceRU
	// those spent reading the source's change feed; both are accounted from
	// the actual request charges.
	MaxRU       float64
	MaxSourceRU float64
	Controller  ControllerMode
	// ProvisionedRU is the target's provisioned RU/s (the autoscale
	// maximum) when known: each partition then starts at its share of it
	// instead of slow-starting (AdaptiveConfig.ProvisionedRU).
	ProvisionedRU float64
}

// Validate names the first invalid field.
func (c Config) Validate() error {
	switch {
	case c.MaxConcurrency < 0 || c.MaxConcurrency > 4096:
		return fmt.Errorf("max concurrency %d: want 1..4096 (0: no bound)", c.MaxConcurrency)
	case c.MaxRU < 0:
		return fmt.Errorf("max RU %v: must not be negative (0: no cap)", c.MaxRU)
	case c.MaxSourceRU < 0:
		return fmt.Errorf("max source RU %v: must not be negative (0: no cap)", c.MaxSourceRU)
	case c.ProvisionedRU < 0:
		return fmt.Errorf("provisioned RU %v: must not be negative (0: unknown)", c.ProvisionedRU)
	}
	return nil
}

// FixedConcurrency is ControllerFixed's bound on writes in flight when
// Config gives none: the global cap rekey had before its partitions'
// in-flight limits followed the latency, kept as `rekey bench`'s baseline.
const FixedConcurrency = 32

// Flow is the flow control of one command: the limiter of the target's
// writes, the RU caps of both sides, and the Controls that change them
// while the command works (the control file). Build it with New; the
// pipeline's write path (pipeline.NewWritePath) is its one user.
type Flow struct {
	Limiter   migrate.Limiter
	TargetCap *RUCap
	SourceCap *RUCap
	Controls  *Controls
	adaptive  *AdaptiveLimiter // nil with ControllerFixed
}

// New builds the flow control of writes to target under cfg, timed by
// clock (the real one when nil), logging its changes to log (discarded when
// nil). It does not contact the service: an AdaptiveLimiter reads the
// target's partitions on its first Acquire.
func New(target migrate.Partitioning, cfg Config, clock migrate.Clock, log *slog.Logger) *Flow {
	if clock == nil {
		clock = migrate.SystemClock{}
	}
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	conc := cfg.MaxConcurrency
	f := &Flow{TargetCap: NewRUCap(cfg.MaxRU, clock), SourceCap: NewSourceRUCap(cfg.MaxSourceRU, clock)}
	if cfg.Controller == ControllerFixed {
		if conc <= 0 {
			conc = FixedConcurrency
		}
		f.Limiter = NewFixedLimiter(conc)
	} else {
		f.adaptive = NewAdaptiveLimiter(target, AdaptiveConfig{
			MaxConcurrency: conc, Mode: cfg.Controller, ProvisionedRU: cfg.ProvisionedRU, Clock: clock, Log: log,
		})
		f.Limiter = f.adaptive
	}
	base := Settings{MaxRU: cfg.MaxRU, MaxSourceRU: cfg.MaxSourceRU, MaxConcurrency: conc}
	f.Controls = NewControls(base, f.TargetCap, f.SourceCap, f.Limiter, log)
	return f
}

// Describe is the progress line's view of the flow control: the settings
// in force and what the controller does with them.
func (f *Flow) Describe() string {
	text := f.Controls.Current().String()
	if f.adaptive != nil {
		if s := f.adaptive.Summary(); s != "" {
			text += "  " + s
		}
	}
	return text
}

// Partitions describes the controller of each target partition, in EPK
// order, for metrics; nil with the fixed limiter and before the first
// write.
func (f *Flow) Partitions() []PartitionState {
	if f.adaptive == nil {
		return nil
	}
	return f.adaptive.Partitions()
}
