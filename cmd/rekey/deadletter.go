package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/rekey-dev/rekey/internal/cosmos"
	"github.com/rekey-dev/rekey/migrate"
	"github.com/rekey-dev/rekey/migrate/pacing"
	"github.com/rekey-dev/rekey/migrate/pipeline"
)

// Exit code of `rekey deadletter replay` when some items still fail.
const ExitStillDead = 1

func newDeadLetterCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "deadletter",
		Short: "List or replay the items the migration could not write",
	}
	cmd.AddCommand(newDeadLetterListCommand(), newDeadLetterReplayCommand())
	return cmd
}

func newDeadLetterListCommand() *cobra.Command {
	var mig migrationFlags
	var output string
	var ofRollback bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "Show the items that could not be written, with why",
		Long: `Show the items currently in the dead-letter file: their source id and key, the
kind of failure (missing-field, wrong-type, key-conflict, key-too-large,
invalid-id, not-object, collision, rejected, too-large) and the reason. Items
written since (by a replay, or a newer version from the change feed) are not
shown. The listing streams: memory holds one item at a time, whatever the
size of the file. Exit codes: 0; 2 when the dead letters cannot be read (a
corrupt line is named with its file and line number). With --rollback, the
items a rollback could not write back into the source (conflicts: source items
changed after the cutover by someone else; target items without the source
key's fields), named by their id and their key in the source.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var client *cosmos.Client
			if _, _, ok := cosmosState(mig.state); ok && mig.deadLetter == "" {
				c, err := cosmos.NewClient(cmd.Context(), mig.conn.target())
				if err != nil {
					return withExitCode(ExitError, fmt.Errorf("connect: %w", err))
				}
				defer c.Close()
				client = c
			}
			if output != "table" && output != "json" {
				return withExitCode(ExitError, fmt.Errorf("-o %q: want table or json", output))
			}
			open := openDeadLetters
			if ofRollback {
				open = openRollbackDeadLetters
			}
			store, err := open(cmd.Context(), &mig, client, true)
			if err != nil {
				return readExit(err)
			}
			defer store.Close()
			if err := listDeadLetters(cmd.OutOrStdout(), store, output); err != nil {
				return withExitCode(ExitError, err)
			}
			return nil
		},
	}
	mig.register(cmd.Flags())
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	cmd.Flags().BoolVar(&ofRollback, "rollback", false, "list the rollback's dead letters")
	return cmd
}

// writeDeadLettersJSON streams the dead letters as one JSON document, an
// item a line.
func writeDeadLettersJSON(out io.Writer, store migrate.DeadLetterStore) error {
	w := bufio.NewWriter(out)
	if _, err := w.WriteString("{\n  \"items\": ["); err != nil {
		return err
	}
	n := 0
	err := store.Each(func(e migrate.DeadLetter) error {
		b, err := json.Marshal(e)
		if err != nil {
			return fmt.Errorf("encode dead letter %s: %w", e.SourceID, err)
		}
		sep := "\n    "
		if n > 0 {
			sep = ",\n    "
		}
		n++
		w.WriteString(sep)
		_, err = w.Write(b)
		return err
	})
	if err != nil {
		return err
	}
	end := "],\n"
	if n > 0 {
		end = "\n  ],\n"
	}
	fmt.Fprintf(w, "%s  \"count\": %d\n}\n", end, n)
	return w.Flush()
}

// tableBlock is how many rows of the dead-letter table are aligned
// together: the table streams a block at a time.
const tableBlock = 500

// listDeadLetters writes the store's dead items as a table, or as one JSON
// document {"items": [...], "count": N}, one item in memory at a time:
// the array is written item by item, never built.
func listDeadLetters(out io.Writer, store migrate.DeadLetterStore, output string) error {
	n := 0
	if output == "json" {
		return writeDeadLettersJSON(out, store)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	err := store.Each(func(e migrate.DeadLetter) error {
		if n%tableBlock == 0 {
			if err := tw.Flush(); err != nil {
				return err
			}
			fmt.Fprintln(tw, "TIME\tSOURCE ID\tSOURCE KEY\tKIND\tREASON")
		}
		n++
		_, err := fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", e.Time.Format(time.RFC3339), e.SourceID, e.SourceKey, e.Kind, e.Reason)
		return err
	})
	if err != nil {
		return err
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if n == 0 {
		_, err = fmt.Fprintln(out, "no dead letters")
	} else {
		_, err = fmt.Fprintf(out, "%d items\n", n)
	}
	return err
}

func newDeadLetterReplayCommand() *cobra.Command {
	var mig migrationFlags
	cmd := &cobra.Command{
		Use:   "replay --source ... --target ... --key ...",
		Short: "Copy dead-lettered items again, after their cause was fixed",
		Long: `Re-run every dead-lettered item through the key transform and the writer, after
you fixed the cause: a key spec with a default for a missing field (only
defaults may change, and a default that keys of written items used may not:
the state refuses any other change of --key), or the item itself trimmed or
corrected in the source. Each item is read again from the source and
written, its copies under other keys removed; the source is read once more
after the write, and an item that changed in between is replayed again (a
worker may have copied the newer version meanwhile), so a replay never leaves
an outdated version. Items the source no longer has lose their copies. Items
that succeed leave the dead-letter file; an item that changed during every
attempt keeps its dead letter ("changing").

Stop 'rekey run' first when the state is a directory (it holds the state's
lock); with a cosmos:// state it may run beside the workers.
It needs an existing migration, and refuses once the migration is cut over.
Exit codes: 0 every item was written or is gone from the source; 1 some still
fail (listed by 'rekey deadletter list'); 2 bad flags or state, no migration, or
cut over.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			mg, err := mig.connect(ctx)
			if err != nil {
				return exitFor(err)
			}
			defer mg.close()
			if err := mg.openExistingState(ctx); err != nil {
				return exitFor(err)
			}
			entries, err := mg.dead.List()
			if err != nil {
				return withExitCode(ExitError, err)
			}
			r := &pipeline.Runner{Source: mg.source, Transformer: mg.tr, Store: mg.store, DeadLetters: mg.dead,
				Writes: mg.writePath(ctx, pacing.Config{}, slog.Default())}
			res, err := r.Replay(ctx, entries)
			if refusedByPhase(err) {
				return exitFor(err)
			}
			remain, cerr := mg.dead.Count()
			if cerr != nil {
				return withExitCode(ExitRunFailed, errors.Join(err, cerr))
			}
			fmt.Fprintf(cmd.OutOrStdout(), "replayed %d: %d written, %d gone from the source, %d still failing, %d changing; %d dead letters remain in %s\n",
				res.Replayed, res.Written, res.SourceGone, res.StillFailing, res.Changing, remain, mg.dead.Where())
			if err != nil {
				return withExitCode(ExitRunFailed, err)
			}
			if remain > 0 {
				return withExitCode(ExitStillDead, nil)
			}
			return nil
		},
	}
	mig.register(cmd.Flags())
	return cmd
}
