package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/rekey-dev/rekey/lease"
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
	fmt.Fprintf(w, "  items written     %d (created %d, updated %d, already there %d; %d batches, %d bulk requests)\n", s.Written(), s.Created, s.Updated, s.Unchanged, s.Batches, s.BulkRequests)
	now := strconv.Itoa(sum.DeadLetters)
	if sum.DeadLetters < 0 {
		now = "(could not be counted; see rekey status)"
	}
	fmt.Fprintf(w, "  dead-lettered     %s now in %s (this run: %d, of which collisions %d)\n", now, deadPath, s.DeadLettered, s.Collisions)
	feed := "latest-version"
	if sum.AllVersions {
		feed = "all-versions-and-deletes (after each range's copy)"
	}
	fmt.Fprintf(w, "  change feed       %s\n", feed)
	if sum.AllVersions {
		fmt.Fprintf(w, "  copies deleted    %d (deleted source items and old copies of key changes; %d searches for copies); expiries left to the target's TTL %d\n", s.Deleted, s.Lookups, s.TTLSkipped)
	}
	fmt.Fprintf(w, "  request units     target %.0f (creates %.0f, conflict checks %.0f, replaces %.0f, deletes %.0f, searches %.0f); source %.0f\n", s.TargetRU(), s.CreateRU, s.CheckRU, s.ReplaceRU, s.DeleteRU, s.LookupRU, s.SourceRU)
	fmt.Fprintf(w, "  throttled (429)   %d (target: %d of %d requests, %.2f%%; source: %d); transient retries %d\n",
		s.Throttled, s.WritesThrottled, s.WriteRequests, 100*s.ThrottledShare(), s.Throttled-s.WritesThrottled, s.Retries)
	if sum.Fallbacks > 0 {
		fmt.Fprintf(w, "  %d feed ranges fell back from the all-versions feed (rekey status says when and why): deletes and key changes they missed are left to 'rekey verify --fix' and cutover\n", sum.Fallbacks)
	}
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
	// -1 when it could not be counted as the run stopped.
	DeadLetters     int    `json:"deadLetters"`
	DeadLetterStore string `json:"deadLetterStore"`
	// Feed is the change feed the run synced from: "latest" or
	// "all-versions" (each range after its copy); Fallbacks the ranges
	// that fell back from the all-versions feed (rekey status says when
	// and why).
	Feed      string `json:"feed,omitempty"`
	Fallbacks int    `json:"fallbacks,omitempty"`
}

// writeRunJSON writes the run's report: sum is its last Run's summary
// (nil when it never ran), err what the command returns.
func writeRunJSON(w io.Writer, sum *pipeline.Summary, err error, deadPath string) error {
	rep := runReport{DeadLetterStore: deadPath}
	if sum != nil {
		rep.Elapsed = sum.Stats.Elapsed.Round(time.Millisecond).String()
		rep.Ranges, rep.DeadLetters = sum.Ranges, sum.DeadLetters
		rep.Stats = &sum.Stats
		rep.Feed, rep.Fallbacks = lease.ModeLatest, sum.Fallbacks
		if sum.AllVersions {
			rep.Feed = lease.ModeAllVersions
		}
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
