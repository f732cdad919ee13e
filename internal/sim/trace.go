package sim

import (
	"crypto/sha256"
	"fmt"
	"hash"
	"io"
	"sort"
	"strings"
	"sync"
	"time"
)

// traceTail is how many of the last lines a trace keeps to print.
const traceTail = 60

// trace is the history of a simulation: every request as it took effect
// (virtual time, process, operation, object, outcome) and every process's
// start, crash and exit. Its hash proves a replay: the same seed must give
// the same hash. The hash covers what has effects: writes, faults met,
// crashes, starts and exits, violations; reads and log lines are shown but
// not hashed (two goroutines of a process that crashes at an instant may
// or may not get a read in first; if a read mattered, what follows
// differs). Lines of one virtual instant are sorted before they are
// hashed: things that happen at one instant happen in no order
// (goroutines woken together run in whatever order the scheduler picks);
// if the order mattered, what follows differs, and so does the hash. It
// keeps the last lines for a failure report and, when full is set, writes
// every line there.
type trace struct {
	t0   time.Time
	root string // the simulation's directory, written as $DIR

	mu      sync.Mutex
	hash    hash.Hash
	lines   int
	tail    [traceTail]string
	full    io.Writer
	at      time.Duration // the instant of the lines in pending
	pending []traceLine
}

// traceLine is a line as shown, and as hashed ("" when it is not).
type traceLine struct {
	text, hashed string
}

func newTrace(t0 time.Time, root string, full io.Writer) *trace {
	return &trace{t0: t0, root: root, hash: sha256.New(), full: full}
}

// add records one line at the current virtual time.
func (t *trace) add(proc, op, obj, outcome string) {
	at := time.Since(t.t0)
	line := fmt.Sprintf("%11.6f %-12s %-13s %-34s %s", at.Seconds(), proc, op, obj, outcome)
	if t.root != "" {
		line = strings.ReplaceAll(line, t.root, "$DIR")
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if at != t.at {
		t.flush()
		t.at = at
	}
	l := traceLine{text: line}
	if affects(op) {
		l.hashed = line
		if op == "exit" { // what a command says when it fails races its goroutines
			l.hashed = fmt.Sprintf("%11.6f %-12s exit", at.Seconds(), proc)
		}
	}
	t.pending = append(t.pending, l)
}

// affects reports whether a trace line of op records something with an
// effect on the simulation.
func affects(op string) bool {
	switch op {
	case "log", "report", "verify":
		return false
	}
	for _, read := range []string{".read", ".list", ".feed", ".count", ".def", ".ranges", ".pkranges", ".clean"} {
		if strings.HasSuffix(op, read) {
			return false
		}
	}
	return true
}

// flush records the lines of the last instant, sorted; t.mu is held.
func (t *trace) flush() {
	sort.Slice(t.pending, func(i, j int) bool { return t.pending[i].text < t.pending[j].text })
	hashed := make([]string, 0, len(t.pending))
	for _, l := range t.pending {
		if l.hashed != "" {
			hashed = append(hashed, l.hashed)
		}
		t.tail[t.lines%traceTail] = l.text
		t.lines++
		if t.full != nil {
			fmt.Fprintln(t.full, l.text)
		}
	}
	sort.Strings(hashed)
	for _, h := range hashed {
		t.hash.Write([]byte(h))
		t.hash.Write([]byte{'\n'})
	}
	t.pending = t.pending[:0]
}

// sum is the hash of every line so far.
func (t *trace) sum() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.flush()
	return fmt.Sprintf("%x", t.hash.Sum(nil))
}

// last returns up to n of the last lines, oldest first.
func (t *trace) last(n int) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.flush()
	n = min(n, traceTail, t.lines)
	out := make([]string, 0, n)
	for i := t.lines - n; i < t.lines; i++ {
		out = append(out, t.tail[i%traceTail])
	}
	return out
}

// count is the number of lines recorded.
func (t *trace) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.flush()
	return t.lines
}
