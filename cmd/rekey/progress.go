package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/rekey-dev/rekey/migrate/pipeline"
	"github.com/schollz/progressbar/v3"
)

// progressReporter shows a run's progress: a bar on a terminal, a log line
// every interval elsewhere (Kubernetes logs, CI).
type progressReporter struct {
	stats    *pipeline.Stats
	total    int64 // the source's item count, 0 when unknown
	interval time.Duration
	terminal bool
	out      io.Writer
	extra    func() string // live settings to show (max RU, concurrency), may be nil

	mu   sync.Mutex
	last pipeline.StatsSnapshot
	at   time.Time
}

// start reports until ctx ends; the returned stop waits for the last update.
func (p *progressReporter) start(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if p.terminal {
			p.runBar(ctx)
		} else {
			p.runLog(ctx)
		}
	}()
	return func() { cancel(); <-done }
}

func (p *progressReporter) runBar(ctx context.Context) {
	max := p.total
	if max <= 0 {
		max = -1 // a spinner when the total is unknown
	}
	bar := progressbar.NewOptions64(max,
		progressbar.OptionSetWriter(p.out),
		progressbar.OptionSetDescription("copying"),
		progressbar.OptionShowCount(),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(200*time.Millisecond),
		progressbar.OptionShowDescriptionAtLineEnd(),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionClearOnFinish(),
	)
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		s := p.stats.Snapshot()
		if p.total > 0 && s.Written() > bar.GetMax64() {
			bar.ChangeMax64(s.Written()) // the source grew while we copied
		}
		_ = bar.Set64(s.Written())
		bar.Describe(p.line(s))
		select {
		case <-ctx.Done():
			_ = bar.Finish()
			return
		case <-t.C:
		}
	}
}

func (p *progressReporter) runLog(ctx context.Context) {
	t := time.NewTicker(p.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s := p.stats.Snapshot()
			itemsPerSec, ruPerSec := p.rates(s)
			args := []any{"items", s.Written(), "total", p.total, "itemsPerSec", round1(itemsPerSec),
				"ruPerSec", round1(ruPerSec), "throttled", s.Throttled, "throttledShare", round1(100 * s.ThrottledShare()),
				"deadLettered", s.DeadLettered}
			if eta, ok := p.eta(s, itemsPerSec); ok {
				args = append(args, "eta", eta.Round(time.Second).String())
			}
			if p.extra != nil {
				args = append(args, "settings", p.extra())
			}
			slog.Info("progress", args...)
		}
	}
}

// line is the bar's description: rates, 429s and dead letters.
func (p *progressReporter) line(s pipeline.StatsSnapshot) string {
	itemsPerSec, ruPerSec := p.rates(s)
	text := fmt.Sprintf("%.0f items/s  %.0f RU/s  429s %d (%.1f%% of writes)", itemsPerSec, ruPerSec, s.Throttled, 100*s.ThrottledShare())
	if s.DeadLettered > 0 {
		text += fmt.Sprintf("  dead-lettered %d", s.DeadLettered)
	}
	if p.extra != nil {
		text += "  " + p.extra()
	}
	return text
}

// rates are items/s and target RU/s since the previous call, smoothed over
// at least a second.
func (p *progressReporter) rates(s pipeline.StatsSnapshot) (items, ru float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if p.at.IsZero() {
		p.at, p.last = now.Add(-s.Elapsed), pipeline.StatsSnapshot{}
	}
	el := now.Sub(p.at).Seconds()
	if el <= 0 {
		return 0, 0
	}
	items = float64(s.Written()-p.last.Written()) / el
	ru = (s.TargetRU() - p.last.TargetRU()) / el
	if el >= 1 {
		p.at, p.last = now, s
	}
	return items, ru
}

func (p *progressReporter) eta(s pipeline.StatsSnapshot, itemsPerSec float64) (time.Duration, bool) {
	left := p.total - s.Written()
	if p.total <= 0 || itemsPerSec <= 0 || left <= 0 {
		return 0, false
	}
	return time.Duration(float64(left) / itemsPerSec * float64(time.Second)), true
}

func round1(f float64) float64 { return float64(int64(f*10)) / 10 }
