package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/rekey-dev/rekey/migrate/pacing"
	"github.com/rekey-dev/rekey/migrate/verify"
)

// Exit codes of `rekey verify`.
const (
	ExitDiffers      = 1 // the copy differs from the source
	ExitVerifyFailed = 3 // verify could not complete (the service failed)
)

type verifyOptions struct {
	mig          migrationFlags
	fix          bool
	output       string
	sample       float64
	recheckDelay time.Duration
	maxIDs       int
}

func newVerifyCommand() *cobra.Command {
	o := &verifyOptions{}
	cmd := &cobra.Command{
		Use:   "verify --source DB/CONTAINER --target DB/CONTAINER --key SPEC [--fix]",
		Short: "Prove the copy: compare every item of the source and the target",
		Long: `Scan both containers and compare them item by item: counts, and for every source
item that the target holds it under the key the spec gives it, with the same
content (a canonical hash that ignores system properties and key order and
normalises numbers). Differences are reported by kind:

  missing          in the source, not in the target under its new key
  extra            in the target, its source item deleted (the change feed carries no deletes)
  changed          in both, with different content
  orphaned         a target item whose source item now maps to another key
                   (a field the key is built from was updated)
  collision        not copied: another source item holds its id and new key
  dead-lettered    not copied (or an older version kept): the item has a current
                   dead letter (too large, refused by the service, ...)
  untransformable  the key spec cannot transform it (see the dead-letter file)

Differences are examined again after --recheck-delay. One is settled (not a
difference) only when the target then matches the source item's current
version. One whose source item changed while verify ran is compared with the
new version; if the target does not match it, it stays a difference, marked
in flight (the application still writing, rekey run still copying): run verify
again once rekey run has copied it.

--fix deletes extra and orphaned items, copies missing and changed ones again
from the source's current version, and examines them again. Every write is
conditional on the version it compared (delete and replace with If-Match, copy
by create): an item written in between is left as it is and reported. An item
the target refuses is dead-lettered, and counted as such, not as copied. --fix
needs an existing migration state, and refuses once the migration is cut over
(plain verify still reads). Memory stays bounded: items spill to temporary
files by hash, and buckets that grow past 1 MB are split again.

Exit codes: 0 the copy matches; 1 it differs; 2 bad flags, configuration or
state (--fix without a migration, or after the cutover); 3 verify could not
complete.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runVerify(cmd, o)
		},
	}
	f := cmd.Flags()
	o.mig.register(f)
	f.BoolVar(&o.fix, "fix", false, "repair the differences found (needs the state: stop rekey run first)")
	f.StringVarP(&o.output, "output", "o", "table", "output format: table or json")
	f.Float64Var(&o.sample, "sample", 100, "verify only this percentage of the items (by a hash of their id)")
	f.DurationVar(&o.recheckDelay, "recheck-delay", verify.DefaultRecheckDelay, "wait before rechecking differences (negative: no recheck)")
	f.IntVar(&o.maxIDs, "max-ids", verify.DefaultMaxIDs, "ids listed per kind of difference")
	return cmd
}

func runVerify(cmd *cobra.Command, o *verifyOptions) error {
	ctx := cmd.Context()
	if o.output != "table" && o.output != "json" {
		return withExitCode(ExitError, fmt.Errorf("-o %q: want table or json", o.output))
	}
	cfg := verify.Config{SamplePercent: o.sample, RecheckDelay: o.recheckDelay, MaxIDs: o.maxIDs, Fix: o.fix}
	if err := cfg.Validate(); err != nil {
		return withExitCode(ExitError, fmt.Errorf("flags: %w", err))
	}
	mg, err := o.mig.connect(ctx)
	if err != nil {
		return exitFor(err)
	}
	defer mg.close()
	v := &verify.Verifier{Source: mg.source, Target: mg.target, Writer: mg.target, Transformer: mg.tr, Log: slog.Default()}
	if o.fix {
		if err := mg.openExistingState(ctx); err != nil {
			return exitFor(err)
		}
		v.DeadLetters, v.Defaults, v.State = mg.dead, mg.defaults, mg.store
		v.Writes = mg.writePath(ctx, pacing.Config{}, slog.Default())
	} else {
		dead, err := openDeadLetters(ctx, &o.mig, mg.dstClient, true)
		if err != nil {
			return withExitCode(ExitVerifyFailed, err)
		}
		defer dead.Close()
		v.DeadLetters = dead
	}
	rep, err := v.Verify(ctx, cfg)
	if refusedByPhase(err) {
		return exitFor(err)
	}
	if err != nil {
		return withExitCode(ExitVerifyFailed, err)
	}
	if o.output == "json" {
		enc := json.NewEncoder(cmd.OutOrStdout())
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		printVerify(cmd.OutOrStdout(), rep)
	}
	if !rep.Clean {
		return withExitCode(ExitDiffers, nil)
	}
	return nil
}

// printVerify writes the human report.
func printVerify(w io.Writer, rep *verify.Report) {
	verdict := "the copy matches the source"
	if !rep.Clean {
		verdict = fmt.Sprintf("the copy differs: %d differences", rep.Differences())
	}
	sample := ""
	if rep.SamplePercent < 100 {
		sample = fmt.Sprintf(" (a %.4g%% sample)", rep.SamplePercent)
	}
	fmt.Fprintf(w, "rekey verify: %s%s\n", verdict, sample)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "  source items\t%d\n", rep.SourceItems)
	fmt.Fprintf(tw, "  target items\t%d\n", rep.TargetItems)
	fmt.Fprintf(tw, "  matching\t%d\n", rep.Matched)
	for _, row := range []struct {
		name string
		c    verify.Category
	}{
		{"missing", rep.Missing}, {"extra", rep.Extra}, {"changed", rep.Changed},
		{"orphaned", rep.Orphaned}, {"collisions", rep.Collisions}, {"dead-lettered", rep.DeadLettered},
		{"untransformable", rep.Untransformable},
	} {
		fmt.Fprintf(tw, "  %s\t%d\t%s\n", row.name, row.c.Count, sampleIDs(row.c))
	}
	fmt.Fprintf(tw, "  settled on recheck\t%d\n", rep.Settled)
	if rep.InFlight > 0 {
		fmt.Fprintf(tw, "  in flight\t%d of the differences: their source item changed while verify ran; run verify again once rekey run copied them\n", rep.InFlight)
	}
	fmt.Fprintf(tw, "  dead letters\t%d\n", rep.DeadLetters)
	if f := rep.Fix; f != nil {
		fmt.Fprintf(tw, "  fixed\t%d deleted, %d copied again, %d dead-lettered, %d changed in the target meanwhile (not overwritten); %d remain\n",
			f.Deleted, f.Copied, f.DeadLettered, f.Skipped, f.Remaining)
	}
	fmt.Fprintf(tw, "  digest\t%s\n", rep.Digest)
	tw.Flush()
}

// sampleIDs lists a few ids of a category for the table.
func sampleIDs(c verify.Category) string {
	if len(c.Items) == 0 {
		return ""
	}
	var ids []string
	for i, d := range c.Items {
		if i == 5 {
			ids = append(ids, fmt.Sprintf("... (%d listed with -o json)", len(c.Items)))
			break
		}
		ids = append(ids, d.ID)
	}
	return strings.Join(ids, ", ")
}
