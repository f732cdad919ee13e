package sim

import (
	"hash/fnv"
	"math/rand/v2"
	"sync"
	"time"
)

// dice is the simulation's one source of randomness. Every draw is keyed
// by the identity of what it decides (a process, an operation kind, an
// item or a range) and by how often that identity has drawn before, never
// by a shared stream: goroutines that draw in a different order on another
// run still draw the same numbers, so a seed replays exactly.
type dice struct {
	seed uint64

	mu    sync.Mutex
	count map[string]uint64
}

func newDice(seed uint64) *dice { return &dice{seed: seed, count: map[string]uint64{}} }

// roll returns a generator for the next decision about identity parts.
func (d *dice) roll(parts ...string) *rand.Rand {
	h := fnv.New64a()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	id := h.Sum64()
	d.mu.Lock()
	key := string(h.Sum(nil))
	n := d.count[key]
	d.count[key] = n + 1
	d.mu.Unlock()
	return rand.New(rand.NewPCG(d.seed, id^(n*0x9E3779B97F4A7C15+1)))
}

// fixed returns a generator for a decision that depends on identity parts
// alone, the same whenever it is asked (a process's crash plan).
func (d *dice) fixed(parts ...string) *rand.Rand {
	h := fnv.New64a()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return rand.New(rand.NewPCG(d.seed^0xA5A5A5A5A5A5A5A5, h.Sum64()))
}

// between draws a duration in [lo, hi) to the nanosecond, so that events
// fall on distinct virtual instants.
func between(r *rand.Rand, lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	return lo + time.Duration(r.Int64N(int64(hi-lo)))
}

// chance reports true with probability p.
func chance(r *rand.Rand, p float64) bool { return r.Float64() < p }

// jitter is a migrate.Clock's jitter source (migrate.Jitter) for one
// process: seeded by the process's name, drawn in the order its retries
// happen, which virtual time makes deterministic.
type jitter struct {
	mu sync.Mutex
	r  *rand.Rand
}

func (j *jitter) Int64N(n int64) int64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.r.Int64N(n)
}
