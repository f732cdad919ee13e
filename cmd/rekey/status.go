package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/rekey-dev/rekey/internal/cosmos"
	"github.com/rekey-dev/rekey/lease"
	"github.com/rekey-dev/rekey/migrate"
	"github.com/rekey-dev/rekey/migrate/status"
)

func newStatusCommand() *cobra.Command {
	var mig migrationFlags
	var output string
	cmd := &cobra.Command{
		Use:   "status --state DIR|cosmos://DB/CONTAINER [--source ... connection flags]",
		Short: "Show a migration's progress: phase, ranges, checkpoints, lag, dead letters",
		Long: `Show where a migration is: its phase (copying until every feed range has
reached the end of its feed once, then syncing, cutting over while a cutover
runs, then cut over, with what the application writes from then on; rolled
back once a rollback handed the source back), and per feed
range the checkpoint position, items copied, the age of the last checkpoint
and its owner. With connection flags and --source it also probes the source for
each range's lag: the changes waiting after the checkpoint and the age of the
oldest. It reads the state without locking it, so it works while rekey run
runs. Exit codes: 0; 2 when there is no state, the state or its dead letters
cannot be read (a corrupt dead-letter line is named with its file and line
number), or bad flags.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if output != "table" && output != "json" {
				return withExitCode(ExitError, fmt.Errorf("-o %q: want table or json", output))
			}
			var source migrate.Source
			var client *cosmos.Client
			connected := mig.source != "" && (mig.conn.endpoint != "" || mig.conn.connectionString != "")
			if connected || strings.HasPrefix(mig.state, "cosmos://") {
				cfg := mig.conn.target()
				if connected {
					cfg = mig.conn.source()
				}
				c, err := cosmos.NewClient(ctx, cfg)
				if err != nil {
					return withExitCode(ExitError, fmt.Errorf("connect: %w", err))
				}
				defer c.Close()
				client = c
			}
			if connected {
				ref, err := migrate.ParseContainerRef(mig.source)
				if err != nil {
					return withExitCode(ExitError, fmt.Errorf("--source %w", err))
				}
				source = client.Container(ref.Database, ref.Container)
			}
			store, err := openStateReadOnly(ctx, &mig, client)
			if err != nil {
				return readExit(err)
			}
			defer store.Close()
			meta, err := store.ReadMeta(ctx)
			if errors.Is(err, lease.ErrNoMeta) {
				return withExitCode(ExitError, fmt.Errorf("no migration in state %s: start one with rekey run", mig.state))
			}
			if err != nil {
				return withExitCode(ExitError, err)
			}
			dead, err := countDeadLetters(ctx, &mig, client)
			if err != nil {
				return readExit(err)
			}
			st, err := status.Read(ctx, meta, store, dead, source, time.Now())
			if err != nil {
				return withExitCode(ExitRunFailed, err)
			}
			if err := addRollbackStatus(ctx, &mig, client, &st); err != nil {
				return readExit(err)
			}
			if output == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(st)
			}
			printStatus(cmd.OutOrStdout(), st)
			return nil
		},
	}
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

func printStatus(w io.Writer, st status.Report) {
	fmt.Fprintf(w, "migration %s -> %s, key %s\n", st.Meta.Source, st.Meta.Target, strings.Join(st.Meta.KeySpec, " "))
	fmt.Fprintf(w, "phase: %s", st.Phase)
	switch m := st.Meta; {
	case m.Cutover != nil:
		fmt.Fprintf(w, " at %s (%d items, verify digest %s)", m.Cutover.At.Format(time.RFC3339), m.Cutover.Items, m.Cutover.VerifyDigest)
		if m.RolledBack != nil {
			fmt.Fprintf(w, "; rolled back at %s: the application writes to the source again", m.RolledBack.At.Format(time.RFC3339))
		}
	case st.Phase == status.PhaseCuttingOver:
		fmt.Fprintf(w, " (requested by %s at %s; workers stop and wait)", m.CutoverRequest.Owner, m.CutoverRequest.At.Format(time.RFC3339))
	}
	fmt.Fprintln(w)
	if c := st.Meta.Cutover; c != nil && c.Application != nil && st.Meta.RolledBack == nil {
		fmt.Fprintln(w, "the application writes to the target now:")
		printApplicationWrites(w, "  ", c.Application)
	}
	fmt.Fprintf(w, "items copied: %d, target RU: %.0f, dead letters: %d\n", st.Items, st.RU, st.DeadLetters)
	printRanges(w, st.Ranges)
	if rb := st.Rollback; rb != nil {
		phase := rb.Phase
		if phase == status.PhaseCutOver {
			phase = "handed the source back"
		}
		fmt.Fprintf(w, "rollback (%s -> %s): %s; items copied back: %d, dead letters: %d (rekey deadletter list --rollback)\n",
			rb.Meta.Source, rb.Meta.Target, phase, rb.Items, rb.DeadLetters)
		printRanges(w, rb.Ranges)
	}
}

// printRanges writes a table of the ranges of a status.
func printRanges(w io.Writer, ranges []status.Range) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RANGE\tITEMS\tCHECKPOINT\tAGE\tCAUGHT UP\tLAG\tOWNER")
	for _, r := range ranges {
		age, caught, lag := "-", "no", "-"
		if !r.CheckpointedAt.IsZero() {
			age = (time.Duration(r.CheckpointAgeSeconds) * time.Second).String()
		}
		if !r.CaughtUpAt.IsZero() {
			caught = r.CaughtUpAt.Format(time.RFC3339)
		}
		if r.LagItems != nil {
			more := ""
			if r.LagItemsAtLeast {
				more = "+"
			}
			lag = fmt.Sprintf("%d%s items, %s", *r.LagItems, more, time.Duration(*r.LagSeconds)*time.Second)
		}
		owner := r.Owner
		if r.Fence != "" {
			owner = strings.TrimSpace(owner + " (fenced by cutover " + r.Fence + ")")
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Items, r.Position, age, caught, lag, owner)
	}
	tw.Flush()
}
