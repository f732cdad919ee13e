package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rekey-dev/rekey/lease"
	"github.com/rekey-dev/rekey/migrate"
	"github.com/rekey-dev/rekey/migrate/pacing"
	"github.com/rekey-dev/rekey/migrate/pipeline"
)

// Exit codes of `rekey run`.
const (
	ExitRunFailed   = 1   // the migration stopped on an error (what was durable is checkpointed)
	ExitInterrupted = 130 // stopped by SIGINT or SIGTERM after checkpointing
)

type runOptions struct {
	mig              migrationFlags
	pageSize         int
	pollInterval     time.Duration
	maxConcurrency   int
	startFrom        string
	untilCaughtUp    bool
	untilCutover     bool
	createTarget     bool
	targetThroughput int
	targetAutoscale  int
	progressInterval time.Duration
	shutdownTimeout  time.Duration
	leaseTTL         time.Duration
	maxRU            float64
	maxSourceRU      float64
	controlFile      string
	mode             string
	ttlExpiries      string
	bulk             bool
	settings         settingsFlags
	monitor          monitorFlags
	output           string
}

func newRunCommand() *cobra.Command {
	o := &runOptions{}
	cmd := &cobra.Command{
		Use:   "run --source DB/CONTAINER --target DB/CONTAINER --key SPEC [--key SPEC ...]",
		Short: "Copy the source into the target with the new key, then follow its change feed",
		Long: `Copy every item of the source container into the target container with the new
partition key, one reader per feed range, and keep the copy in sync from the
change feed until stopped (or, with --until-caught-up, until every range has
reached the end of its feed).

Progress is checkpointed per feed range in --state only after every item of a
page is written, so a crash or kill -9 loses nothing: run the same command again
and it resumes. Items that cannot be written (a missing key field, a collision of
two source items on one id and new key, an item the service refuses) go to the
dead-letter file with the reason; see 'rekey deadletter'.

Writes go in bulk requests (--bulk, the default): a page's items grouped by
the target's physical partition, up to 100 per request, each with its own
answer, as the official SDKs' bulk mode sends them. --bulk=false sends one
request per item and the items of one new key as transactional batches.

--create-target creates an absent target with the source's settings: its
default TTL, indexing policy, computed properties and the other settings the
service takes at creation ('rekey plan' lists them). A unique key is unique
only within a logical partition, so under the new key it means something
else: a source with unique keys needs --unique-keys copy or drop. A setting
rekey cannot carry (Always Encrypted, a custom conflict resolution procedure,
one it does not know) is named, and the target is not created unless
--drop-setting NAME leaves it out.

Throttling: writes are paced per physical partition of the target, each at a
rate found by AIMD on the 429s it meets (starting from its share of the
target's provisioned RU/s when that can be read; each 429's retry-after pauses
that partition), so the migration runs near the target's RU/s with few 429s,
and a throttled partition slows down only the writes bound for it (its
in-flight requests do not take the others' slots). Each partition's writes in
flight follow its pace and the round trip it observes, so a distant target
is kept as busy as a near one; --max-concurrency bounds them all. Requests go
out at --priority low, so under contention the service throttles the
migration before the application. --max-ru caps the RU/s spent on the target
and --max-source-ru those spent reading the source: each request reserves its
expected charge before it goes and is settled with its actual charge, so no
second spends more than 1.1 times the cap, the first included. For
containers shared with production.

Changing the caps while it runs: write a control file, by default control.json
in the --state directory (a cosmos:// state has no directory: give --control
FILE), such as
  {"maxRU": 5000, "maxSourceRU": 1000, "maxConcurrency": 16}
It is read every second; a field left out keeps its flag's value, 0 removes an
RU cap, deleting the file restores the flags. Each change is logged and shows
in the progress line; a file that does not parse is reported and ignored.

Feeds (--mode): the latest-version change feed carries each changed item once,
at its latest version, and no deletes; an update of a field the new key is
built from writes the item under a second key. In mode latest rekey follows it
and leaves deleted items (extra) and old copies (orphaned) to 'rekey verify
--fix' and cutover. In mode all-versions each range takes a bookmark of the
source's all-versions-and-deletes change feed before its copy starts, copies
from the latest-version feed, and once its copy has caught up follows the
all-versions feed from the bookmark: creates, replaces and deletes in order,
each delete and each key change removing the old copy (with If-Match, only a
copy of the same source item), so verify finds nothing extra or orphaned.
That feed needs a change feed policy on the source container (or continuous
backup on the account) whose retention outlasts the copy; a range whose
bookmark falls out of the retention says so, falls back to the latest-version
feed and records it in its lease (rekey status shows it). auto (the default)
is all-versions when the source keeps that feed, else latest.
--ttl-expiries: what a source item's expiry by time to live does to its copy in
all-versions mode: apply deletes it, skip leaves it to expire by the target's
own time to live; the default is skip when the target has the source's
defaultTtl, else apply.

With --state cosmos://DATABASE/CONTAINER the leases (and the dead letters)
live in a lease container in the target's account, and any number of rekey run
processes share the work, as the pods of a Kubernetes Job do: each takes a
fair share of the feed ranges, renews its leases, takes over those of a worker
that stopped renewing within --lease-ttl, and releases its own when it stops;
with --until-caught-up each exits once every range of every worker has caught
up.

Cutover: when 'rekey cutover' requests the cutover, every worker stops at its
next balancing pass (a quarter of --lease-ttl), checkpoints what it wrote,
releases its leases and waits: once the cutover is recorded it exits 0
("stopped for cutover"); if the cutover is withdrawn (it refused, failed, or
was a dry run) it resumes. A run started while a cutover runs waits the same
way. A run started after the cutover is recorded refuses (exit 2), except with
--until-cutover, which exits 0 at once: the pods of a Kubernetes Job run
--until-cutover, so the Job completes at the cutover, even for a pod that
restarts after it (see deploy/kubernetes/job.yaml). --until-cutover needs a
cosmos:// state: a state directory is locked by the run, so no cutover can be
requested while it runs.

Progress: on a terminal, one line that fits its width and knows the phase (a
bar with the percentage of the source's items and the ETA while copying, the
lag in items and seconds once every range has caught up); elsewhere a progress
log line every --progress-interval. Counts are the migration's as its state
checkpoints them, so a resume starts where the last run stopped.
--metrics-addr serves Prometheus metrics and /healthz (docs/metrics.md). -o
json prints the final summary as one JSON document.

Exit codes: 0 caught up (--until-caught-up), or stopped for a cutover that was
recorded; 1 the run failed; 2 bad flags, configuration or state (including a
run after the cutover, without --until-cutover, and --mode all-versions on a
source without that feed); 130 stopped by SIGINT/SIGTERM after checkpointing.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runMigration(cmd.Context(), cmd, o)
		},
	}
	f := cmd.Flags()
	o.mig.register(f)
	f.IntVar(&o.pageSize, "page-size", pipeline.DefaultPageSize, "changes per change-feed read")
	f.DurationVar(&o.pollInterval, "poll-interval", pipeline.DefaultPollInterval, "wait between reads of a range that has caught up")
	f.IntVar(&o.maxConcurrency, "max-concurrency", 0, "cap on the requests in flight across all partitions of the target (0: none; each partition's follows its pace and latency)")
	f.BoolVar(&o.bulk, "bulk", true, "write in bulk requests, grouped by the target's physical partition (false: one request per item, transactional batches per key)")
	f.StringVar(&o.startFrom, "start-from", "beginning", "where a new migration starts reading: beginning, now, or an RFC 3339 time (delta-only sync)")
	f.BoolVar(&o.untilCaughtUp, "until-caught-up", false, "exit 0 once every range has reached the end of its feed")
	f.BoolVar(&o.untilCutover, "until-cutover", false, "keep syncing until a cutover is recorded, then exit 0 (also when started after it): for the pods of a Kubernetes Job")
	f.BoolVar(&o.createTarget, "create-target", false, "create the target container when absent, with the source's settings (its key definition is checked when present)")
	o.settings.register(f)
	f.IntVar(&o.targetThroughput, "target-throughput", 0, "manual RU/s of a target created by --create-target")
	f.IntVar(&o.targetAutoscale, "target-autoscale-max", 0, "autoscale maximum RU/s of a target created by --create-target")
	f.DurationVar(&o.progressInterval, "progress-interval", 10*time.Second, "how often to log progress when not on a terminal")
	f.DurationVar(&o.leaseTTL, "lease-ttl", pipeline.DefaultLeaseTTL, "with a cosmos:// state: how long a worker's lease lasts without renewal before another worker takes it over")
	f.DurationVar(&o.shutdownTimeout, "shutdown-timeout", pipeline.DefaultShutdownTimeout, "how long in-flight writes may finish after SIGINT/SIGTERM (a second signal stops at once)")
	f.Float64Var(&o.maxRU, "max-ru", 0, "cap on the RU/s spent on the target, from the actual request charges (0: no cap)")
	f.Float64Var(&o.maxSourceRU, "max-source-ru", 0, "cap on the RU/s spent reading the source's change feed (0: no cap)")
	o.monitor.register(f)
	f.StringVarP(&o.output, "output", "o", "text", "the summary at the end: text, or json (one document on stdout)")
	f.StringVar(&o.controlFile, "control", "", "control file to change --max-ru, --max-source-ru and --max-concurrency while running (default: control.json in the --state directory)")
	f.StringVar(&o.mode, "mode", pipeline.ModeAuto, "change feed to sync from: auto (all-versions when the source keeps it), latest, or all-versions (deletes and key changes applied while syncing)")
	f.StringVar(&o.ttlExpiries, "ttl-expiries", "", "all-versions mode: what a source item's expiry by time to live does to its copy: apply (delete it) or skip (it expires by the target's TTL); default skip when the target has the source's defaultTtl, else apply")
	return cmd
}

// parseStartFrom reads --start-from.
func parseStartFrom(s string, now time.Time) (time.Time, error) {
	switch strings.ToLower(s) {
	case "", "beginning":
		return time.Time{}, nil
	case "now":
		return now, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("--start-from %q: want beginning, now, or an RFC 3339 time such as 2026-01-02T15:04:05Z", s)
	}
	return t, nil
}

// checkStartFrom holds a resumed migration to the start it recorded: every
// range without a checkpoint starts there, whatever --start-from says now.
// "now" on a resume (a restarted pod has the same flags) is accepted and
// said to be ignored; a different explicit start is refused. resuming: the
// state already has leases (a new migration creates them when it runs).
func checkStartFrom(cmd *cobra.Command, flag string, given time.Time, meta lease.Meta, resuming bool) error {
	if !cmd.Flags().Changed("start-from") {
		return nil
	}
	recorded, err := meta.StartTime()
	if err != nil {
		return err
	}
	describe := func(t time.Time) string {
		if t.IsZero() {
			return "the beginning of the change feed"
		}
		return t.UTC().Format(time.RFC3339)
	}
	if strings.EqualFold(flag, "now") || recorded.Equal(given.Truncate(time.Second)) {
		if resuming {
			slog.Info("resuming from checkpoints; --start-from "+flag+" ignored, the migration started at "+describe(recorded),
				"startFrom", describe(recorded), "flag", flag)
		}
		return nil
	}
	return usageErrf("--start-from %s: this migration started from %s and resumes from there (ranges without a checkpoint start at the recorded start); drop --start-from, or start a new migration with a new --state", flag, describe(recorded))
}

func runMigration(ctx context.Context, cmd *cobra.Command, o *runOptions) error {
	startFrom, err := parseStartFrom(o.startFrom, time.Now())
	if err != nil {
		return withExitCode(ExitError, err)
	}
	if o.output != "text" && o.output != "json" {
		return withExitCode(ExitError, fmt.Errorf("-o %q: want text or json", o.output))
	}
	cfg := pipeline.RunConfig{
		PageSize: o.pageSize, PollInterval: o.pollInterval,
		UntilCaughtUp: o.untilCaughtUp, ShutdownTimeout: o.shutdownTimeout,
		Owner: owner(), LeaseTTL: o.leaseTTL, Mode: o.mode, TTLExpiries: o.ttlExpiries,
	}
	_, _, cfg.Shared = cosmosState(o.mig.state)
	switch {
	case o.untilCutover && o.untilCaughtUp:
		return withExitCode(ExitError, errors.New("--until-cutover and --until-caught-up: give one"))
	case o.untilCutover && !cfg.Shared:
		return withExitCode(ExitError, fmt.Errorf("--until-cutover needs a cosmos://DATABASE/CONTAINER state shared with the cutover; --state %s is a directory, which the run locks, so no cutover can be requested while it runs", o.mig.state))
	}
	flow := pacing.Config{MaxConcurrency: o.maxConcurrency, MaxRU: o.maxRU, MaxSourceRU: o.maxSourceRU}
	if err := cfg.Validate(); err != nil {
		return withExitCode(ExitError, fmt.Errorf("flags: %w", err))
	}
	if err := flow.Validate(); err != nil {
		return withExitCode(ExitError, fmt.Errorf("flags: %w", err))
	}
	if err := o.settings.choice().Validate(); err != nil {
		return withExitCode(ExitError, err)
	}
	mg, err := o.mig.connect(ctx)
	if err != nil {
		return exitFor(err)
	}
	defer mg.close()
	created, err := pipeline.EnsureTarget(ctx, mg.dstClient, mg.dstRef, migrate.TargetDefinition(mg.tr.TargetPaths()), pipeline.TargetOptions{
		Create: o.createTarget, ManualRU: o.targetThroughput, AutoscaleMaxRU: o.targetAutoscale,
		Settings: carriedSettings(mg.srcClient, mg.srcRef, o.settings.choice(), mg.srcDef.Paths, mg.tr.TargetPaths()),
	})
	if err != nil {
		return exitFor(usageErr(err))
	}
	if created {
		slog.Info("created the target container", "target", mg.dstRef.String(), "paths", mg.tr.TargetPaths())
	}
	if err := mg.openState(ctx, startFrom); err != nil {
		return exitFor(err)
	}
	if !o.untilCutover { // which exits 0 after a cutover (work)
		if err := migrate.RefuseAfterCutover(ctx, mg.store, "run"); err != nil {
			return exitFor(err)
		}
	}
	leases, err := mg.store.List(ctx)
	if err != nil {
		return exitFor(fmt.Errorf("read the state's leases: %w", err))
	}
	if err := checkStartFrom(cmd, o.startFrom, startFrom, mg.meta, len(leases) > 0); err != nil {
		return exitFor(err)
	}

	if cfg.TTLExpiries == "" {
		cfg.TTLExpiries, err = pipeline.DefaultTTLExpiries(ctx, &migrate.Retrier{Clock: migrate.SystemClock{}}, mg.source, mg.target)
		if err != nil {
			slog.Warn("could not compare the containers' time to live; a source item's expiry deletes its copy (--ttl-expiries apply)", "err", err)
			cfg.TTLExpiries = pipeline.TTLApply
		}
	}

	total, err := mg.source.ItemCount(ctx)
	if err != nil {
		slog.Warn("could not read the source's item count; progress shows no total", "err", err)
	}
	stats := &pipeline.Stats{}
	mode := pipeline.WriteBulk
	if !o.bulk {
		mode = pipeline.WriteItems
	}
	writes := mg.writePathMode(ctx, mode, flow, slog.Default())
	controls := writes.Flow().Controls
	r := &pipeline.Runner{
		Source: mg.source, Transformer: mg.tr, Store: mg.store, DeadLetters: mg.dead,
		Writes: writes, Stats: stats,
	}
	controlPath := controlFilePath(o.controlFile, mg.flags.state)
	slog.Info("migration starting", "source", mg.srcRef.String(), "target", mg.dstRef.String(),
		"key", strings.Join(mg.tr.Spec().Strings(), " "), "state", mg.stateName, "sourceItems", total,
		"mode", cfg.Mode, "ttlExpiries", cfg.TTLExpiries,
		"settings", controls.Current().String(), "bulk", writes.Bulk(), "controlFile", controlPath)
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	if controlPath != "" {
		go controls.Watch(watchCtx, controlPath, pacing.DefaultControlPoll)
	}
	terminal := isTerminal(cmd.ErrOrStderr())
	poller, err := startMonitor(watchCtx, o.monitor, watched{
		stats: stats, store: mg.store, source: mg.source, flow: writes.Flow(), client: leaseClient(mg),
		sourceItems: total, terminal: terminal,
	})
	if err != nil {
		return exitFor(err)
	}
	progress := &progressReporter{stats: stats, poller: poller, total: total, interval: o.progressInterval, terminal: terminal, out: cmd.ErrOrStderr(), extra: writes.Flow().Describe}
	stopProgress := progress.start(ctx)
	defer stopProgress()
	var last *pipeline.Summary
	out := cmd.OutOrStdout()
	if o.output == "json" {
		out = io.Discard // one document at the end, below
	}
	err = work(ctx, worker{
		name: "rekey run", runner: r, cfg: cfg, store: mg.store, untilCutover: o.untilCutover, out: out,
		summary: func(sum pipeline.Summary, final bool) {
			if final {
				stopProgress()
			}
			last = &sum
			printSummary(out, sum, mg.dead.Where())
		},
	})
	if o.output == "json" {
		if jerr := writeRunJSON(cmd.OutOrStdout(), last, err, mg.dead.Where()); jerr != nil && err == nil {
			err = jerr
		}
	}
	return err
}

// worker is a command that runs a Runner until it is done: rekey run, or
// rekey rollback.
type worker struct {
	name         string
	runner       *pipeline.Runner
	cfg          pipeline.RunConfig
	store        lease.Store
	untilCutover bool
	out          io.Writer
	// summary prints a Run's summary; final when the command ends with it.
	summary func(sum pipeline.Summary, final bool)
}

// work runs w's Runner; when a cutover stops it (or is in progress when it
// starts), it waits for the outcome: exit 0 once the cutover is recorded,
// run again when it is withdrawn. A run started after the cutover refuses
// (exit 2), or exits 0 with --until-cutover.
//
// The first SIGINT/SIGTERM stops it after the pages in flight, which it
// names; the second abandons them (interrupts).
func work(ctx context.Context, w worker) error {
	in := interruptsOf(ctx)
	in.expectStop()
	w.cfg.Abandon, w.cfg.OnShutdown = in.Abandon(), announceStop
	poll := max(w.cfg.LeaseTTL/4, 10*time.Millisecond)
	if w.cfg.LeaseTTL == 0 {
		poll = pipeline.DefaultLeaseTTL / 4
	}
	for {
		sum, err := w.runner.Run(ctx, w.cfg)
		switch {
		case errors.Is(err, migrate.ErrCutOver) && w.untilCutover:
			fmt.Fprintf(w.out, "%s: the migration is cut over; nothing to do (--until-cutover)\n", w.name)
			return nil
		case errors.Is(err, migrate.ErrCutOver):
			return exitFor(err)
		case errors.Is(err, migrate.ErrAllVersionsNotEnabled) && !sum.AllVersions && sum.Ranges == 0:
			return exitFor(usageErrf("--mode %s: %w", w.cfg.Mode, err))
		case errors.Is(err, migrate.ErrCutoverInProgress):
			slog.Info("a cutover is in progress; waiting for it to be recorded or withdrawn", "reason", err)
		case sum.StoppedForCutover && err == nil:
			w.summary(sum, false)
		default:
			w.summary(sum, true)
			switch {
			case err != nil:
				return exitFor(err)
			case sum.Interrupted:
				return withExitCode(ExitInterrupted, nil)
			}
			return nil
		}
		outcome, err := migrate.AwaitCutover(ctx, w.store, migrate.SystemClock{}, poll)
		switch {
		case ctx.Err() != nil:
			return withExitCode(ExitInterrupted, nil)
		case err != nil:
			return exitFor(err)
		case outcome == migrate.CutoverRecorded:
			fmt.Fprintf(w.out, "%s: stopped for cutover: the migration is cut over\n", w.name)
			return nil
		}
		slog.Info("the cutover was withdrawn; resuming")
	}
}

// controlFilePath is the control file a run watches: --control when given,
// else control.json in a --state directory; none for a cosmos:// state
// without --control, which has no directory of its own.
func controlFilePath(flag, state string) string {
	switch {
	case flag != "":
		return flag
	case strings.HasPrefix(state, "cosmos://"):
		return ""
	default:
		return filepath.Join(state, pacing.ControlFileName)
	}
}
