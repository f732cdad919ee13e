package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rekey-dev/rekey/migrate"
	"github.com/rekey-dev/rekey/migrate/cutover"
	"github.com/rekey-dev/rekey/migrate/pacing"
	"github.com/rekey-dev/rekey/migrate/pipeline"
	"github.com/rekey-dev/rekey/migrate/verify"
)

// Exit code of `rekey cutover` when it refuses to switch.
const ExitRefused = 3

type cutoverOptions struct {
	mig          migrationFlags
	quietPeriod  time.Duration
	timeout      time.Duration
	acceptDead   bool
	dryRun       bool
	recheckDelay time.Duration
	output       string
}

func newCutoverCommand() *cobra.Command {
	o := &cutoverOptions{}
	cmd := &cobra.Command{
		Use:   "cutover --source DB/CONTAINER --target DB/CONTAINER --key SPEC [--quiet-period 30s] [--timeout 15m]",
		Short: "Gate the switch to the target: drain, wait for quiet, verify with fix, record",
		Long: `Decide whether the application can switch to the target, and record it:

  1. refuse while the initial copy is incomplete (some feed range has never
     reached the end of its feed: keep rekey run going);
  2. drain every range to the end of its feed;
  3. wait until the source has had no changes for --quiet-period. The
     application's writes to the source must be stopped first: cutover cannot
     stop them. It gives up after --timeout;
  4. refuse while the dead-letter file holds items, unless --accept-dead-letter;
  5. mark the end of every feed range's change feed, verify every item, fixing
     what differs (extra and orphaned items deleted, missing and changed ones
     copied again), then read each range's feed after its mark: if the source
     changed during the verify, go back to step 2 (until --timeout);
  6. refuse if differences remain (dead letters only with --accept-dead-letter);
  7. record the cutover (time, items, verify digest) in the state, and print
     what to do next.

It holds the state like rekey run does: stop rekey run first (cutover drains
the remaining changes itself). It needs an existing migration and creates no
state. Once a cutover is recorded, rekey run, deadletter replay, verify --fix
and a second cutover refuse (exit 2). --dry-run performs the checks without
fixing or recording anything.

Exit codes: 0 cut over (with --dry-run: every check passed); 1 the copy still
differs after the fix, or cutover failed; 2 bad flags or state, no migration,
or already cut over; 3 refused: the copy is not caught up, the source kept
changing, or dead letters are pending.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runCutover(cmd, o)
		},
	}
	f := cmd.Flags()
	o.mig.register(f)
	f.DurationVar(&o.quietPeriod, "quiet-period", cutover.DefaultQuietPeriod, "how long the source must have no changes")
	f.DurationVar(&o.timeout, "timeout", cutover.DefaultTimeout, "give up when the source is not quiet by then")
	f.BoolVar(&o.acceptDead, "accept-dead-letter", false, "cut over although dead-lettered items were not copied")
	f.BoolVar(&o.dryRun, "dry-run", false, "check everything; fix and record nothing")
	f.DurationVar(&o.recheckDelay, "recheck-delay", time.Second, "verify: wait before rechecking differences")
	f.StringVarP(&o.output, "output", "o", "table", "output format: table or json")
	return cmd
}

func runCutover(cmd *cobra.Command, o *cutoverOptions) error {
	ctx := cmd.Context()
	if o.output != "table" && o.output != "json" {
		return withExitCode(ExitError, fmt.Errorf("-o %q: want table or json", o.output))
	}
	mg, err := o.mig.connect(ctx)
	if err != nil {
		return exitFor(err)
	}
	defer mg.close()
	if err := mg.openExistingState(ctx); err != nil {
		return exitFor(err)
	}
	out := cmd.OutOrStdout()
	writes := mg.writePath(ctx, pacing.Config{}, slog.Default())
	c := &cutover.Gate{
		Runner: &pipeline.Runner{Source: mg.source, Transformer: mg.tr, Store: mg.store, DeadLetters: mg.dead, Writes: writes},
		Verifier: &verify.Verifier{Source: mg.source, Target: mg.target, Writer: mg.target, Writes: writes, Transformer: mg.tr,
			DeadLetters: mg.dead, Defaults: mg.defaults, Log: slog.Default()},
		Progress: func(step string) {
			if o.output == "table" {
				fmt.Fprintln(out, "cutover:", step)
			}
		},
	}
	rep, err := c.Run(ctx, cutover.Config{
		QuietPeriod: o.quietPeriod, Timeout: o.timeout, AcceptDeadLetter: o.acceptDead, DryRun: o.dryRun,
		Run:    pipeline.RunConfig{Owner: owner(), PollInterval: 200 * time.Millisecond},
		Verify: verify.Config{RecheckDelay: o.recheckDelay},
	})
	if o.output == "json" {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
	} else if rep != nil && rep.Verify != nil {
		printVerify(out, rep.Verify)
	}
	switch {
	case errors.Is(err, migrate.ErrCutOver):
		return exitFor(err)
	case errors.Is(err, cutover.ErrNotCaughtUp), errors.Is(err, cutover.ErrStillWriting), errors.Is(err, cutover.ErrDeadLettersPending):
		return withExitCode(ExitRefused, fmt.Errorf("cutover refused: %w", err))
	case errors.Is(err, cutover.ErrCopyDiffers):
		return withExitCode(ExitDiffers, fmt.Errorf("cutover refused: %w", err))
	case err != nil:
		return withExitCode(ExitRunFailed, err)
	}
	if o.output == "table" {
		printNextSteps(out, mg, rep, o.dryRun)
	}
	return nil
}

// printNextSteps tells the user what to do after a cutover.
func printNextSteps(w io.Writer, mg *migration, rep *cutover.Report, dryRun bool) {
	if dryRun {
		fmt.Fprintf(w, "cutover --dry-run: every check passed (%d items verified); nothing was fixed or recorded\n", rep.Verify.Matched)
		return
	}
	fmt.Fprintf(w, "cutover recorded at %s: %d items verified, digest %s\n", rep.At.Format(time.RFC3339), rep.Verify.Matched, rep.Verify.Digest)
	fmt.Fprintf(w, `next:
  1. point the application at %s (partition key %s)
  2. keep %s read-only until the application runs well on the target; 'rekey status' shows "cut over"
  3. then delete the source container and the migration state (%s)
`, mg.dstRef, strings.Join(mg.tr.TargetPaths(), ", "), mg.srcRef, mg.stateName)
}
