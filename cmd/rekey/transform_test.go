package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var updateTransformGolden = flag.Bool("update-transform", false, "rewrite testdata/transform/*.golden from the current output")

const transformTestdata = "../../testdata/transform"

// runRekey runs the root command in-process and returns its exit code,
// standard output and standard error.
func runRekey(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	for _, name := range []string{"key", "source-key", "config"} {
		if _, ok := os.LookupEnv(envName(name)); ok {
			t.Setenv(envName(name), "") // set, then unset below: the test must not inherit it
			os.Unsetenv(envName(name))
		}
	}
	root := newRootCommand()
	var stdout, stderr bytes.Buffer
	root.SetIn(strings.NewReader(stdin))
	root.SetOut(&stdout)
	root.SetErr(&stderr)
	root.SetArgs(append([]string{"--log-format", "text"}, args...))
	err := root.ExecuteContext(context.Background())
	code := ExitOK
	if err != nil {
		// As main does: an error without a code of its own is ExitError.
		code = ExitError
		var ee *exitError
		if errors.As(err, &ee) {
			code, err = ee.code, ee.err
		}
		if err != nil {
			fmt.Fprintln(&stderr, "rekey:", err)
		}
	}
	return code, stdout.String(), stderr.String()
}

// TestTransformGolden runs `rekey transform` over the sample orders and
// compares exit code, output and summary with the golden files. Run with
// -update-transform to rewrite them after a deliberate change.
func TestTransformGolden(t *testing.T) {
	orders := filepath.Join(transformTestdata, "orders.jsonl")
	tests := []struct {
		golden string
		args   []string
	}{
		{"natural", []string{"--key", "/tenantId", "--source-key", "/region", orders}},
		{"synthetic", []string{"--key", "/pk={tenantId}-{createdAt|yyyyMM}", "--source-key", "/region", orders}},
		{"hierarchical", []string{"--key", "/tenantId", "--key", "/month={_ts|yyyyMM}", "--key", "/id", orders}},
		{"nested-target", []string{"--key", "/routing/pk={customer.address.city|lower}|{createdMs|yyyyMMdd?nodate}", orders}},
		{"defaults-hash", []string{"--key", "/pk={region?unknown}-{tenantId|upper?NONE}-{{{id|hash:16}}}", orders}},
		{"bad-spec", []string{"--key", "/tenantId", "--key", "/pk={createdAt|yyyymm}", orders}},
		{"bad-source-key", []string{"--key", "/tenantId", "--source-key", "region", orders}},
		{"missing-file", []string{"--key", "/tenantId", filepath.Join(transformTestdata, "no-such-file.jsonl")}},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			code, stdout, stderr := runRekey(t, "", append([]string{"transform"}, tt.args...)...)
			got := fmt.Sprintf("# rekey transform %s\nexit %d\n--- stdout\n%s--- stderr\n%s",
				strings.Join(tt.args, " "), code, stdout, stderr)
			got = strings.ReplaceAll(got, transformTestdata+"/", "testdata/transform/")
			path := filepath.Join(transformTestdata, "cli-"+tt.golden+".golden")
			if *updateTransformGolden {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update-transform to create it)", err)
			}
			if got != string(want) {
				t.Errorf("output differs from %s (run with -update-transform after a deliberate change)\n got:\n%s\nwant:\n%s", path, got, want)
			}
			for i, line := range strings.Split(strings.TrimSuffix(stdout, "\n"), "\n") {
				if line != "" && !json.Valid([]byte(line)) {
					t.Errorf("stdout line %d is not JSON: %s", i+1, line)
				}
			}
		})
	}
}

func TestTransformStdin(t *testing.T) {
	in := "{\"id\":\"a\",\"t\":\"x\",\"_ts\":1}\r\n\n   \n{\"id\":\"b\",\"t\":2}\n"
	code, stdout, stderr := runRekey(t, in, "transform", "--key", "/pk={t}", "-")
	want := `{"id":"a","key":["x"],"item":{"id":"a","t":"x","pk":"x"}}` + "\n" +
		`{"id":"b","key":["2"],"item":{"id":"b","t":2,"pk":"2"}}` + "\n"
	if code != ExitOK || stdout != want || stderr != "2 items, 0 failed\n" {
		t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	// Without FILE, standard input is read too.
	code, stdout, _ = runRekey(t, `{"id":"c"}`, "transform", "--key", "/t")
	if code != ExitItemsFailed || !strings.Contains(stdout, `"kind":"missing-field"`) || !strings.Contains(stdout, `"line":1`) {
		t.Errorf("exit %d\nstdout:\n%s", code, stdout)
	}
}

func TestTransformLargeLine(t *testing.T) {
	big := strings.Repeat("x", 3<<20) // over the 2 MB item limit, under the line limit
	in := `{"id":"big","t":"k","blob":"` + big + `"}` + "\n"
	code, stdout, stderr := runRekey(t, in, "transform", "--key", "/t")
	if code != ExitOK || !strings.HasSuffix(stdout, `"}}`+"\n") || len(stdout) < 3<<20 {
		t.Errorf("exit %d, %d bytes of output, stderr %q", code, len(stdout), stderr)
	}
}

func TestTransformFlagErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"transform"}, "--key is required"},
		{[]string{"transform", "--key", "/a", "--key", "/b", "--key", "/c", "--key", "/d"}, "at most 3 paths"},
		{[]string{"transform", "--key", "/a", "one.jsonl", "two.jsonl"}, "accepts at most 1 arg"},
	}
	for _, tt := range tests {
		code, _, stderr := runRekey(t, "", tt.args...)
		if code != ExitError || !strings.Contains(stderr, tt.want) {
			t.Errorf("%q: exit %d, stderr %q; want exit %d and %q", tt.args, code, stderr, ExitError, tt.want)
		}
	}
}

func TestTransformKeyFromEnvironment(t *testing.T) {
	t.Setenv("REKEY_KEY", "/tenantId,/userId")
	root := newRootCommand()
	var stdout, stderr bytes.Buffer
	root.SetIn(strings.NewReader(`{"id":"1","tenantId":"t","userId":"u"}`))
	root.SetOut(&stdout)
	root.SetErr(&stderr)
	root.SetArgs([]string{"transform"})
	if err := root.Execute(); err != nil {
		t.Fatalf("%v: %s", err, stderr.String())
	}
	if want := `{"id":"1","key":["t","u"],"item":{"id":"1","tenantId":"t","userId":"u"}}` + "\n"; stdout.String() != want {
		t.Errorf("stdout = %s, want %s", stdout.String(), want)
	}
}
