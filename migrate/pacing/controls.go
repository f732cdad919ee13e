package pacing

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/rekey-dev/rekey/migrate"
)

// ControlFileName is the control file's name in a --state directory.
const ControlFileName = "control.json"

// DefaultControlPoll is how often Controls.Watch reads the control file.
const DefaultControlPoll = time.Second

// Settings are the knobs of a running migration that may change while it
// runs: the RU/s caps on the target and the source (0: no cap) and the
// writes in flight across all partitions (0: no bound but each
// partition's own).
type Settings struct {
	MaxRU          float64 `json:"maxRU"`
	MaxSourceRU    float64 `json:"maxSourceRU"`
	MaxConcurrency int     `json:"maxConcurrency"`
}

// String is the settings as the progress line shows them.
func (s Settings) String() string {
	conc := "none"
	if s.MaxConcurrency > 0 {
		conc = strconv.Itoa(s.MaxConcurrency)
	}
	return fmt.Sprintf("max-ru %s  max-source-ru %s  max-concurrency %s", ruCap(s.MaxRU), ruCap(s.MaxSourceRU), conc)
}

func ruCap(v float64) string {
	if v <= 0 {
		return "none"
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

// Control is a control file: JSON with any of the fields
//
//	{"maxRU": 5000, "maxSourceRU": 2000, "maxConcurrency": 16}
//
// A field the file leaves out keeps the value the migration was started
// with; a maxRU, maxSourceRU or maxConcurrency of 0 removes the cap. Unknown fields are
// refused, so a misspelt name is reported instead of ignored.
type Control struct {
	MaxRU          *float64 `json:"maxRU,omitempty"`
	MaxSourceRU    *float64 `json:"maxSourceRU,omitempty"`
	MaxConcurrency *int     `json:"maxConcurrency,omitempty"`
}

// ParseControl decodes and validates a control file's content.
func ParseControl(data []byte) (Control, error) {
	var c Control
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return Control{}, fmt.Errorf("not a control file (want JSON such as {\"maxRU\": 5000, \"maxConcurrency\": 16}): %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Control{}, errors.New("not a control file: more than one JSON value")
	}
	switch {
	case c.MaxRU != nil && *c.MaxRU < 0:
		return Control{}, fmt.Errorf("maxRU %v: must not be negative (0: no cap)", *c.MaxRU)
	case c.MaxSourceRU != nil && *c.MaxSourceRU < 0:
		return Control{}, fmt.Errorf("maxSourceRU %v: must not be negative (0: no cap)", *c.MaxSourceRU)
	case c.MaxConcurrency != nil && (*c.MaxConcurrency < 0 || *c.MaxConcurrency > 4096):
		return Control{}, fmt.Errorf("maxConcurrency %d: want 1..4096 (0: no cap)", *c.MaxConcurrency)
	}
	return c, nil
}

// over returns base with the file's fields in place.
func (c Control) over(base Settings) Settings {
	if c.MaxRU != nil {
		base.MaxRU = *c.MaxRU
	}
	if c.MaxSourceRU != nil {
		base.MaxSourceRU = *c.MaxSourceRU
	}
	if c.MaxConcurrency != nil {
		base.MaxConcurrency = *c.MaxConcurrency
	}
	return base
}

// Controls holds a run's live settings and applies changes to its RU caps
// and limiter: what `rekey run` does with its control file. Safe for
// concurrent use.
type Controls struct {
	target, source *RUCap
	limiter        migrate.Limiter
	log            *slog.Logger
	base           Settings

	mu      sync.Mutex
	cur     Settings
	lastErr string // the last complaint about the file, logged once
}

// NewControls returns controls over a run's target and source RU caps and
// its limiter (adjusted when it is a ConcurrencyAdjuster), starting from
// base, the command line's settings, which it applies.
func NewControls(base Settings, target, source *RUCap, limiter migrate.Limiter, log *slog.Logger) *Controls {
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	c := &Controls{target: target, source: source, limiter: limiter, log: log, base: base}
	c.apply(base)
	return c
}

// Current returns the settings in force.
func (c *Controls) Current() Settings {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cur
}

// Watch reads the control file at path every interval until ctx ends,
// applying what changed. A missing file means the command line's settings
// (so deleting the file undoes it); a file that does not parse or
// validate is reported once and the settings in force are kept.
func (c *Controls) Watch(ctx context.Context, path string, interval time.Duration) {
	if interval <= 0 {
		interval = DefaultControlPoll
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		c.Poll(path)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Poll reads the control file once and applies it; Watch calls it.
func (c *Controls) Poll(path string) {
	data, err := os.ReadFile(path)
	var want Settings
	switch {
	case errors.Is(err, fs.ErrNotExist):
		want = c.base
	case err != nil:
		c.complain(path, err)
		return
	default:
		ctl, err := ParseControl(data)
		if err != nil {
			c.complain(path, err)
			return
		}
		want = ctl.over(c.base)
	}
	c.mu.Lock()
	c.lastErr = ""
	old := c.cur
	c.mu.Unlock()
	if want != old {
		c.apply(want)
		c.log.Info("control file applied", "file", path, "was", old.String(), "now", want.String())
	}
}

func (c *Controls) complain(path string, err error) {
	c.mu.Lock()
	repeat := c.lastErr == err.Error()
	c.lastErr = err.Error()
	c.mu.Unlock()
	if !repeat {
		c.log.Warn("control file ignored; the settings in force are kept", "file", path, "err", err)
	}
}

func (c *Controls) apply(s Settings) {
	c.target.SetLimit(s.MaxRU)
	c.source.SetLimit(s.MaxSourceRU)
	if a, ok := c.limiter.(migrate.ConcurrencyAdjuster); ok {
		a.SetMaxConcurrency(s.MaxConcurrency)
	}
	c.mu.Lock()
	c.cur = s
	c.mu.Unlock()
}
