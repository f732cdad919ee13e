package main

import (
	"context"
	"encoding/base64"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// withFlag returns args with the value of flag replaced (or flag dropped
// when value is "-").
func withFlag(args []string, flag, value string) []string {
	out := slices.Clone(args)
	i := slices.Index(out, flag)
	switch {
	case i < 0:
		return append(out, flag, value)
	case value == "-" && flag == "--insecure":
		return slices.Delete(out, i, i+1)
	default:
		out[i+1] = value
	}
	return out
}

// caughtUpMigration is an emulator with a migration of 50 items from shop/orders
// to shop/target, caught up, and the flags that name it.
func caughtUpMigration(t *testing.T) (*e2e, []string) {
	t.Helper()
	e := newE2E(t)
	src := e.container("orders", 12_000, "/region")
	for i := 0; i < 50; i++ {
		put(t, src, regions[i%len(regions)], order(i, 1))
	}
	base := e.args("orders", "target", "/tenantId")
	if out, errOut, code := cli(t, context.Background(), append([]string{"run", "--until-caught-up", "--create-target", "--target-throughput", "12000"}, base...)...); code != 0 {
		t.Fatalf("run: exit %d\n%s%s", code, out, errOut)
	}
	return e, base
}

// closedPort is a loopback address where nothing listens.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// Every command that talks to the account fails the same way, with the same
// exit code, on a wrong key, a missing container, a TLS mismatch, a refused
// connection and a cancellation: the README's exit-code table.
func TestEveryCommandReportsAccountFailuresAlike(t *testing.T) {
	e, base := caughtUpMigration(t)
	commands := []struct {
		name   string
		args   []string
		failed int // the command's code for a failure while it works
	}{
		{"plan", []string{"plan"}, ExitIncomplete},
		{"run", []string{"run", "--until-caught-up"}, ExitRunFailed},
		{"verify", []string{"verify", "--recheck-delay", "-1s"}, ExitIncomplete},
		{"cutover", []string{"cutover", "--dry-run", "--quiet-period", "100ms"}, ExitIncomplete},
		{"deadletter replay", []string{"deadletter", "replay"}, ExitRunFailed},
		{"status", []string{"status"}, ExitError},
	}
	wrongKey := base64.StdEncoding.EncodeToString([]byte("this is not the account key of the emulator"))
	refused := "https://" + closedPort(t) + "/"
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	failures := []struct {
		name    string
		args    func([]string) []string
		ctx     context.Context
		code    func(failed int) int
		message string
	}{
		{"wrong key", func(a []string) []string { return withFlag(a, "--account-key", wrongKey) }, nil,
			func(int) int { return ExitError }, "the account key was refused by " + e.srv.Endpoint()},
		{"missing source", func(a []string) []string { return withFlag(a, "--source", testDB+"/nope") }, nil,
			func(int) int { return ExitError }, "container " + testDB + "/nope does not exist"},
		{"TLS without --insecure", func(a []string) []string { return withFlag(a, "--insecure", "-") }, nil,
			func(int) int { return ExitError }, "add --insecure"},
		{"connection refused", func(a []string) []string { return withFlag(a, "--endpoint", refused) }, nil,
			func(failed int) int { return failed }, "could not connect to " + refused + ": connection refused"},
		{"cancelled (SIGINT)", func(a []string) []string { return a }, cancelled,
			func(int) int { return ExitInterrupted }, ""},
	}
	for _, c := range commands {
		for _, f := range failures {
			if c.name == "status" && f.name == "missing source" {
				continue // status reads the state, which names no container
			}
			t.Run(c.name+"/"+f.name, func(t *testing.T) {
				if f.name == "connection refused" {
					t.Parallel() // seconds of retries each
				}
				ctx := f.ctx
				if ctx == nil {
					ctx = context.Background()
				}
				args := append(slices.Clone(c.args), f.args(base)...)
				start := time.Now()
				out, errOut, code := cli(t, ctx, args...)
				want := f.code(c.failed)
				if code != want || !strings.Contains(errOut, f.message) {
					t.Errorf("exit %d, want %d with %q\n%s%s", code, want, f.message, out, errOut)
				}
				if f.message != "" && strings.Count(errOut, "rekey: ") != 1 {
					t.Errorf("want one error line:\n%s", errOut)
				}
				t.Logf("%v: %s", time.Since(start).Round(time.Millisecond), strings.TrimSpace(errOut))
			})
		}
	}
	// A missing target: verify names it (plan does not read it; cutover
	// and status find the state belongs to another migration).
	for _, c := range []string{"verify"} {
		args := append([]string{c}, withFlag(base, "--target", testDB+"/gone")...)
		_, errOut, code := cli(t, context.Background(), args...)
		if code != ExitError || !strings.Contains(errOut, "container "+testDB+"/gone does not exist") {
			t.Errorf("%s with a missing target: exit %d\n%s", c, code, errOut)
		}
	}

}

// A corrupt state is a bad state: 2 from every command that opens it.
func TestCorruptStateExits2(t *testing.T) {
	e, base := caughtUpMigration(t)
	if err := os.WriteFile(filepath.Join(e.state, "state.json"), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range [][]string{{"run", "--until-caught-up"}, {"cutover", "--dry-run"}, {"verify", "--fix"}, {"status"}, {"deadletter", "replay"}} {
		_, errOut, code := cli(t, context.Background(), append(c, base...)...)
		if code != ExitError || !strings.Contains(errOut, "state.json") {
			t.Errorf("%v on a corrupt state: exit %d, want %d naming the file\n%s", c, code, ExitError, errOut)
		}
	}
}
