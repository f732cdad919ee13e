package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rekey-dev/rekey/lease"
	"github.com/rekey-dev/rekey/migrate"
	"github.com/rekey-dev/rekey/migrate/cutover"
	"github.com/rekey-dev/rekey/migrate/pacing"
	"github.com/rekey-dev/rekey/migrate/rollback"
	"github.com/rekey-dev/rekey/migrate/verify"
)

func newRollbackCutoverCommand() *cobra.Command {
	o := &cutoverOptions{}
	cmd := &cobra.Command{
		Use:   "cutover --source ... --target ... --key ... [--quiet-period 30s] [--timeout 15m]",
		Short: "Hand the source back to the application: drain the rollback, verify, fix, record",
		Long: `The rollback's cutover: the reverse of rekey cutover. Stop the application's
writes to the target first; then it

  1. refuses until every target feed range of the rollback has reached the end
     of its feed once (keep rekey rollback going);
  2. requests the cutover in the rollback's state: running rekey rollback
     workers stop, and it waits for them;
  3. drains every target feed range into the source itself, and waits until
     the target has had no changes for --quiet-period;
  4. refuses while the rollback's dead letters hold items (conflicts: source
     items changed after the cutover by someone else), unless
     --accept-dead-letter;
  5. compares every source item, with the new key's fields added, against the
     target, and fixes the source: it deletes the source items whose target
     copy the application deleted (the change feed carries no deletes) and
     writes back what differs, by the rollback's rules (never a source item
     someone else changed after the cutover); it compares again, and reads the
     target's change feed after marks taken before, until the target stayed
     quiet across the comparison;
  6. records in both states that the source is the application's again, and
     prints what to do next.

--dry-run checks without fixing or recording. Exit codes as rekey cutover:
0 rolled back; 1 differences remain or it failed; 2 bad flags or state, no
cutover to roll back, or already rolled back; 3 refused.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runRollbackCutover(cmd, o)
		},
	}
	o.register(cmd.Flags(), "the target", "hand the source back although some items could not go back (their dead letters say which)")
	return cmd
}

func runRollbackCutover(cmd *cobra.Command, o *cutoverOptions) error {
	ctx := cmd.Context()
	mg, err := o.open(ctx)
	if err != nil {
		return err
	}
	defer mg.close()
	rb, err := openRollback(ctx, mg, mg.store, pacing.Config{})
	if err != nil {
		return exitFor(err)
	}
	defer rb.close()
	if done, err := rb.recordedCutover(ctx); err != nil {
		return exitFor(err)
	} else if done != nil {
		// A rollback's cutover recorded in its own state, whose record in
		// the migration's state failed: record it now.
		if err := rollback.RecordRolledBack(ctx, mg.store, *done); err != nil {
			return exitFor(err)
		}
		fmt.Fprintf(cmd.OutOrStdout(), "the rollback's cutover was recorded at %s; recorded it in the migration's state too\n", done.At.Format(time.RFC3339))
		return nil
	}
	if _, err := startMonitor(ctx, o.monitor, rb.watched(mg, false)); err != nil {
		return exitFor(err)
	}
	app := applicationWrites(ctx, mg.target, rb.reverse)
	g := &cutover.Gate{Runner: rb.runner, Verifier: reverseCheck(mg, rb), Rollback: true}
	rep, err := o.runGate(cmd, g, app)
	if err == nil && rep.Recorded {
		err = rollback.RecordRolledBack(ctx, mg.store, *rep.Cutover)
	}
	if err := cutoverExit(err, "rollback cutover"); err != nil {
		return err
	}
	if o.output == "table" {
		printRolledBack(cmd.OutOrStdout(), mg, rep, o.dryRun)
	}
	return nil
}

// recordedCutover is the rollback's cutover as its own state records it;
// nil before it.
func (rb *rollbackState) recordedCutover(ctx context.Context) (*lease.Cutover, error) {
	meta, err := rb.store.ReadMeta(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the rollback's state: %w", err)
	}
	return meta.Cutover, nil
}

// cutoverExit maps a cutover's error to its exit code (rekey cutover's).
func cutoverExit(err error, what string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, migrate.ErrCutOver):
		return exitFor(err)
	case errors.Is(err, cutover.ErrNotCaughtUp), errors.Is(err, cutover.ErrStillWriting), errors.Is(err, cutover.ErrDeadLettersPending),
		errors.Is(err, migrate.ErrCutoverInProgress), errors.Is(err, cutover.ErrWorkersRunning):
		return withExitCode(ExitRefused, fmt.Errorf("%s refused: %w", what, err))
	case errors.Is(err, cutover.ErrCopyDiffers):
		return withExitCode(ExitDiffers, fmt.Errorf("%s refused: %w", what, err))
	}
	return exitFor(err)
}

// printRolledBack tells the user what to do after the rollback's cutover.
func printRolledBack(w io.Writer, mg *migration, rep *cutover.Report, dryRun bool) {
	if dryRun {
		fmt.Fprintf(w, "rollback cutover --dry-run: every check passed (%d items verified); nothing was fixed or recorded\n", rep.Verify.Matched)
		printWouldFix(w, "rollback cutover", rep)
		return
	}
	fmt.Fprintf(w, "rolled back at %s: %d items verified, digest %s\n", rep.At.Format(time.RFC3339), rep.Verify.Matched, rep.Verify.Digest)
	fmt.Fprintf(w, "next:\n  1. point the application back at %s and have it write the source's key again:\n", mg.srcRef)
	if rep.Cutover != nil && rep.Cutover.Application != nil {
		printApplicationWrites(w, "     ", rep.Cutover.Application)
	}
	fmt.Fprintf(w, `  2. keep %s read-only until the application runs well on the source; 'rekey status' shows "rolled back"
  3. then delete %s and the migration state (%s); to migrate again, start a new migration with another --state
`, mg.dstRef, mg.dstRef, mg.stateName)
}

func newRollbackVerifyCommand() *cobra.Command {
	var mig migrationFlags
	var output string
	var recheckDelay time.Duration
	cmd := &cobra.Command{
		Use:   "verify --source ... --target ... --key ...",
		Short: "Compare the source with the target mapped back, during or after a rollback",
		Long: `Compare every source item, with the new key's fields added, against the target:
clean exactly when the source matches the target mapped back (the key's
fields rekey added aside). Differences are named as rekey verify names them,
seen from the source: missing (deleted in the target; the rollback's cutover
deletes it from the source), extra (created in the target and not yet copied
back), changed, orphaned. It reads only, and also counts the rollback's dead
letters. Exit codes: 0 clean; 1 differs; 2 bad flags or state; 3 could not
complete.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			mg, err := mig.connect(ctx)
			if err != nil {
				return exitFor(err)
			}
			defer mg.close()
			if err := requireCutover(ctx, mg); err != nil {
				return exitFor(err)
			}
			dead, err := openRollbackDeadLetters(ctx, &mig, mg.dstClient, true)
			if err != nil {
				return readExit(err)
			}
			defer dead.Close()
			forwardDead, err := openDeadLetters(ctx, &mig, mg.dstClient, true)
			if err != nil {
				return readExit(err)
			}
			defer forwardDead.Close()
			rb := &rollbackState{applier: &rollback.Applier{Dead: dead}, forwardDead: forwardDead}
			rep, err := reverseCheck(mg, rb).Verify(ctx, verify.Config{RecheckDelay: recheckDelay})
			if err != nil {
				return withExitCode(ExitVerifyFailed, err)
			}
			if rep.DeadLetters, err = dead.Count(); err != nil {
				return withExitCode(ExitVerifyFailed, err)
			}
			if output == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				if err := enc.Encode(rep); err != nil {
					return err
				}
			} else {
				var b strings.Builder
				printVerify(&b, rep)
				fmt.Fprint(cmd.OutOrStdout(), strings.Replace(b.String(), "rekey verify: the copy", "rekey rollback verify: the source", 1))
			}
			if !rep.Clean {
				return withExitCode(ExitDiffers, nil)
			}
			return nil
		},
	}
	mig.register(cmd.Flags())
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	cmd.Flags().DurationVar(&recheckDelay, "recheck-delay", verify.DefaultRecheckDelay, "wait before rechecking differences (negative: no recheck)")
	return cmd
}

// requireCutover refuses, with a usage error, a state that records no
// cutover of this migration: there is nothing to compare the source with.
func requireCutover(ctx context.Context, mg *migration) error {
	store, err := openStateReadOnly(ctx, mg.flags, mg.dstClient)
	if err != nil {
		return usageErr(err)
	}
	defer store.Close()
	meta, err := store.ReadMeta(ctx)
	switch {
	case errors.Is(err, lease.ErrNoMeta):
		return usageErrf("no migration in state %s: nothing to roll back", mg.flags.state)
	case err != nil:
		return fmt.Errorf("read state %s: %w", mg.flags.state, err)
	case meta.Cutover == nil:
		return usageErr(fmt.Errorf("%w: nothing to roll back; the application still writes to the source", rollback.ErrNotCutOver))
	}
	return checkIdentity(mg, meta)
}

// openRollbackReadOnly opens a rollback's state without locking it, for
// rekey status; nil when the migration has none.
func openRollbackReadOnly(ctx context.Context, m *migrationFlags, docs lease.Documents) (lease.Store, error) {
	if _, _, ok := cosmosState(m.state); ok {
		src, err1 := migrate.ParseContainerRef(m.source)
		dst, err2 := migrate.ParseContainerRef(m.target)
		if docs == nil || err1 != nil || err2 != nil {
			return nil, nil
		}
		store, err := lease.NewCosmos(docs, migrate.LeasePrefix(dst, src))
		if err != nil {
			return nil, err
		}
		if _, err := store.ReadMeta(ctx); errors.Is(err, lease.ErrNoMeta) {
			return nil, nil
		} else if err != nil {
			return nil, err
		}
		return store, nil
	}
	store, err := lease.OpenFile(rollbackStateName(m.state), lease.ReadOnly())
	if errors.Is(err, lease.ErrNoMeta) {
		return nil, nil
	}
	return store, err
}
