package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/rekey-dev/rekey/internal/cosmos"
	"github.com/rekey-dev/rekey/lease"
	"github.com/rekey-dev/rekey/migrate/status"
)

func newStatusCommand() *cobra.Command {
	var mig migrationFlags
	var output string
	var watch time.Duration
	cmd := &cobra.Command{
		Use:   "status --state DIR|cosmos://DB/CONTAINER [--source ... connection flags] [--watch [INTERVAL]]",
		Short: "Show a migration's progress: phase, ranges, checkpoints, lag, dead letters",
		Long: `Show where a migration is: its phase (copying until every feed range has
reached the end of its feed once, then syncing, cutting over while a cutover
runs, then cut over, with what the application writes from then on; rolled
back once a rollback handed the source back), and per feed range the change
feed it follows (latest, all-versions, or latest→all: latest until its copy
caught up, then all-versions), the items copied, the age of the last
checkpoint, whether it has caught up and its owner (-o json adds the
checkpoint's position), and any fallback from the all-versions feed (when and
why). An owner that has not renewed its lease within the lease TTL is marked
STALE: that worker is most likely gone, and another takes its leases over.
With connection flags and --source it also shows the percentage of the
source's items copied and probes the source for each range's lag: the changes
waiting after the checkpoint and the age of the oldest. It reads the state
without locking it, so it works while rekey run runs. The table fits 100
columns.

--watch [INTERVAL] redraws the status every INTERVAL (2s by default) until
Ctrl+C, with the rate of the copy and its ETA; with -o json it prints one
document a line per interval.

Exit codes: 0; 130 when --watch is stopped by Ctrl+C; 2 when there is no
state, the state or its dead letters cannot be read (a corrupt dead-letter
line is named with its file and line number), or bad flags.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if output != "table" && output != "json" {
				return withExitCode(ExitError, fmt.Errorf("-o %q: want table or json", output))
			}
			if err := watchInterval(cmd, args, &watch); err != nil {
				return withExitCode(ExitError, err)
			}
			r, err := openStatusReader(ctx, &mig)
			if err != nil {
				return err
			}
			defer r.close()
			if watch > 0 {
				return r.watch(ctx, cmd.OutOrStdout(), output, watch, isTerminal(cmd.OutOrStdout()))
			}
			st, err := r.read(ctx, 0)
			if err != nil {
				return err
			}
			return writeStatus(cmd.OutOrStdout(), st, output)
		},
	}
	cmd.Flags().DurationVar(&watch, "watch", 0, "redraw the status every interval (--watch, --watch 5s or --watch=5s; 2s when no interval is given) until Ctrl+C")
	cmd.Flags().Lookup("watch").NoOptDefVal = defaultWatch.String()
	mig.register(cmd.Flags())
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	return cmd
}

// addRollbackStatus adds the progress of the migration's rollback, when
// one has started, to its status.
func addRollbackStatus(ctx context.Context, mig *migrationFlags, client *cosmos.Client, st *status.Report) error {
	if st.Meta.Cutover == nil {
		return nil
	}
	var docs lease.Documents
	if db, coll, ok := cosmosState(mig.state); ok && client != nil {
		docs = client.LeaseDocuments(db, coll)
	}
	store, err := openRollbackReadOnly(ctx, mig, docs)
	if err != nil || store == nil {
		return err
	}
	defer store.Close()
	meta, err := store.ReadMeta(ctx)
	if err != nil {
		return fmt.Errorf("read the rollback's state: %w", err)
	}
	dl, err := openRollbackDeadLetters(ctx, mig, client, true)
	if err != nil {
		return err
	}
	defer dl.Close()
	n, err := dl.Count()
	if err != nil {
		return err
	}
	rb, err := status.Read(ctx, meta, store, n, nil, time.Now())
	if err != nil {
		return fmt.Errorf("read the rollback's state: %w", err)
	}
	st.WithRollback(rb)
	return nil
}

// countDeadLetters counts a migration's dead items without writing to the
// file; an unreadable or corrupt store is an error naming it.
func countDeadLetters(ctx context.Context, m *migrationFlags, client *cosmos.Client) (int, error) {
	d, err := openDeadLetters(ctx, m, client, true)
	if err != nil {
		return 0, err
	}
	defer d.Close()
	return d.Count()
}

// openStateReadOnly opens the lease store without taking its lock.
func openStateReadOnly(ctx context.Context, m *migrationFlags, client *cosmos.Client) (lease.Store, error) {
	if db, coll, ok := strings.Cut(strings.TrimPrefix(m.state, "cosmos://"), "/"); strings.HasPrefix(m.state, "cosmos://") {
		if !ok || client == nil {
			return nil, fmt.Errorf("--state %s needs the connection flags of the account that holds it", m.state)
		}
		docs := client.LeaseDocuments(db, coll)
		prefix, err := stateLeasePrefix(ctx, m, docs)
		if err != nil {
			return nil, err
		}
		return lease.NewCosmos(docs, prefix)
	}
	s, err := lease.OpenFile(m.state, lease.ReadOnly())
	if errors.Is(err, lease.ErrNoMeta) {
		return nil, fmt.Errorf("no migration in state %s: start one with rekey run", m.state)
	}
	return s, err
}

// statusWidth is the width status's table output fits in.
const statusWidth = 100

// printStatus writes a status for a person, no line wider than
// statusWidth.
func printStatus(w io.Writer, st status.Report) {
	lw := &lineFitter{w: w, width: statusWidth}
	head := fmt.Sprintf("migration %s -> %s, key %s", st.Meta.Source, st.Meta.Target, strings.Join(st.Meta.KeySpec, " "))
	if len([]rune(head)) > statusWidth {
		fmt.Fprintf(lw, "migration %s\n", cutLeft(st.Meta.Source, statusWidth-10))
		fmt.Fprintf(lw, "       -> %s\n", cutLeft(st.Meta.Target, statusWidth-10))
		fmt.Fprintf(lw, "key %s\n", strings.Join(st.Meta.KeySpec, " "))
	} else {
		fmt.Fprintln(lw, head)
	}
	fmt.Fprintf(lw, "phase: %s", st.Phase)
	switch m := st.Meta; {
	case m.Cutover != nil && m.RolledBack != nil:
		fmt.Fprintf(lw, " at %s (cut over at %s)\n  the application writes to the source again", m.RolledBack.At.Format(time.RFC3339), m.Cutover.At.Format(time.RFC3339))
	case m.Cutover != nil:
		fmt.Fprintf(lw, " at %s (%d items, verify digest %s)", m.Cutover.At.Format(time.RFC3339), m.Cutover.Items, m.Cutover.VerifyDigest)
	case st.Phase == status.PhaseCuttingOver:
		fmt.Fprintf(lw, " (requested by %s at %s; workers stop and wait)", m.CutoverRequest.Owner, m.CutoverRequest.At.Format(time.RFC3339))
	}
	fmt.Fprintln(lw)
	if st.Progress != nil {
		fmt.Fprintf(lw, "progress: %s\n", describeProgress(*st.Progress))
	}
	if c := st.Meta.Cutover; c != nil && c.Application != nil && st.Meta.RolledBack == nil {
		fmt.Fprintln(lw, "the application writes to the target now:")
		printApplicationWrites(lw, "  ", c.Application)
	}
	fmt.Fprintf(lw, "items copied: %d, target RU: %.0f, dead letters: %d\n", st.Items, st.RU, st.DeadLetters)
	printRanges(lw, st.Ranges)
	if rb := st.Rollback; rb != nil {
		phase := rb.Phase
		if phase == status.PhaseCutOver {
			phase = "handed the source back"
		}
		fmt.Fprintf(lw, "rollback (%s -> %s): %s\n", rb.Meta.Source, rb.Meta.Target, phase)
		fmt.Fprintf(lw, "  items copied back: %d, dead letters: %d (rekey deadletter list --rollback)\n", rb.Items, rb.DeadLetters)
		printRanges(lw, rb.Ranges)
	}
}

// describeProgress is the overall progress for a person.
func describeProgress(p status.Progress) string {
	text := fmt.Sprintf("%.1f%% of %s source items", p.Percent, count(p.SourceItems))
	if p.ETA != "" {
		text += ", ETA " + p.ETA
	}
	if p.ItemsPerSec > 0 {
		text += fmt.Sprintf(", %s items/s", count(int64(p.ItemsPerSec)))
	}
	return text
}

// printRanges writes a table of the ranges of a status: the checkpoint's
// age, whether the range caught up, its lag when probed, and its owner,
// marked stale when the owner has not renewed the lease within its TTL.
func printRanges(w io.Writer, ranges []status.Range) {
	// The feed is a line of its own when every range follows the same
	// one, a column when they differ: the table keeps its 100 columns.
	feed, same := "", true
	for i, r := range ranges {
		if i == 0 {
			feed = feedOf(r)
		}
		same = same && feedOf(r) == feed
	}
	if same && feed != "" {
		fmt.Fprintf(w, "change feed: %s\n", describeFeed(feed))
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if same {
		fmt.Fprintln(tw, "RANGE\tITEMS\tCHECKPOINT\tCAUGHT UP\tLAG\tOWNER")
	} else {
		fmt.Fprintln(tw, "RANGE\tFEED\tITEMS\tCHECKPOINT\tCAUGHT UP\tLAG\tOWNER")
	}
	for _, r := range ranges {
		age, caught, lag := "-", "no", "-"
		if !r.CheckpointedAt.IsZero() {
			age = (time.Duration(r.CheckpointAgeSeconds) * time.Second).String() + " ago"
		}
		if !r.CaughtUpAt.IsZero() {
			caught = "yes"
		}
		if r.LagItems != nil {
			more := ""
			if r.LagItemsAtLeast {
				more = "+"
			}
			lag = fmt.Sprintf("%s%s items, %s", count(*r.LagItems), more, time.Duration(*r.LagSeconds)*time.Second)
		}
		if r.OutOfRetention {
			lag = "out of retention"
		}
		owner := r.Owner
		switch {
		case r.Fence != "":
			owner = strings.TrimSpace(owner + " (fenced)")
		case r.Stale:
			owner = "STALE " + owner // first: a long name is cut at the end
		case owner == "":
			owner = "-"
		}
		rng := shortRange(r.Min, r.Max)
		if !same {
			rng += "\t" + feedOf(r)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", rng, count(r.Items), age, caught, lag, owner)
	}
	tw.Flush()
	for _, r := range ranges {
		var note string
		switch {
		case r.Fallback != "":
			note = fmt.Sprintf("range %s fell back from the all-versions feed at %s: %s; deletes and key changes it missed are left to 'rekey verify --fix' and cutover",
				shortRange(r.Min, r.Max), r.FallbackAt.Format(time.RFC3339), r.Fallback)
		case r.OutOfRetention:
			note = fmt.Sprintf("range %s: its all-versions position is older than the source's change feed retention; the next run falls back to the latest-version feed",
				shortRange(r.Min, r.Max))
		default:
			continue
		}
		for _, line := range wrapWords(note, statusWidth, "  ") {
			fmt.Fprintln(w, line)
		}
	}
}

// describeFeed says what a feed label of feedOf means.
func describeFeed(feed string) string {
	switch feed {
	case feedLatestThenAll:
		return "latest-version until each range's copy has caught up, then all-versions-and-deletes"
	case lease.ModeAllVersions:
		return "all-versions-and-deletes"
	case lease.ModeLatest:
		return "latest-version"
	}
	return feed
}

// feedLatestThenAll labels a range that follows the latest-version feed
// until its copy caught up, then the all-versions feed.
const feedLatestThenAll = "latest→all"

// feedOf names the change feed a range follows: latest, all-versions, or
// latest→all (latest until its copy caught up, then all-versions).
func feedOf(r status.Range) string {
	if r.SwitchesToAllVersions {
		return feedLatestThenAll
	}
	return r.Mode
}

// wrapWords breaks text into lines of at most width columns at spaces,
// every line after the first indented; a word longer than a line stays
// whole (the lineFitter cuts it).
func wrapWords(text string, width int, indent string) []string {
	var lines []string
	line := ""
	for _, word := range strings.Fields(text) {
		switch {
		case line == "":
			line = word
			if len(lines) > 0 {
				line = indent + word
			}
		case utf8.RuneCountInString(line)+1+utf8.RuneCountInString(word) > width:
			lines = append(lines, line)
			line = indent + word
		default:
			line += " " + word
		}
	}
	if line != "" {
		lines = append(lines, line)
	}
	return lines
}

// cutLeft keeps the last width columns of s, an ellipsis first: of
// account/database/container, the container matters most.
func cutLeft(s string, width int) string {
	r := []rune(s)
	if len(r) <= width {
		return s
	}
	return "…" + string(r[len(r)-width+1:])
}

// lineFitter writes through to w, cutting every line longer than width
// columns to width-1 and an ellipsis: an owner name or a container path
// never makes a line wrap.
type lineFitter struct {
	w       io.Writer
	width   int
	partial []byte
}

func (f *lineFitter) Write(p []byte) (int, error) {
	f.partial = append(f.partial, p...)
	for {
		i := bytes.IndexByte(f.partial, '\n')
		if i < 0 {
			return len(p), nil
		}
		line := []rune(string(f.partial[:i]))
		if len(line) > f.width {
			line = append(line[:f.width-1], '…')
		}
		if _, err := io.WriteString(f.w, string(line)+"\n"); err != nil {
			return 0, err
		}
		f.partial = f.partial[i+1:]
	}
}
