package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rekey-dev/rekey/internal/cosmos"
	"github.com/rekey-dev/rekey/internal/emulator"
	"github.com/rekey-dev/rekey/internal/emulator/emulatortest"
	"github.com/rekey-dev/rekey/migrate"
	"github.com/rekey-dev/rekey/transform"
)

// TestMain lets a test run this binary as rekey itself, for the tests that
// need a real process to kill or signal.
func TestMain(m *testing.M) {
	if os.Getenv("REKEY_TEST_MAIN") == "1" {
		main()
		recordPeakRSS() // for the memory tests
		os.Exit(0)
	}
	os.Exit(m.Run())
}

const testDB = "shop"

// e2e is an emulator, a client of it, and a state directory.
type e2e struct {
	t      *testing.T
	srv    *emulator.Server
	client *cosmos.Client
	state  string
}

func newE2E(t *testing.T, opts ...emulatortest.Option) *e2e {
	t.Helper()
	srv := emulatortest.Start(t, opts...)
	client, err := cosmos.NewClient(context.Background(), cosmos.Config{Endpoint: srv.Endpoint(), AccountKey: srv.Key(), Insecure: true, Priority: "high"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)
	return &e2e{t: t, srv: srv, client: client, state: filepath.Join(t.TempDir(), "state")}
}

// container creates db/id keyed on paths with ru RU/s.
func (e *e2e) container(id string, ru int, paths ...string) *cosmos.Container {
	e.t.Helper()
	if err := e.client.CreateContainer(context.Background(), testDB, id, migrate.TargetDefinition(paths), ru, 0); err != nil {
		e.t.Fatalf("create container %s: %v", id, err)
	}
	return e.client.Container(testDB, id)
}

// args are the connection and migration flags of a run from src to dst.
func (e *e2e) args(src, dst string, keys ...string) []string {
	a := []string{"--endpoint", e.srv.Endpoint(), "--account-key", e.srv.Key(), "--insecure",
		"--source", testDB + "/" + src, "--target", testDB + "/" + dst, "--state", e.state, "--log-level", "warn"}
	for _, k := range keys {
		a = append(a, "--key", k)
	}
	return a
}

// cli runs rekey in this process and returns its output and exit code.
func cli(t *testing.T, ctx context.Context, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := newRootCommand()
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&errOut)
	cmd, err := root.ExecuteContextC(ctx)
	code, msg := exitStatus(ctx, cmd, err)
	if msg != "" {
		errOut.WriteString("rekey: " + msg + "\n")
	}
	return out.String(), errOut.String(), code
}

// process starts rekey as a child process.
func process(t *testing.T, args ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "REKEY_TEST_MAIN=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, &out
}

// put upserts a source item.
func put(t *testing.T, c *cosmos.Container, key string, body map[string]any) {
	t.Helper()
	b, _ := json.Marshal(body)
	k := migrate.Key{transform.StringValue(key)}
	_, err := c.Create(context.Background(), k, b)
	if errors.Is(err, migrate.ErrConflict) {
		var it migrate.Item
		if it, err = c.Read(context.Background(), k, body["id"].(string)); err == nil {
			_, err = c.Replace(context.Background(), k, body["id"].(string), b, it.ETag)
		}
	}
	if err != nil {
		t.Fatalf("put %v: %v", body["id"], err)
	}
}

// all reads every item of a container.
func all(t *testing.T, c *cosmos.Container) [][]byte {
	t.Helper()
	var out [][]byte
	err := c.Query(context.Background(), "SELECT * FROM c", nil, nil, 500, func(items [][]byte, _ float64) error {
		out = append(out, items...)
		return nil
	})
	if err != nil {
		t.Fatalf("scan %s: %v", c, err)
	}
	return out
}

// checkCopy asserts the target holds exactly one copy of every live source
// item, under the key the spec gives it and with the same content; target
// items of deleted source items (the change feed carries no deletes) are
// allowed only for the ids in deleted.
func checkCopy(t *testing.T, src, dst *cosmos.Container, keys []string, srcPaths []string, deleted map[string]bool) {
	t.Helper()
	spec, err := transform.ParseSpec(keys)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := transform.New(spec, srcPaths)
	if err != nil {
		t.Fatal(err)
	}
	type copyOf struct {
		key    string
		digest migrate.Digest
	}
	targets := map[string][]copyOf{} // by source identity
	for _, body := range all(t, dst) {
		id, sk, err := tr.SourceKeyOf(body)
		if err != nil {
			t.Fatalf("target item %s: %v", body, err)
		}
		res, err := tr.Apply(body)
		if err != nil {
			t.Fatalf("target item %s does not transform: %v", body, err)
		}
		d, _ := migrate.ContentDigest(body, nil)
		ident := id + migrate.Key(sk).String()
		targets[ident] = append(targets[ident], copyOf{key: migrate.Key(res.Key).String(), digest: d})
	}
	live := 0
	for _, body := range all(t, src) {
		live++
		res, err := tr.Apply(body)
		if err != nil {
			t.Fatalf("source item %s does not transform: %v", body, err)
		}
		ident := res.ID + migrate.Key(res.SourceKey).String()
		copies := targets[ident]
		delete(targets, ident)
		want, _ := migrate.ContentDigest(res.Item, nil)
		if len(copies) != 1 || copies[0].key != migrate.Key(res.Key).String() || copies[0].digest != want {
			t.Errorf("source item %s: target copies %+v, want one under %s with its content", ident, copies, migrate.Key(res.Key))
		}
	}
	for ident, copies := range targets {
		id := ident[:strings.IndexByte(ident, '[')]
		if !deleted[id] {
			t.Errorf("target holds %d copies of %s, which is not in the source and was never deleted", len(copies), ident)
		}
	}
	if live == 0 {
		t.Fatal("the source is empty: nothing was checked")
	}
}

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func itemID(i int) string { return fmt.Sprintf("order-%05d", i) }

func keyOf(s string) migrate.Key { return migrate.Key{transform.StringValue(s)} }

func mustRef(t *testing.T, s string) migrate.ContainerRef {
	t.Helper()
	r, err := migrate.ParseContainerRef(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
