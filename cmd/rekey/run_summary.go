package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/rekey-dev/rekey/migrate/pipeline"
)

// printSummary writes the run's final numbers.
func printSummary(w io.Writer, sum pipeline.Summary, deadPath string) {
	s := sum.Stats
	state := "stopped"
	switch {
	case sum.StoppedForCutover && !sum.Interrupted:
		state = "stopped for cutover; progress checkpointed, leases released"
	case sum.CaughtUp && !sum.Interrupted:
		state = "caught up"
	case sum.Interrupted:
		state = "interrupted; progress checkpointed"
	}
	fmt.Fprintf(w, "rekey run: %s after %s (%d feed ranges)\n", state, s.Elapsed.Round(time.Millisecond), sum.Ranges)
	fmt.Fprintf(w, "  items read        %d\n", s.Read)
	fmt.Fprintf(w, "  items written     %d (created %d, updated %d, already there %d; %d batches)\n", s.Written(), s.Created, s.Updated, s.Unchanged, s.Batches)
	fmt.Fprintf(w, "  dead-lettered     %d now in %s (this run: %d, of which collisions %d)\n", sum.DeadLetters, deadPath, s.DeadLettered, s.Collisions)
	fmt.Fprintf(w, "  request units     target %.0f (creates %.0f, conflict checks %.0f, replaces %.0f); source %.0f\n", s.TargetRU(), s.CreateRU, s.CheckRU, s.ReplaceRU, s.SourceRU)
	fmt.Fprintf(w, "  throttled (429)   %d (target: %d of %d requests, %.2f%%; source: %d); transient retries %d\n",
		s.Throttled, s.WritesThrottled, s.WriteRequests, 100*s.ThrottledShare(), s.Throttled-s.WritesThrottled, s.Retries)
	if sum.DeadLetters > 0 {
		fmt.Fprintf(w, "  %d items could not be copied: 'rekey deadletter list' shows why; cutover is refused until they are replayed or accepted\n", sum.DeadLetters)
	}
}

// runReport is `rekey run -o json`: one document when the run ends.
type runReport struct {
	// Outcome: caught up, stopped for cutover, cut over (the cutover was
	// recorded while the run waited, or before it started with
	// --until-cutover), interrupted, or failed (error says why).
	Outcome string `json:"outcome"`
	Error   string `json:"error,omitempty"`
	Elapsed string `json:"elapsed,omitempty"`
	Ranges  int    `json:"ranges"`
	// Stats are this run's counters (elapsed as a duration string).
	Stats *pipeline.StatsSnapshot `json:"stats,omitempty"`
	// DeadLetters is the number of items in the dead-letter store now,
	// DeadLetterStore where it is.
	DeadLetters     int    `json:"deadLetters"`
	DeadLetterStore string `json:"deadLetterStore"`
}

// writeRunJSON writes the run's report: sum is its last Run's summary
// (nil when it never ran), err what the command returns.
func writeRunJSON(w io.Writer, sum *pipeline.Summary, err error, deadPath string) error {
	rep := runReport{DeadLetterStore: deadPath}
	if sum != nil {
		rep.Elapsed = sum.Stats.Elapsed.Round(time.Millisecond).String()
		rep.Ranges, rep.DeadLetters = sum.Ranges, sum.DeadLetters
		rep.Stats = &sum.Stats
	}
	var ee *exitError
	switch {
	case errors.As(err, &ee) && ee.code == ExitInterrupted:
		rep.Outcome = "interrupted"
	case err != nil:
		rep.Outcome, rep.Error = "failed", err.Error()
	case sum == nil || sum.StoppedForCutover:
		rep.Outcome = "cut over"
	case sum.CaughtUp:
		rep.Outcome = "caught up"
	default:
		rep.Outcome = "stopped"
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(rep); err != nil {
		return fmt.Errorf("write the run's summary: %w", err)
	}
	return nil
}
