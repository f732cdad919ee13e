package main

import (
	"errors"
	"fmt"
	"slices"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/rekey-dev/rekey/migrate/pipeline"
)

// flagValues are the values a flag takes, offered by shell completion. The
// -o flags are "<their default> or json" (table, or text for version and
// bench) and are completed from their default.
var flagValues = map[string][]string{
	"log-format":  {"auto", "text", "json"},
	"log-level":   {"debug", "info", "warn", "error"},
	"priority":    {"low", "high"},
	"start-from":  {"beginning", "now"},
	"unique-keys": {"copy", "drop"},
	"controller":  {"paced", "windowed", "fixed"},
	// rekey run's change feed (pipeline.ModeAuto, ModeLatest,
	// ModeAllVersions) and its expiries (TTLApply, TTLSkip).
	"mode":         {pipeline.ModeAuto, pipeline.ModeLatest, pipeline.ModeAllVersions},
	"ttl-expiries": {pipeline.TTLApply, pipeline.TTLSkip},
}

// registerCompletions gives every flag of root's commands that takes one
// of a few values its completion (cobra's __complete, which the shell
// scripts of `rekey completion` call).
func registerCompletions(root *cobra.Command) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, fs := range []*pflag.FlagSet{c.LocalNonPersistentFlags(), c.PersistentFlags()} {
			fs.VisitAll(func(f *pflag.Flag) {
				values := flagValues[f.Name]
				if f.Name == "output" {
					values = []string{f.DefValue, "json"}
				}
				if values != nil {
					// Registering twice (a flag seen from two sets) is
					// an error cobra returns; the first registration holds.
					_ = c.RegisterFlagCompletionFunc(f.Name, cobra.FixedCompletions(values, cobra.ShellCompDirectiveNoFileComp))
				}
			})
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

// flagError is every command's cobra FlagErrorFunc: a flag that does not
// parse is a usage error (exit 2), and an unknown one gets the closest
// flag of the command as a suggestion, as cobra does for commands.
func flagError(cmd *cobra.Command, err error) error {
	var missing *pflag.NotExistError
	if errors.As(err, &missing) && missing.GetSpecifiedName() != "" {
		if s := closestFlag(cmd.Flags(), missing.GetSpecifiedName()); s != "" {
			err = fmt.Errorf("%w; did you mean --%s?", err, s)
		}
	}
	return usageErr(err)
}

// closestFlag is the flag of fs whose name is nearest to name: one that
// starts with it, else the nearest within an edit distance of 2 (a third
// of the name for long names); "" when none is near.
func closestFlag(fs *pflag.FlagSet, name string) string {
	limit := max(2, len(name)/3)
	best, bestDist := "", 0
	var prefixed []string
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Hidden {
			return
		}
		if len(name) >= 3 && len(f.Name) > len(name) && f.Name[:len(name)] == name {
			prefixed = append(prefixed, f.Name)
		}
		if d := editDistance(name, f.Name); d <= limit && (best == "" || d < bestDist || d == bestDist && f.Name < best) {
			best, bestDist = f.Name, d
		}
	})
	if len(prefixed) > 0 {
		slices.Sort(prefixed)
		return prefixed[0]
	}
	return best
}

// editDistance is the Levenshtein distance between a and b (bytes: flag
// names are ASCII).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
