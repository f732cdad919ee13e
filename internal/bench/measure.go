package bench

import (
	"bufio"
	"context"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rekey-dev/rekey/internal/emulator"
)

// snapshot is the target container's counters at one moment, with the
// items the writer under test had written by then.
type snapshot struct {
	at       time.Time
	written  int64
	ru       float64
	requests int64 // served (429s excluded)
	throttle int64 // answered 429
	partRU   []float64
	budget   float64 // RU/s per partition
}

// sampler polls the emulator's metrics of one container while a writer
// runs.
type sampler struct {
	emu      *emulatorProcess
	db, coll string
	written  func() int64

	mu      sync.Mutex
	samples []snapshot
}

// run samples every interval until ctx ends, then once more.
func (s *sampler) run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		s.sample(ctx)
		select {
		case <-ctx.Done():
			s.sample(context.Background())
			return
		case <-t.C:
		}
	}
}

func (s *sampler) sample(ctx context.Context) {
	m, err := s.emu.metrics(ctx, s.db, s.coll)
	if err != nil {
		return
	}
	smp := snapshot{at: m.At, written: s.written(), ru: m.RU, requests: m.Requests, throttle: m.Throttled}
	if smp.at.IsZero() {
		smp.at = time.Now()
	}
	for _, p := range m.Partitions {
		smp.partRU = append(smp.partRU, p.RU)
		smp.budget = p.BudgetRU
	}
	s.mu.Lock()
	s.samples = append(s.samples, smp)
	s.mu.Unlock()
}

// window is the figures between two samples.
type window struct {
	seconds     float64
	ruPerSec    float64
	requests    int64 // attempts: served and throttled
	throttled   int64
	hottest     float64 // the busiest partition's RU/s over its budget
	usableRU    float64 // RU/s the data's distribution lets the partitions use
	itemsPerSec float64
}

func between(a, b snapshot) window {
	w := window{seconds: b.at.Sub(a.at).Seconds()}
	if w.seconds <= 0 {
		return w
	}
	w.ruPerSec = (b.ru - a.ru) / w.seconds
	w.requests = (b.requests - a.requests) + (b.throttle - a.throttle)
	w.throttled = b.throttle - a.throttle
	w.itemsPerSec = float64(b.written-a.written) / w.seconds
	top := 0.0
	for i := range b.partRU {
		if i < len(a.partRU) {
			top = max(top, (b.partRU[i]-a.partRU[i])/w.seconds)
		}
	}
	if b.budget > 0 {
		w.hottest = top / b.budget
		if top > 0 {
			// Every partition's load scaled until the busiest one runs
			// at its budget: the most this distribution of keys can use.
			w.usableRU = w.ruPerSec * b.budget / top
		}
	}
	return w
}

// steady returns the window between the samples where 10% and 90% of
// total items were written, which leaves out the slow start and the tail;
// the whole run when there are too few samples.
func (s *sampler) steady(total int64) (window, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.samples) < 2 {
		return window{}, false
	}
	first, last := -1, -1
	for i, smp := range s.samples {
		if first < 0 && smp.written >= total/10 {
			first = i
		}
		if smp.written <= total*9/10 {
			last = i
		}
	}
	if first < 0 || last <= first {
		return between(s.samples[0], s.samples[len(s.samples)-1]), false
	}
	return between(s.samples[first], s.samples[last]), true
}

// worstSecond is the highest RU/s the target spent over any window of
// samples one second or a little more apart (the sampling interval
// longer), and that of the run's first second. A run sampled over less
// than a second spent everything in its first second.
func (s *sampler) worstSecond() (worst, first float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := len(s.samples); n >= 2 && s.samples[n-1].at.Sub(s.samples[0].at) < time.Second {
		ru := s.samples[n-1].ru - s.samples[0].ru
		return ru, ru
	}
	j := 0
	for i := range s.samples {
		for j < len(s.samples) && s.samples[j].at.Sub(s.samples[i].at) < time.Second {
			j++
		}
		if j == len(s.samples) {
			break
		}
		w := between(s.samples[i], s.samples[j])
		if i == 0 {
			first = w.ruPerSec
		}
		worst = max(worst, w.ruPerSec)
	}
	return worst, first
}

// overall is the window of the whole run.
func (s *sampler) overall() window {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.samples) < 2 {
		return window{}
	}
	return between(s.samples[0], s.samples[len(s.samples)-1])
}

// usage measures this process: CPU seconds (user and system) and peak
// resident memory, from a mark.
type usage struct {
	cpu      time.Duration
	peakRSS  int64 // bytes
	peakKind string
}

// markUsage starts a measurement: it returns the CPU time so far, and
// resets the kernel's peak-RSS mark (Linux: /proc/self/clear_refs) after
// returning freed memory, so the peak is this phase's.
func markUsage() time.Duration {
	runtime.GC()
	debug.FreeOSMemory()
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
	return cpuTime()
}

// usageSince reports the CPU time since mark and the peak RSS since the
// mark (VmHWM), or over the process's life (ru_maxrss) where the mark
// cannot be reset.
func usageSince(mark time.Duration) usage {
	u := usage{cpu: cpuTime() - mark}
	if hwm, ok := procStatusKB("VmHWM"); ok {
		u.peakRSS, u.peakKind = hwm*1024, "since start of phase"
		return u
	}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		u.peakRSS, u.peakKind = int64(ru.Maxrss)*1024, "process lifetime"
	}
	return u
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procStatusKB reads a "Name:   123 kB" line of /proc/self/status.
func procStatusKB(name string) (int64, bool) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && k == name {
			n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}

// partitionsOf is the number of physical partitions of a metrics snapshot.
func partitionsOf(m emulator.ContainerMetrics) int { return len(m.Partitions) }
