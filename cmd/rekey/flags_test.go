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
