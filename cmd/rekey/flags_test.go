package main

import (
	"context"
	"strings"
	"testing"
)

// An environment variable that does not parse is named with the type it
// wants; its value is never printed (a secret bound to the wrong variable).
func TestEnvironmentParseErrorHidesTheValue(t *testing.T) {
	const secret = "c2VjcmV0LWtleS1ib3VuZC10by10aGUtd3JvbmctdmFyaWFibGU="
	for _, c := range []struct{ variable, want string }{
		{"REKEY_PAGE_SIZE", "environment variable REKEY_PAGE_SIZE: not an integer (for --page-size)"},
		{"REKEY_POLL_INTERVAL", "environment variable REKEY_POLL_INTERVAL: not a duration such as 30s or 5m (for --poll-interval)"},
		{"REKEY_INSECURE", "environment variable REKEY_INSECURE: not true or false (for --insecure)"},
	} {
		t.Run(c.variable, func(t *testing.T) {
			t.Setenv(c.variable, secret)
			out, errOut, code := cli(t, context.Background(), "run", "--source", "db/a", "--target", "db/b", "--key", "/k")
			if code != ExitError || !strings.Contains(errOut, c.want) {
				t.Errorf("exit %d, want %d with %q\n%s", code, ExitError, c.want, errOut)
			}
			if strings.Contains(out+errOut, secret) || strings.Contains(out+errOut, secret[:12]) {
				t.Errorf("the value is printed:\n%s%s", out, errOut)
			}
		})
	}
}

// A mistyped flag gets the nearest flag of its command, as a mistyped
// command does; one near nothing gets no guess. Both exit 2.
func TestMistypedFlagSuggestsTheNearest(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string // "" for no suggestion
	}{
		{[]string{"run", "--pag-size", "3"}, "did you mean --page-size?"},
		{[]string{"run", "--page", "3"}, "did you mean --page-size?"}, // a prefix
		{[]string{"verify", "--sampel", "3"}, "did you mean --sample?"},
		{[]string{"status", "--log-levl", "debug"}, "did you mean --log-level?"}, // inherited
		{[]string{"cutover", "--quiet-perod", "1s"}, "did you mean --quiet-period?"},
		{[]string{"run", "--zzzzzz"}, ""},
	} {
		_, errOut, code := cli(t, context.Background(), c.args...)
		if code != ExitError || !strings.Contains(errOut, "unknown flag") {
			t.Errorf("%v: exit %d\n%s", c.args, code, errOut)
		}
		if c.want == "" && strings.Contains(errOut, "did you mean") || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: %q, want %q", c.args, errOut, c.want)
		}
	}
	for a, b := range map[[2]string]int{{"", ""}: 0, {"abc", ""}: 3, {"kitten", "sitting"}: 3, {"page-size", "pag-size"}: 1} {
		if d := editDistance(a[0], a[1]); d != b {
			t.Errorf("editDistance(%q, %q) = %d, want %d", a[0], a[1], d, b)
		}
	}
}

// Flags that take one of a few values complete them, through cobra's
// __complete (what the scripts of `rekey completion` call).
func TestFlagValuesComplete(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"verify", "-o", ""}, "table\njson\n"},
		{[]string{"status", "--output", ""}, "table\njson\n"},
		{[]string{"version", "-o", ""}, "text\njson\n"},
		{[]string{"run", "--priority", ""}, "low\nhigh\n"},
		{[]string{"plan", "--log-format", ""}, "auto\ntext\njson\n"},
		{[]string{"cutover", "--log-level", ""}, "debug\ninfo\nwarn\nerror\n"},
		{[]string{"run", "--start-from", ""}, "beginning\nnow\n"},
		{[]string{"bench", "--controller", ""}, "paced\nwindowed\nfixed\n"},
		{[]string{"run", "--unique-keys", ""}, "copy\ndrop\n"},
		{[]string{"run", "--mode", ""}, "auto\nlatest\nall-versions\n"},
		{[]string{"run", "--ttl-expiries", ""}, "apply\nskip\n"},
	} {
		out, errOut, code := cli(t, context.Background(), append([]string{"__complete"}, c.args...)...)
		if code != 0 || !strings.HasPrefix(out, c.want+":4\n") {
			t.Errorf("__complete %v: exit %d %q, want %q then the no-file directive\n%s", c.args, code, out, c.want, errOut)
		}
	}
}
