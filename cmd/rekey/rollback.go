package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/rekey-dev/rekey/internal/cosmos"
	"github.com/rekey-dev/rekey/lease"
	"github.com/rekey-dev/rekey/migrate"
	"github.com/rekey-dev/rekey/migrate/pacing"
	"github.com/rekey-dev/rekey/migrate/pipeline"
	"github.com/rekey-dev/rekey/migrate/rollback"
	"github.com/rekey-dev/rekey/migrate/verify"
	"github.com/rekey-dev/rekey/transform"
)

type rollbackOptions struct {
	mig             migrationFlags
	untilCaughtUp   bool
	untilCutover    bool
	pageSize        int
	pollInterval    time.Duration
	leaseTTL        time.Duration
	shutdownTimeout time.Duration
	maxRU           float64
	maxConcurrency  int
	monitor         monitorFlags
}

func newRollbackCommand() *cobra.Command {
	o := &rollbackOptions{}
	cmd := &cobra.Command{
		Use:   "rollback --source DB/CONTAINER --target DB/CONTAINER --key SPEC [--until-caught-up]",
		Short: "After a cutover, copy what the application writes to the target back into the source",
		Long: `After a cutover the application writes to the target. If you must switch it
back, rekey rollback copies those writes into the source, so that no write is
lost: it follows the target's change feed from where the cutover recorded it,
one lease per target feed range, and writes each change back into the source
under the source's key, read from the item's own fields (rekey only adds
fields, so every item the migration copied has them; the application must keep
writing them). It runs like rekey run: its own leases and dead letters (in
the state directory's rollback/ directory, or under a prefix of their own in
the lease container), resumable, shared by several workers on a cosmos://
state, --until-caught-up to stop once every range has reached the end of its
feed. 'rekey status' shows its progress.

It writes by the forward copy's rules: create first; on a conflict, replace
only the migration's copy of the item, that is a source item as the cutover
left it (its _ts not after the newest the cutover saw) or as the rollback's own
last write left it (each write's version is recorded in the rollback's state).
A source item that anyone else changed after the cutover is never overwritten:
it is dead-lettered as a conflict, for you to decide. The latest-version change
feed carries no deletes: the application's deletes are applied by the
rollback's cutover, which deletes the source items whose target copy is gone
(by the same rules).

Then, once the application's writes to the target are stopped, 'rekey
rollback cutover' drains, verifies and fixes the source against the target,
and records that the source is the application's again; 'rekey rollback
verify' compares them on its own.

It is a command of its own, not 'rekey run --reverse': it writes to the
container the application wrote before the cutover, with rules and a state of
its own, after the cutover that every forward command refuses; a name of its
own keeps it from being run by mistake, and says what it does in a log or a
Job spec.

Exit codes: 0 caught up (--until-caught-up) or stopped for the rollback's
cutover; 1 the rollback failed; 2 bad flags or state, no cutover to roll back,
or already rolled back; 130 stopped by SIGINT/SIGTERM after checkpointing.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runRollback(cmd, o)
		},
	}
	f := cmd.Flags()
	o.mig.register(f)
	f.BoolVar(&o.untilCaughtUp, "until-caught-up", false, "exit 0 once every target feed range has reached the end of its feed")
	f.BoolVar(&o.untilCutover, "until-cutover", false, "keep syncing until the rollback's cutover is recorded, then exit 0 (also when started after it)")
	f.IntVar(&o.pageSize, "page-size", pipeline.DefaultPageSize, "changes per change-feed read")
	f.DurationVar(&o.pollInterval, "poll-interval", pipeline.DefaultPollInterval, "wait between reads of a range that has caught up")
	f.DurationVar(&o.leaseTTL, "lease-ttl", pipeline.DefaultLeaseTTL, "with a cosmos:// state: how long a worker's lease lasts without renewal")
	f.DurationVar(&o.shutdownTimeout, "shutdown-timeout", pipeline.DefaultShutdownTimeout, "how long in-flight writes may finish after SIGINT/SIGTERM")
	f.Float64Var(&o.maxRU, "max-ru", 0, "cap on the RU/s spent writing the source (0: no cap)")
	f.IntVar(&o.maxConcurrency, "max-concurrency", 0, "cap on the writes in flight across all partitions of the source (0: none; each partition's follows its pace and latency)")
	o.monitor.register(f)
	cmd.AddCommand(newRollbackCutoverCommand(), newRollbackVerifyCommand())
	return cmd
}

// rollbackState is what every rollback command works on: the forward
// migration's cutover record, the rollback's own state, and its runner.
type rollbackState struct {
	cut     *lease.Cutover
	reverse *transform.Transformer
	store   lease.Store // the rollback's own
	dead    migrate.DeadLetterStore
	// forwardDead is the forward migration's dead letters, read only: the
	// source items it never copied, which a rollback leaves as they are.
	forwardDead migrate.DeadLetterStore
	applier     *rollback.Applier
	runner      *pipeline.Runner
}

func (rb *rollbackState) close() {
	if rb.dead != nil {
		_ = rb.dead.Close()
	}
	if rb.forwardDead != nil {
		_ = rb.forwardDead.Close()
	}
	if rb.store != nil {
		_ = rb.store.Close()
	}
}

// openRollback opens the rollback of the migration mg names: the forward
// meta (read from forward, or from the state read-only when forward is
// nil) must record a cutover with the target's feed positions; the
// rollback's state is created beside the forward one when absent, with
// its leases at those positions.
func openRollback(ctx context.Context, mg *migration, forward lease.Store, flow pacing.Config) (*rollbackState, error) {
	if forward == nil {
		ro, err := openStateReadOnly(ctx, mg.flags, mg.dstClient)
		if err != nil {
			return nil, usageErr(err)
		}
		defer ro.Close()
		forward = ro
	}
	meta, err := forward.ReadMeta(ctx)
	switch {
	case errors.Is(err, lease.ErrNoMeta):
		return nil, usageErrf("no migration in state %s: nothing to roll back (nothing was created)", mg.flags.state)
	case err != nil:
		return nil, fmt.Errorf("read state %s: %w", mg.flags.state, err)
	}
	if err := checkIdentity(mg, meta); err != nil {
		return nil, err
	}
	cut, err := rollback.Cutover(meta)
	if err != nil {
		return nil, usageErr(err)
	}
	rb := &rollbackState{cut: cut}
	if rb.reverse, err = rollback.Reverse(mg.tr); err != nil {
		return nil, usageErr(err)
	}
	ledger, err := rb.openState(ctx, mg)
	if err != nil {
		rb.close()
		return nil, err
	}
	if _, err := migrate.OpenMeta(ctx, rb.store, rollback.Meta(meta, rb.reverse, cut), rollbackStateName(mg.flags.state)); err != nil {
		rb.close()
		return nil, usageErr(err)
	}
	if err := rollback.StartLeases(ctx, rb.store, cut); err != nil {
		rb.close()
		return nil, err
	}
	flow.ProvisionedRU = targetThroughput(ctx, mg.srcClient, mg.srcRef)
	writes := pipeline.NewWritePath(mg.source, pipeline.WritePathConfig{Flow: flow, Log: slog.Default()})
	stats := &pipeline.Stats{}
	rb.applier = &rollback.Applier{Reverse: rb.reverse, Writer: writes.NewWriterCounting(rb.reverse, rb.dead, nil, stats), Dead: rb.dead, Ledger: ledger, Horizon: cut.SourceHorizon}
	rb.runner = &pipeline.Runner{Source: mg.target, Transformer: rb.reverse, Store: rb.store, DeadLetters: rb.dead, Writes: writes, Applier: rb.applier, Stats: stats}
	return rb, nil
}

// checkIdentity refuses a state that records another migration.
func checkIdentity(mg *migration, meta lease.Meta) error {
	if meta.Source != mg.identities[0] || meta.Target != mg.identities[1] {
		return usageErrf("state %s records the migration %s -> %s, not %s -> %s", mg.flags.state, meta.Source, meta.Target, mg.identities[0], mg.identities[1])
	}
	return nil
}

// openState opens the rollback's own state and dead letters: the
// directory rollback/ of a state directory, or the documents under the
// rollback's own prefix (its lease prefix of target to source) in the
// lease container. It returns the ledger of the rollback's writes.
func (rb *rollbackState) openState(ctx context.Context, mg *migration) (ledger rollback.Ledger, err error) {
	state := mg.flags.state
	if db, coll, ok := cosmosState(state); ok {
		docs := mg.dstClient.LeaseDocuments(db, coll)
		prefix := migrate.LeasePrefix(mg.dstRef, mg.srcRef)
		if rb.store, err = lease.NewCosmos(docs, prefix); err != nil {
			return nil, fmt.Errorf("open the rollback's state: %w", err)
		}
		ledger = rollback.NewDocLedger(docs, prefix)
	} else {
		dir := rollbackStateName(state)
		store, err := lease.OpenFile(dir)
		if errors.Is(err, lease.ErrLocked) {
			return nil, usageErr(err)
		} else if err != nil {
			return nil, err
		}
		rb.store = store
		if ledger, err = rollback.OpenFileLedger(filepath.Join(dir, "written")); err != nil {
			return nil, err
		}
	}
	if rb.dead, err = openRollbackDeadLetters(ctx, mg.flags, mg.dstClient, false); err != nil {
		return nil, err
	}
	if rb.forwardDead, err = openDeadLetters(ctx, mg.flags, mg.dstClient, true); err != nil {
		return nil, fmt.Errorf("open the forward migration's dead letters: %w", err)
	}
	return ledger, nil
}

// openRollbackDeadLetters opens the rollback's dead letters: the rollback
// is a migration from the target to the source, so in a lease container
// they are under its own prefix, and in a state directory in rollback/.
func openRollbackDeadLetters(ctx context.Context, m *migrationFlags, client *cosmos.Client, readOnly bool) (migrate.DeadLetterStore, error) {
	rm := *m
	rm.deadLetter = ""
	if _, _, ok := cosmosState(m.state); ok {
		rm.source, rm.target = m.target, m.source
	} else {
		rm.state = rollbackStateName(m.state)
	}
	return openDeadLetters(ctx, &rm, client, readOnly)
}

// rollbackStateName names the rollback's state: the directory rollback/ in
// a state directory, or the lease container of a cosmos:// state.
func rollbackStateName(state string) string {
	if _, _, ok := cosmosState(state); ok {
		return state
	}
	return filepath.Join(state, "rollback")
}

func runRollback(cmd *cobra.Command, o *rollbackOptions) error {
	ctx := cmd.Context()
	cfg := pipeline.RunConfig{PageSize: o.pageSize, PollInterval: o.pollInterval, UntilCaughtUp: o.untilCaughtUp,
		ShutdownTimeout: o.shutdownTimeout, Owner: owner(), LeaseTTL: o.leaseTTL}
	_, _, cfg.Shared = cosmosState(o.mig.state)
	flow := pacing.Config{MaxConcurrency: o.maxConcurrency, MaxRU: o.maxRU}
	switch {
	case o.untilCutover && o.untilCaughtUp:
		return withExitCode(ExitError, errors.New("--until-cutover and --until-caught-up: give one"))
	case o.untilCutover && !cfg.Shared:
		return withExitCode(ExitError, fmt.Errorf("--until-cutover needs a cosmos:// state; --state %s is a directory, which the rollback locks", o.mig.state))
	}
	if err := errors.Join(cfg.Validate(), flow.Validate()); err != nil {
		return withExitCode(ExitError, fmt.Errorf("flags: %w", err))
	}
	mg, err := o.mig.connect(ctx)
	if err != nil {
		return exitFor(err)
	}
	defer mg.close()
	rb, err := openRollback(ctx, mg, nil, flow)
	if errors.Is(err, rollback.ErrRolledBack) && o.untilCutover {
		fmt.Fprintln(cmd.OutOrStdout(), "rekey rollback: the migration is rolled back; nothing to do (--until-cutover)")
		return nil
	}
	if err != nil {
		return exitFor(err)
	}
	defer rb.close()
	slog.Info("rollback starting: copying the application's writes to the target back into the source",
		"target", mg.dstRef.String(), "source", mg.srcRef.String(), "cutover", rb.cut.At, "state", rollbackStateName(mg.flags.state))
	if _, err := startMonitor(ctx, o.monitor, rb.watched(mg, false)); err != nil {
		return exitFor(err)
	}
	return work(ctx, worker{
		name: "rekey rollback", runner: rb.runner, cfg: cfg, store: rb.store, untilCutover: o.untilCutover, out: cmd.OutOrStdout(),
		summary: func(sum pipeline.Summary, _ bool) { printRollbackSummary(cmd.OutOrStdout(), sum, rb) },
	})
}

// watched is what the rollback's metrics read: its own state, the target
// (its source) probed for lag, the applier's counts.
func (rb *rollbackState) watched(mg *migration, terminal bool) watched {
	s := &rb.applier.Stats
	return watched{
		stats: rb.runner.Stats, store: rb.store, source: mg.target, flow: rb.runner.Writes.Flow(), client: leaseClient(mg), terminal: terminal,
		written: func() map[string]int64 {
			return map[string]int64{"created": s.Created.Load(), "updated": s.Replaced.Load(), "unchanged": s.Unchanged.Load(), "deleted": s.Deleted.Load()}
		},
	}
}

// printRollbackSummary writes a rollback run's final numbers.
func printRollbackSummary(w io.Writer, sum pipeline.Summary, rb *rollbackState) {
	s := &rb.applier.Stats
	state := "stopped"
	switch {
	case sum.StoppedForCutover && !sum.Interrupted:
		state = "stopped for the rollback's cutover; progress checkpointed"
	case sum.CaughtUp && !sum.Interrupted:
		state = "caught up"
	case sum.Interrupted:
		state = "interrupted; progress checkpointed"
	}
	fmt.Fprintf(w, "rekey rollback: %s after %s (%d target feed ranges)\n", state, sum.Stats.Elapsed.Round(time.Millisecond), sum.Ranges)
	fmt.Fprintf(w, "  target changes read   %d\n", sum.Stats.Read)
	fmt.Fprintf(w, "  written to the source %d (created %d, replaced %d, already there %d)\n",
		s.Created.Load()+s.Replaced.Load()+s.Unchanged.Load(), s.Created.Load(), s.Replaced.Load(), s.Unchanged.Load())
	fmt.Fprintf(w, "  dead-lettered         %d now in %s (this run: %d, of which conflicts %d)\n", sum.DeadLetters, rb.dead.Where(), s.DeadLettered.Load(), s.Conflicts.Load())
	if sum.DeadLetters > 0 {
		fmt.Fprintf(w, "  %d items could not go back: 'rekey deadletter list --rollback' shows why; the rollback's cutover is refused until they are resolved or accepted\n", sum.DeadLetters)
	}
}

// reverseCheck is the rollback's proof: the migration's comparison with
// its fix applied to the source.
func reverseCheck(mg *migration, rb *rollbackState) *rollback.Check {
	return &rollback.Check{
		Verifier: &verify.Verifier{Source: mg.source, Target: mg.target, Writer: mg.target, Transformer: mg.tr, Log: slog.Default()},
		Applier:  rb.applier,
		Forward:  rb.forwardDead,
	}
}
