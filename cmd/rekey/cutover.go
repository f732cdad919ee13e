package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/rekey-dev/rekey/lease"
	"github.com/rekey-dev/rekey/migrate"
	"github.com/rekey-dev/rekey/migrate/cutover"
	"github.com/rekey-dev/rekey/migrate/pacing"
	"github.com/rekey-dev/rekey/migrate/pipeline"
	"github.com/rekey-dev/rekey/migrate/verify"
	"github.com/rekey-dev/rekey/transform"
)

// Exit code of `rekey cutover` when it refuses to switch.
const ExitRefused = 3

type cutoverOptions struct {
	mig          migrationFlags
	leaseTTL     time.Duration
	quietPeriod  time.Duration
	timeout      time.Duration
	maxRequest   time.Duration
	acceptDead   bool
	dryRun       bool
	recheckDelay time.Duration
	output       string
	monitor      monitorFlags
}

func newCutoverCommand() *cobra.Command {
	o := &cutoverOptions{}
	cmd := &cobra.Command{
		Use:   "cutover --source DB/CONTAINER --target DB/CONTAINER --key SPEC [--quiet-period 30s] [--timeout 15m]",
		Short: "Gate the switch to the target: drain, wait for quiet, verify with fix, record",
		Long: `Decide whether the application can switch to the target, and record it:

  1. refuse while the initial copy is incomplete (some feed range has never
     reached the end of its feed: keep rekey run going);
  2. request the cutover in the state. This is a compare-and-swap: while
     another cutover's request is live, this one is refused. Running
     workers (rekey run, the pods of a Kubernetes Job) see the request at
     their next balancing pass (a quarter of their --lease-ttl), checkpoint
     what they wrote, release their leases and stop; cutover waits for them,
     or for their leases to expire, and fences every lease so that no worker
     takes one again. Give the workers' --lease-ttl. A write a worker sent
     may take effect after it stopped waiting for it: when a worker stopped
     with writes unanswered (its --shutdown-timeout cut a page short) or
     died, cutover waits until --max-request-time has passed since, so that
     its final verify sees them;
  3. drain every range to the end of its feed itself;
  4. wait until the source has had no changes for --quiet-period. The
     application's writes to the source must be stopped first: cutover cannot
     stop them. It gives up after --timeout;
  5. refuse while the dead-letter file holds items, unless --accept-dead-letter;
  6. mark the end of every feed range's change feed, verify every item, fixing
     what differs (extra and orphaned items deleted, missing and changed ones
     copied again), then read each range's feed after its mark: if the source
     changed during the verify, go back to step 3 (until --timeout);
  7. refuse if differences remain (dead letters only with --accept-dead-letter);
  8. record the cutover (time, items, verify digest, what the application
     writes from now on, where the target's change feed stands for a
     rollback) in the state, and print what to do next: which container and
     key the application writes, with an example item before and after.

A cutover that does not record withdraws its request: workers waiting for it
(rekey run stays up, waiting, once it stopped for a cutover) resume. Workers
exit 0 once the cutover is recorded. A cutover that dies leaves a request
that lapses after --lease-ttl; workers then withdraw it and resume.

With a state directory, rekey run holds the directory's lock: stop it
(Ctrl+C) before cutover, which drains the remaining changes itself. Cutover
needs an existing migration and creates no state. Once a cutover is
recorded, rekey run, deadletter replay, verify --fix and a second cutover
refuse (exit 2); 'rekey rollback' copies the application's writes back to
the source if you must switch back. --dry-run performs the checks (it too
stops the workers while it drains) without fixing or recording anything.

Exit codes: 0 cut over (with --dry-run: every check passed); 1 the copy still
differs after the fix; 2 bad flags or state, no migration, or already cut
over; 3 refused (the copy is not caught up, another cutover is running,
workers did not stop, the source kept changing, or dead letters are pending)
or could not complete; 130 interrupted.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runCutover(cmd, o)
		},
	}
	o.register(cmd.Flags(), "the source", "cut over although dead-lettered items were not copied")
	return cmd
}

// register binds the flags of a cutover; from names the container the
// application switches away from.
func (o *cutoverOptions) register(f *pflag.FlagSet, from, acceptDead string) {
	o.mig.register(f)
	f.DurationVar(&o.leaseTTL, "lease-ttl", pipeline.DefaultLeaseTTL, "the workers' --lease-ttl: how long a lease (and the cutover's own request) lasts without renewal")
	f.DurationVar(&o.quietPeriod, "quiet-period", cutover.DefaultQuietPeriod, "how long "+from+" must have no changes (at least 1s: a rollback tells later writes by their _ts, in seconds)")
	f.DurationVar(&o.timeout, "timeout", cutover.DefaultTimeout, "give up when "+from+" is not quiet by then")
	f.DurationVar(&o.maxRequest, "max-request-time", cutover.DefaultMaxRequestTime, "the longest a worker's write may take to take effect after it was sent, even one it gave up on: after a worker stopped with writes unanswered (or died), cutover waits that long before its final verify")
	f.BoolVar(&o.acceptDead, "accept-dead-letter", false, acceptDead)
	f.BoolVar(&o.dryRun, "dry-run", false, "check everything; fix and record nothing")
	f.DurationVar(&o.recheckDelay, "recheck-delay", time.Second, "verify: wait before rechecking differences")
	f.StringVarP(&o.output, "output", "o", "table", "output format: table or json")
	o.monitor.register(f)
}

// open checks the flags, connects and opens the existing migration; the
// caller closes what it returns.
func (o *cutoverOptions) open(ctx context.Context) (*migration, error) {
	if o.output != "table" && o.output != "json" {
		return nil, withExitCode(ExitError, fmt.Errorf("-o %q: want table or json", o.output))
	}
	mg, err := o.mig.connect(ctx)
	if err != nil {
		return nil, exitFor(err)
	}
	if err := mg.openExistingState(ctx); err != nil {
		mg.close()
		return nil, exitFor(err)
	}
	return mg, nil
}

func runCutover(cmd *cobra.Command, o *cutoverOptions) error {
	ctx := cmd.Context()
	mg, err := o.open(ctx)
	if err != nil {
		return err
	}
	defer mg.close()
	app := applicationWrites(ctx, mg.source, mg.tr)
	writes := mg.writePath(ctx, pacing.Config{}, slog.Default())
	stats := &pipeline.Stats{}
	if _, err := startMonitor(ctx, o.monitor, watched{stats: stats, store: mg.store, source: mg.source, flow: writes.Flow(), client: leaseClient(mg)}); err != nil {
		return exitFor(err)
	}
	g := &cutover.Gate{
		Runner: &pipeline.Runner{Source: mg.source, Transformer: mg.tr, Store: mg.store, DeadLetters: mg.dead, Writes: writes, Stats: stats},
		Verifier: &verify.Verifier{Source: mg.source, Target: mg.target, Writer: mg.target, Writes: writes, Transformer: mg.tr,
			DeadLetters: mg.dead, Defaults: mg.defaults, Log: slog.Default()},
		Follow: mg.target,
	}
	rep, err := o.runGate(cmd, g, app)
	if err := cutoverExit(err, "cutover"); err != nil {
		return err
	}
	if o.output == "table" {
		printNextSteps(cmd.OutOrStdout(), mg, rep, o.dryRun)
	}
	return nil
}

// runGate runs a cutover with the command's options, telling its steps
// and printing its final verify (a table) or its report (JSON). The
// gate's error is returned as it is.
func (o *cutoverOptions) runGate(cmd *cobra.Command, g *cutover.Gate, app *lease.ApplicationWrites) (*cutover.Report, error) {
	out := cmd.OutOrStdout()
	g.Log = slog.Default()
	g.Progress = func(step string) {
		if o.output == "table" {
			fmt.Fprintln(out, cmd.CommandPath()+":", step)
		}
	}
	rep, err := g.Run(cmd.Context(), cutover.Config{
		LeaseTTL: o.leaseTTL, QuietPeriod: o.quietPeriod, Timeout: o.timeout, AcceptDeadLetter: o.acceptDead, DryRun: o.dryRun,
		MaxRequestTime: o.maxRequest, Application: app,
		Run:    pipeline.RunConfig{Owner: cutoverOwner(), PollInterval: 200 * time.Millisecond},
		Verify: verify.Config{RecheckDelay: o.recheckDelay},
	})
	if o.output == "json" {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
	} else if rep != nil && rep.Verify != nil {
		printVerify(out, rep.Verify)
	}
	return rep, err
}

// applicationWrites is what the application must write once it switches
// from src: tr's key, with an item of src as the example (none when it
// cannot be read, which is logged).
func applicationWrites(ctx context.Context, src migrate.Source, tr *transform.Transformer) *lease.ApplicationWrites {
	example, err := migrate.ExampleItem(ctx, src, &migrate.Retrier{Clock: migrate.SystemClock{}, Tries: migrate.DefaultTransientTries})
	if err != nil {
		slog.Warn("could not read an example item for what the application writes next", "err", err)
	}
	app, err := migrate.ApplicationWritesOf(tr, example)
	if err != nil {
		slog.Warn("could not render the example item with the key the application writes next", "err", err)
	}
	return app
}

// printNextSteps tells the user what to do after a cutover.
func printNextSteps(w io.Writer, mg *migration, rep *cutover.Report, dryRun bool) {
	if dryRun {
		fmt.Fprintf(w, "cutover --dry-run: every check passed (%d items verified); nothing was fixed or recorded\n", rep.Verify.Matched)
		printWouldFix(w, "cutover", rep)
		return
	}
	fmt.Fprintf(w, "cutover recorded at %s: %d items verified, digest %s\n", rep.At.Format(time.RFC3339), rep.Verify.Matched, rep.Verify.Digest)
	fmt.Fprintf(w, "next:\n  1. point the application at %s and have it write the new key:\n", mg.dstRef)
	if rep.Cutover != nil && rep.Cutover.Application != nil {
		printApplicationWrites(w, "     ", rep.Cutover.Application)
	}
	fmt.Fprintf(w, `  2. keep %s read-only until the application runs well on the target; 'rekey status' shows "cut over".
     If you must switch back, 'rekey rollback' copies what the application writes to the target back into %s
     (see README, "Cutover and rollback")
  3. then delete the source container and the migration state (%s)
`, mg.srcRef, mg.srcRef, mg.stateName)
}

// printWouldFix says what a dry run found that the cutover's verify with
// fix repairs, which is no reason to refuse.
func printWouldFix(w io.Writer, what string, rep *cutover.Report) {
	if rep.WouldFix == 0 || rep.Verify == nil {
		return
	}
	v := rep.Verify
	fmt.Fprintf(w, "  %s would fix %d differences first: %d missing, %d extra, %d changed, %d orphaned (the table above lists them)\n",
		what, rep.WouldFix, v.Missing.Count, v.Extra.Count, v.Changed.Count, v.Orphaned.Count)
}

// printApplicationWrites says what the application writes from the
// cutover on, each line indented.
func printApplicationWrites(w io.Writer, indent string, app *lease.ApplicationWrites) {
	fmt.Fprintf(w, "%spartition key: %s\n", indent, strings.Join(app.KeyPaths, ", "))
	for _, k := range app.Synthetic {
		fmt.Fprintf(w, "%s%s = %s, built by the application from each item's fields ({field|function} as in rekey's --key)\n", indent, k.Path, k.Template)
	}
	if app.Before != nil {
		fmt.Fprintf(w, "%sexample, as the application wrote it:   %s\n", indent, app.Before)
	}
	if app.After != nil {
		fmt.Fprintf(w, "%sand as it must write it from now on:   %s\n", indent, app.After)
	}
}
