package main

import (
	"context"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"time"
)

// abandonGrace is how long a command that abandons its work on the second
// signal has to return before the process exits 130 by itself.
const abandonGrace = 5 * time.Second

// interrupts is how rekey stops on SIGINT and SIGTERM, in two steps.
//
// The first signal cancels the command's context: rekey run stops reading,
// finishes the pages it is writing and checkpoints them, and says how many
// (a command that does not say so gets a generic line). The second signal
// closes Abandon: rekey run abandons the pages in flight, which is safe
// because a page is checkpointed only once it is durable, so it is read
// again on resume; a command that has nothing to abandon, or that has not
// returned within abandonGrace, exits 130 at once. A third exits at once.
type interrupts struct {
	cancel  context.CancelFunc
	abandon chan struct{}
	exit    func(code int) // os.Exit; tests record it

	mu        sync.Mutex
	signals   int
	announces bool // the running command says itself what the first signal finishes
	abandons  bool // the running command listens to Abandon
}

type interruptsKey struct{}

// newInterrupts returns the context commands run under and its interrupts,
// exiting through exit.
func newInterrupts(parent context.Context, exit func(int)) (context.Context, *interrupts) {
	ctx, cancel := context.WithCancel(parent)
	in := &interrupts{cancel: cancel, abandon: make(chan struct{}), exit: exit}
	return context.WithValue(ctx, interruptsKey{}, in), in
}

// interruptsOf returns the interrupts of ctx; nil when rekey runs in a test
// without them, which every method accepts.
func interruptsOf(ctx context.Context) *interrupts {
	in, _ := ctx.Value(interruptsKey{}).(*interrupts)
	return in
}

// listen handles the signals of sigs until it closes.
func (in *interrupts) listen(sigs <-chan os.Signal) {
	for range sigs {
		in.signal()
	}
}

// signal handles one SIGINT or SIGTERM.
func (in *interrupts) signal() {
	in.mu.Lock()
	in.signals++
	n, announces, abandons := in.signals, in.announces, in.abandons
	in.mu.Unlock()
	switch n {
	case 1:
		if !announces {
			slog.Info("stopping; Ctrl+C again to stop now")
		}
		in.cancel()
	case 2:
		close(in.abandon)
		if !abandons {
			in.exit(ExitInterrupted)
			return
		}
		slog.Warn("stopping now: abandoning the pages in flight; they are read again on resume")
		time.AfterFunc(abandonGrace, func() { in.exit(ExitInterrupted) })
	default:
		in.exit(ExitInterrupted)
	}
}

// expectStop is called by a command that says itself what the first signal
// finishes (announce) and abandons it when Abandon closes.
func (in *interrupts) expectStop() {
	if in == nil {
		return
	}
	in.mu.Lock()
	in.announces, in.abandons = true, true
	in.mu.Unlock()
}

// Abandon is closed by the second signal; nil (never closed) without
// interrupts.
func (in *interrupts) Abandon() <-chan struct{} {
	if in == nil {
		return nil
	}
	return in.abandon
}

// announceStop is the line rekey run writes when the first signal stops it.
func announceStop(pagesInFlight int) {
	slog.Info("stopping: finishing "+pagesPhrase(pagesInFlight)+" in flight; Ctrl+C again to stop now", "pagesInFlight", pagesInFlight)
}

func pagesPhrase(n int) string {
	if n == 1 {
		return "1 page"
	}
	return strconv.Itoa(n) + " pages"
}
