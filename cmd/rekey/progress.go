package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/rekey-dev/rekey/migrate/pipeline"
	"github.com/rekey-dev/rekey/migrate/status"
)

// progressReporter shows a run's progress by phase: while copying, a bar
// with the percentage and the ETA from the items remaining; once every
// range has caught up, a line with the lag in items and seconds. On a
// terminal it redraws one line that fits the terminal's width; elsewhere
// (Kubernetes logs, CI) it logs a progress line every interval.
//
// Counts come from the state (poller): what every worker checkpointed, so
// a resumed run starts from what was done, and a worker of many shows the
// whole migration against the source's total.
type progressReporter struct {
	stats    *pipeline.Stats
	poller   *status.Poller // nil: this process's counts only
	total    int64          // the source's item count, 0 when unknown
	interval time.Duration
	terminal bool
	out      io.Writer
	extra    func() string // live settings to show (max RU, concurrency), may be nil
	// width is the terminal's width in columns (terminalWidth when nil).
	width func() int

	rates rateWindow
	base  int64 // items checkpointed before this process wrote any (start)
	bar   *progressbar.ProgressBar
	barW  int  // the terminal width the bar was built for
	line  bool // a status line (not the bar) is on screen
}

// start reports until ctx ends; the returned stop clears the terminal's
// line and waits for the last update. It may be called more than once.
//
// The poller's first read must be done (startMonitor) and nothing written
// yet: what it read is where this process's count starts.
func (p *progressReporter) start(ctx context.Context) (stop func()) {
	if p.poller != nil {
		if rep, _, ok := p.poller.Latest(); ok {
			p.base = rep.Items - p.stats.Snapshot().Written()
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		every := p.interval
		if p.terminal {
			every = 250 * time.Millisecond
		}
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				if p.terminal {
					p.clear()
				}
				return
			case <-t.C:
				v := p.view(time.Now())
				if p.terminal {
					p.draw(v)
				} else {
					slog.Info("progress", v.logArgs()...)
				}
			}
		}
	}()
	return func() { cancel(); <-done }
}

// view samples the counters and the state.
func (p *progressReporter) view(now time.Time) progressView {
	s := p.stats.Snapshot()
	var rep status.Report
	ok := false
	if p.poller != nil {
		rep, _, ok = p.poller.Latest()
	}
	var itemsPerSec, ruPerSec float64
	switch {
	case ok:
		// The state is read every few seconds and moves a page at a time;
		// between reads this process's writes carry the count on from
		// what was checkpointed before it wrote anything.
		rep.Items = max(rep.Items, p.base+s.Written())
		itemsPerSec, ruPerSec = p.rates.add(now, rep.Items, s.TargetRU())
	case p.poller == nil:
		itemsPerSec, ruPerSec = p.rates.add(now, s.Written(), s.TargetRU())
	} // else no rate until the state is read: counts would jump to it
	v := viewOf(s, rep, ok, p.total, itemsPerSec, ruPerSec)
	if p.extra != nil {
		v.Settings = p.extra()
	}
	return v
}

// draw shows v on the terminal: the bar while copying, a status line
// after. Neither is ever wider than the terminal less one column, so no
// redraw wraps.
func (p *progressReporter) draw(v progressView) {
	width := p.columns()
	if !v.copying() {
		if p.bar != nil {
			_ = p.bar.Finish() // clears its line
			p.bar = nil
			fmt.Fprintf(p.out, "copied %s items in %s; every range has caught up\n", count(v.Items), shortDuration(v.Elapsed))
		}
		fmt.Fprintf(p.out, "\r%s\x1b[K", fit(v.parts(), width-1))
		p.line = true
		return
	}
	if p.bar == nil || p.barW != width {
		if p.bar != nil {
			_ = p.bar.Clear()
		}
		p.bar, p.barW = newBar(p.out, v.Total, width, fitExactly(v.parts(), descWidth(width))), width
	}
	if v.Items > p.bar.GetMax64() {
		p.bar.ChangeMax64(v.Items) // the source grew while we copied
	}
	// Both render (draw runs every 250ms: the bar needs no throttle of
	// its own); the description last, so the line on screen has both.
	_ = p.bar.Set64(v.Items)
	p.bar.Describe(fitExactly(v.parts(), descWidth(width)))
}

// clear removes the line on screen.
func (p *progressReporter) clear() {
	if p.bar != nil {
		_ = p.bar.Clear()
		p.bar = nil
	}
	if p.line {
		fmt.Fprint(p.out, "\r\x1b[K")
		p.line = false
	}
}

// The bar's line is "\r 44% |" + bar + "|  " + description + " ": 11
// columns besides the bar and the description.
const barOverhead = 11

// barWidth is the bar's share of a terminal width columns wide.
func barWidth(width int) int { return min(max(width/4, 10), 40) }

// descWidth is what is left of the line for the description, keeping the
// last column free.
func descWidth(width int) int { return max(width-1-barOverhead-barWidth(width), 0) }

// newBar builds the copy's bar for a terminal width columns wide. Its
// rates and ETA are rekey's (in the description), not the bar's, which
// would start from zero on a resume.
func newBar(out io.Writer, total int64, width int, description string) *progressbar.ProgressBar {
	return progressbar.NewOptions64(total,
		progressbar.OptionSetDescription(description),
		progressbar.OptionSetWriter(out),
		progressbar.OptionSetWidth(barWidth(width)),
		progressbar.OptionShowDescriptionAtLineEnd(),
		progressbar.OptionSetPredictTime(false),
		progressbar.OptionSetElapsedTime(false),
		progressbar.OptionClearOnFinish(),
	)
}

// fitExactly is fit padded with spaces to width, so that the bar's line
// keeps one length.
func fitExactly(parts []string, width int) string {
	s := fit(parts, width)
	return s + strings.Repeat(" ", max(width-len([]rune(s)), 0))
}

// columns is the terminal's width.
func (p *progressReporter) columns() int {
	if p.width != nil {
		return p.width()
	}
	return terminalWidth(p.out)
}

// terminalWidth is w's width when it is a terminal, else $COLUMNS, else 80.
func terminalWidth(w io.Writer) int {
	if f, ok := w.(*os.File); ok {
		if cols, _, err := term.GetSize(int(f.Fd())); err == nil && cols > 0 {
			return cols
		}
	}
	if n, err := strconv.Atoi(os.Getenv("COLUMNS")); err == nil && n > 0 {
		return n
	}
	return 80
}

// rateWindow turns samples of two counters into rates over the last
// rateSpan, so that a stall shows within it and a page's checkpoint does
// not swing the figure much.
type rateWindow struct {
	samples []rateSample
}

type rateSample struct {
	at    time.Time
	items int64
	ru    float64
}

const rateSpan = 5 * time.Second

// add records a sample and returns the items/s and RU/s since the oldest
// sample within rateSpan (0 until two samples a second apart).
func (w *rateWindow) add(now time.Time, items int64, ru float64) (itemsPerSec, ruPerSec float64) {
	w.samples = append(w.samples, rateSample{now, items, ru})
	for len(w.samples) > 2 && now.Sub(w.samples[1].at) >= rateSpan {
		w.samples = w.samples[1:]
	}
	first := w.samples[0]
	el := now.Sub(first.at).Seconds()
	if el < 1 {
		return 0, 0
	}
	return max(float64(items-first.items)/el, 0), max((ru-first.ru)/el, 0)
}
