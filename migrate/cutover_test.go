package migrate

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// appDuringVerify makes the application write the source item id once
// during each final verify, right after the verify's scan read it. It
// returns how many writes it made.
func appDuringVerify(t *testing.T, r *rig, c *Cutover, id string, times int) func() int {
	var mu sync.Mutex
	armed, written := false, 0
	c.Progress = func(step string) {
		mu.Lock()
		defer mu.Unlock()
		if strings.HasPrefix(step, "verifying") && written < times {
			armed = true
		}
	}
	r.src.onFeed = func(_ ChangeRequest, page ChangePage) {
		mu.Lock()
		defer mu.Unlock()
		for _, body := range page.Items {
			if armed && idOf(body) == id {
				armed = false
				written++
				r.src.upsert(t, keyOf("eu"), doc(id, "eu", "t1", 100+written))
			}
		}
	}
	return func() int {
		mu.Lock()
		defer mu.Unlock()
		return written
	}
}

// The application writes the source while the final verify runs, after the
// verify read the item: the verify compared an outdated version and found
// the copy clean. Cutover sees the change in the source's change feed after
// the verify, drains it, verifies again, and records only then, with the
// target holding the item's latest version.
func TestCutoverVerifiesAgainWhenTheSourceChangesDuringItsVerify(t *testing.T) {
	r := newRig(t)
	for _, id := range []string{"a", "b", "c", "d"} {
		r.src.upsert(t, keyOf("eu"), doc(id, "eu", "t1", 1))
	}
	r.copyAll(t)
	c := &Cutover{Runner: r.runner(), Verifier: r.verifier(), Clock: r.clock}
	writes := appDuringVerify(t, r, c, "c", 1)
	var steps []string
	progress := c.Progress
	c.Progress = func(step string) { steps = append(steps, step); progress(step) }

	rep, err := c.Run(context.Background(), CutoverConfig{QuietPeriod: time.Second, Timeout: time.Minute, Run: RunConfig{PollInterval: time.Millisecond}, Verify: VerifyConfig{RecheckDelay: -1, TempDir: t.TempDir()}})
	if err != nil {
		t.Fatal(err)
	}
	if writes() != 1 || rep.Verifies != 2 || !rep.Recorded || !rep.Verify.Clean {
		t.Fatalf("writes %d, report %+v: want a second verify, clean, recorded", writes(), rep)
	}
	if !strings.Contains(strings.Join(steps, "\n"), "the source changed during the final verify") {
		t.Errorf("progress does not say why it verified again:\n%s", strings.Join(steps, "\n"))
	}
	latest := doc("c", "eu", "t1", 101)
	if it, ok := r.target(t, latest); !ok || !sameContent(it.Body, []byte(mustCopy(t, r, latest))) {
		t.Fatalf("target holds %s, want the latest version %s", it.Body, latest)
	}
	meta, err := r.store.ReadMeta(context.Background())
	if err != nil || meta.Cutover == nil || meta.Cutover.Items != 4 {
		t.Fatalf("recorded cutover %+v %v", meta.Cutover, err)
	}
}

func mustCopy(t *testing.T, r *rig, body string) string {
	_, c := r.copyOf(t, body)
	return c
}

// An application that writes during every final verify keeps cutover from
// recording anything: it refuses once the timeout passes.
func TestCutoverRefusesWhileTheSourceChangesDuringEveryVerify(t *testing.T) {
	r := newRig(t)
	for _, id := range []string{"a", "b"} {
		r.src.upsert(t, keyOf("eu"), doc(id, "eu", "t1", 1))
	}
	r.copyAll(t)
	c := &Cutover{Runner: r.runner(), Verifier: r.verifier(), Clock: r.clock}
	writes := appDuringVerify(t, r, c, "a", 1000)
	rep, err := c.Run(context.Background(), CutoverConfig{QuietPeriod: time.Second, Timeout: 10 * time.Second, Run: RunConfig{PollInterval: time.Millisecond}, Verify: VerifyConfig{RecheckDelay: -1, TempDir: t.TempDir()}})
	if !errors.Is(err, ErrStillWriting) || rep.Recorded || !strings.Contains(err.Error(), "during the final verify") {
		t.Fatalf("want a refusal: %v, %+v", err, rep)
	}
	if writes() < 2 || rep.Verifies != writes() {
		t.Fatalf("%d verifies for %d writes", rep.Verifies, writes())
	}
	if meta, err := r.store.ReadMeta(context.Background()); err != nil || meta.Cutover != nil {
		t.Fatalf("a cutover was recorded: %+v %v", meta.Cutover, err)
	}
}

// An item the target refuses (too large) is dead-lettered; the final verify
// classifies it as dead-lettered, not missing, so --accept-dead-letter cuts
// over. Without accepting, cutover refuses.
func TestCutoverAcceptsDeadLetteredItems(t *testing.T) {
	r := newRig(t)
	for _, id := range []string{"a", "big"} {
		r.src.upsert(t, keyOf("eu"), doc(id, "eu", "t"+id, 1))
	}
	r.dst.fail = func(op string, key Key, id string) error {
		if id == "big" && (op == "create" || op == "replace") {
			return &RequestError{Status: http.StatusRequestEntityTooLarge}
		}
		return nil
	}
	r.copyAll(t)
	cfg := CutoverConfig{QuietPeriod: time.Second, Timeout: time.Minute, Run: RunConfig{PollInterval: time.Millisecond}, Verify: VerifyConfig{RecheckDelay: -1, TempDir: t.TempDir()}}
	c := &Cutover{Runner: r.runner(), Verifier: r.verifier(), Clock: r.clock}
	if _, err := c.Run(context.Background(), cfg); !errors.Is(err, ErrDeadLettersPending) {
		t.Fatalf("without accepting: %v", err)
	}
	cfg.AcceptDeadLetter = true
	rep, err := c.Run(context.Background(), cfg)
	if err != nil || !rep.Recorded {
		t.Fatalf("accepting the dead letter: %v %+v", err, rep)
	}
	if v := rep.Verify; v.DeadLettered.Count != 1 || v.Missing.Count != 0 || v.Matched != 1 || v.Fix == nil || v.Fix.Copied != 0 {
		t.Fatalf("final verify %+v", v)
	}
}
