package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/rekey-dev/rekey/migrate/pipeline"
	"github.com/rekey-dev/rekey/migrate/status"
)

// phaseStarting is the phase shown before the state was first read.
const phaseStarting = "starting"

// progressView is what the progress output shows at one moment: the
// migration's phase and counts as its state checkpoints them (every
// worker's, so a resume starts from what was done and a worker of many
// shows the whole migration), and this process's rates.
type progressView struct {
	Phase    string
	CaughtUp bool  // every range has reached the end of its feed
	Items    int64 // items checkpointed, every worker's
	Total    int64 // the source's item count, 0 when unknown
	Worker   int64 // items this process wrote

	ItemsPerSec float64 // migration-wide, over the last samples
	RUPerSec    float64 // this process's target RU/s
	ETA         time.Duration
	HasETA      bool

	Lag    status.Totals // lag of the caught-up ranges, ranges caught up
	HasLag bool
	// Feed is the change feed the ranges follow, as status names it
	// (feedOf), when they all follow the same one; "mixed" when not;
	// empty before the state was read. Fallbacks counts the ranges that
	// fell back from the all-versions feed.
	Feed       string
	Fallbacks  int
	Elapsed    time.Duration
	Throttled  int64
	Share      float64 // share of target requests answered 429
	Dead       int64
	Settings   string
	HasPercent bool
	Percent    float64
}

// viewOf builds the view from this process's counters, the latest report
// of the state (ok false before the first) and the rates.
func viewOf(s pipeline.StatsSnapshot, rep status.Report, ok bool, total int64, itemsPerSec, ruPerSec float64) progressView {
	v := progressView{
		Phase: phaseStarting, Items: s.Written(), Total: total, Worker: s.Written(),
		ItemsPerSec: itemsPerSec, RUPerSec: ruPerSec, Elapsed: s.Elapsed,
		Throttled: s.Throttled, Share: s.ThrottledShare(), Dead: s.DeadLettered,
	}
	if ok {
		v.Phase, v.Items = rep.Phase, rep.Items
		if v.Phase == status.PhaseNotStarted && s.Read > 0 {
			v.Phase = status.PhaseCopying // read before this run created the leases
		}
		v.Lag = rep.Totals()
		v.CaughtUp = v.Lag.Ranges > 0 && v.Lag.CaughtUp == v.Lag.Ranges
		v.HasLag = v.Lag.Probed
		v.Feed, v.Fallbacks = feedSummary(rep.Ranges)
	}
	if total > 0 {
		v.HasPercent = true
		v.Percent = min(100, 100*float64(v.Items)/float64(total))
		if left := total - v.Items; left > 0 && itemsPerSec > 0 && !v.CaughtUp {
			v.ETA, v.HasETA = time.Duration(float64(left)/itemsPerSec*float64(time.Second)), true
		}
	}
	return v
}

// feedSummary is the feed every range follows (feedOf), "mixed" when they
// differ, and how many ranges fell back from the all-versions feed.
func feedSummary(ranges []status.Range) (feed string, fallbacks int) {
	for i, r := range ranges {
		switch f := feedOf(r); {
		case i == 0:
			feed = f
		case f != feed:
			feed = "mixed"
		}
		if r.Fallback != "" {
			fallbacks++
		}
	}
	return feed, fallbacks
}

// copying reports whether the view is of the initial copy, which a bar
// shows (the total known).
func (v progressView) copying() bool {
	return v.Total > 0 && !v.CaughtUp && (v.Phase == status.PhaseCopying || v.Phase == phaseStarting || v.Phase == status.PhaseNotStarted)
}

// parts are the view's fields for a terminal, most important first: the
// line keeps as many as fit.
func (v progressView) parts() []string {
	var p []string
	switch {
	case v.copying():
		p = append(p, fmt.Sprintf("copying %s/%s", count(v.Items), count(v.Total)))
		if v.HasETA {
			p = append(p, "ETA "+shortDuration(v.ETA))
		}
		p = append(p, count(int64(v.ItemsPerSec))+" items/s")
	case v.Phase == status.PhaseSyncing || v.CaughtUp:
		lag := "lag -"
		if v.HasLag {
			more := ""
			if v.Lag.LagAtLeast {
				more = "+"
			}
			lag = fmt.Sprintf("lag %s%s items, %s", count(v.Lag.LagItems), more, shortDuration(time.Duration(v.Lag.LagSeconds)*time.Second))
		}
		syncing := "syncing"
		if v.Feed != "" {
			syncing += " " + v.Feed
		}
		p = append(p, syncing, lag, fmt.Sprintf("%s items copied", count(v.Items)))
		if v.Fallbacks > 0 {
			p = append(p, fmt.Sprintf("%d fell back to latest", v.Fallbacks))
		}
	default:
		p = append(p, v.Phase, fmt.Sprintf("%s items", count(v.Items)))
		if v.Lag.Ranges > 0 {
			p = append(p, fmt.Sprintf("%d/%d ranges caught up", v.Lag.CaughtUp, v.Lag.Ranges))
		}
		p = append(p, count(int64(v.ItemsPerSec))+" items/s")
	}
	p = append(p, fmt.Sprintf("%s RU/s", count(int64(v.RUPerSec))), fmt.Sprintf("429s %.1f%%", 100*v.Share))
	if v.Dead > 0 {
		p = append(p, fmt.Sprintf("dead %s", count(v.Dead)))
	}
	if v.Settings != "" {
		p = append(p, v.Settings)
	}
	return p
}

// fit joins parts with two spaces, keeping the leading ones that fit in
// width columns; the first is cut to width when even it does not fit.
func fit(parts []string, width int) string {
	if width <= 0 {
		return ""
	}
	var b strings.Builder
	for i, p := range parts {
		sep := ""
		if i > 0 {
			sep = "  "
		}
		if utf8.RuneCountInString(b.String()+sep+p) > width {
			if i == 0 {
				return string([]rune(p)[:width])
			}
			break
		}
		b.WriteString(sep + p)
	}
	return b.String()
}

// logArgs are the view as the attributes of a JSON progress line.
func (v progressView) logArgs() []any {
	args := []any{"phase", v.Phase, "caughtUp", v.CaughtUp, "items", v.Items, "total", v.Total, "workerItems", v.Worker,
		"itemsPerSec", round1(v.ItemsPerSec), "ruPerSec", round1(v.RUPerSec), "throttled", v.Throttled,
		"throttledShare", round1(100 * v.Share), "deadLettered", v.Dead, "elapsed", v.Elapsed.Round(time.Second)}
	if v.HasPercent {
		args = append(args, "percent", round1(v.Percent))
	}
	if v.HasETA {
		args = append(args, "eta", v.ETA.Round(time.Second))
	}
	if v.Lag.Ranges > 0 {
		args = append(args, "rangesCaughtUp", v.Lag.CaughtUp, "ranges", v.Lag.Ranges)
	}
	if v.HasLag {
		args = append(args, "lagItems", v.Lag.LagItems, "lagItemsAtLeast", v.Lag.LagAtLeast, "lag", time.Duration(v.Lag.LagSeconds)*time.Second)
	}
	if v.Feed != "" {
		args = append(args, "feed", v.Feed)
	}
	if v.Fallbacks > 0 {
		args = append(args, "fallbacks", v.Fallbacks)
	}
	if v.Settings != "" {
		args = append(args, "settings", v.Settings)
	}
	return args
}

// count writes n with thousands separators.
func count(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if neg {
		return "-" + s
	}
	return s
}

// shortDuration rounds d for a person: seconds under an hour, minutes
// above.
func shortDuration(d time.Duration) string {
	if d >= time.Hour {
		return d.Round(time.Minute).String()
	}
	return d.Round(time.Second).String()
}

func round1(f float64) float64 { return float64(int64(f*10)) / 10 }
