package sim

import (
	"crypto/sha256"
	"fmt"
	"hash"
	"io"
	"strings"
	"sync"
	"time"
)

// traceTail is how many of the last lines a trace keeps to print.
const traceTail = 60

// trace is the history of a simulation: every request as it took effect
// (virtual time, process, operation, object, outcome) and every process's
// start, crash and exit. Its hash proves a replay: the same seed must give
// the same hash. It keeps the last lines for a failure report and, when
// full is set, writes every line there.
type trace struct {
	t0   time.Time
	root string // the simulation's directory, written as $DIR

	mu    sync.Mutex
	hash  hash.Hash
	lines int
	tail  [traceTail]string
	full  io.Writer
}

func newTrace(t0 time.Time, root string, full io.Writer) *trace {
	return &trace{t0: t0, root: root, hash: sha256.New(), full: full}
}

// add records one line at the current virtual time.
func (t *trace) add(proc, op, obj, outcome string) {
	line := fmt.Sprintf("%11.6f %-12s %-13s %-34s %s", time.Since(t.t0).Seconds(), proc, op, obj, outcome)
	if t.root != "" {
		line = strings.ReplaceAll(line, t.root, "$DIR")
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.hash.Write([]byte(line))
	t.hash.Write([]byte{'\n'})
	t.tail[t.lines%traceTail] = line
	t.lines++
	if t.full != nil {
		fmt.Fprintln(t.full, line)
	}
}

// sum is the hash of every line so far.
func (t *trace) sum() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return fmt.Sprintf("%x", t.hash.Sum(nil))
}

// last returns up to n of the last lines, oldest first.
func (t *trace) last(n int) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
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
	return t.lines
}
