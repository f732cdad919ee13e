package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rekey-dev/rekey/migrate"
	"github.com/rekey-dev/rekey/migrate/deadletter"
)

// tornKeys is the key spec of the dead-letter file tests: items without a
// tenantId cannot be transformed and are dead-lettered.
var tornKeys = []string{"/pk={tenantId}-{createdAt|yyyyMM}"}

// tenantOrder is a source item; an empty tenant leaves the field out.
func tenantOrder(id, region, tenant string) map[string]any {
	m := map[string]any{"id": id, "region": region, "createdAt": "2024-05-01T00:00:00Z"}
	if tenant != "" {
		m["tenantId"] = tenant
	}
	return m
}

// deadLetterRun runs rekey with the dead-letter test key until caught up.
func (e *e2e) deadLetterRun(t *testing.T, ctx context.Context, extra ...string) (string, string, int) {
	t.Helper()
	args := append([]string{"run", "--until-caught-up", "--create-target", "--target-throughput", "12000", "--poll-interval", "20ms"}, e.args("orders", "target", tornKeys...)...)
	return cli(t, ctx, append(args, extra...)...)
}

// listDeadIDs returns the source ids `rekey deadletter list -o json` shows.
func (e *e2e) listDeadIDs(t *testing.T) (ids []string, errOut string, code int) {
	t.Helper()
	out, errOut, code := cli(t, context.Background(), append([]string{"deadletter", "list", "-o", "json"}, e.args("orders", "target", tornKeys...)...)...)
	if code != 0 {
		return nil, errOut, code
	}
	for _, dl := range decodeDeadLetterList(t, out) {
		ids = append(ids, dl.SourceID)
	}
	return ids, errOut, code
}

// A crash in the middle of an append leaves a torn last line in the
// dead-letter file. The next run repairs the tail, so its own appends start
// on a line of their own: every reader (run, list, status, verify) then sees
// every dead item.
func TestDeadLetterFileTornTail(t *testing.T) {
	e := newE2E(t)
	src := e.container("orders", 12_000, "/region")
	put(t, src, "eu", tenantOrder("ok-1", "eu", "contoso"))
	put(t, src, "eu", tenantOrder("dead-1", "eu", ""))
	put(t, src, "us", tenantOrder("dead-2", "us", ""))
	if out, errOut, code := e.deadLetterRun(t, context.Background()); code != 0 {
		t.Fatalf("first run: exit %d\n%s%s", code, out, errOut)
	}
	path := filepath.Join(e.state, "deadletter.jsonl")

	// A third item fails; a run was killed while appending its dead letter,
	// before the page was checkpointed: the file ends in half a line.
	put(t, src, "eu", tenantOrder("dead-3", "eu", ""))
	torn, _ := json.Marshal(migrate.DeadLetter{SourceID: "dead-3", SourceKey: json.RawMessage(`["eu"]`), Kind: "missing-field", Reason: "torn"})
	appendFile(t, path, torn[:len(torn)/2])

	if out, errOut, code := e.deadLetterRun(t, context.Background()); code != 0 {
		t.Fatalf("run after the torn append: exit %d\n%s%s", code, out, errOut)
	}
	checkLines(t, path)
	ids, errOut, code := e.listDeadIDs(t)
	if code != 0 || strings.Join(ids, ",") != "dead-1,dead-2,dead-3" && strings.Join(ids, ",") != "dead-2,dead-1,dead-3" {
		t.Fatalf("deadletter list: exit %d, ids %v\n%s", code, ids, errOut)
	}
	out, errOut, code := cli(t, context.Background(), "status", "--state", e.state)
	if code != 0 || !strings.Contains(out, "dead letters: 3") {
		t.Fatalf("status: exit %d\n%s%s", code, out, errOut)
	}
	out, errOut, code = cli(t, context.Background(), append([]string{"verify", "--recheck-delay", "-1s"}, e.args("orders", "target", tornKeys...)...)...)
	if !strings.Contains(out, "dead letters") || !strings.Contains(out, "3") || code == ExitError {
		t.Fatalf("verify: exit %d\n%s%s", code, out, errOut)
	}
	var n int
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) == 3 && f[0] == "dead" && f[1] == "letters" {
			n, _ = strconv.Atoi(f[2])
		}
	}
	if n != 3 {
		t.Fatalf("verify counts %d dead letters, want 3:\n%s", n, out)
	}
}

// A complete line that is not a dead letter (what the old append after a
// torn line left: two records glued together) is corruption that no reader
// may hide: status, verify, list and run all fail naming the file and the
// line, instead of reporting 0 dead letters.
func TestDeadLetterFileCorruptLineIsReported(t *testing.T) {
	e := newE2E(t)
	src := e.container("orders", 12_000, "/region")
	put(t, src, "eu", tenantOrder("ok-1", "eu", "contoso"))
	put(t, src, "eu", tenantOrder("dead-1", "eu", ""))
	if out, errOut, code := e.deadLetterRun(t, context.Background()); code != 0 {
		t.Fatalf("first run: exit %d\n%s%s", code, out, errOut)
	}
	path := filepath.Join(e.state, "deadletter.jsonl")
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// line 2: half a record glued to a whole one
	appendFile(t, path, append(good[:len(good)/2:len(good)/2], good...))
	want := path + ", line 2"

	out, errOut, code := cli(t, context.Background(), "status", "--state", e.state)
	if code == 0 || !strings.Contains(errOut, want) {
		t.Errorf("status over a corrupt dead-letter file: exit %d, want an error naming %q\n%s%s", code, want, out, errOut)
	}
	_, errOut, code = e.listDeadIDs(t)
	if code == 0 || !strings.Contains(errOut, want) {
		t.Errorf("deadletter list: exit %d, want an error naming %q\n%s", code, want, errOut)
	}
	out, errOut, code = cli(t, context.Background(), append([]string{"verify", "--recheck-delay", "-1s"}, e.args("orders", "target", tornKeys...)...)...)
	if code == 0 || !strings.Contains(errOut, want) {
		t.Errorf("verify: exit %d, want an error naming %q\n%s%s", code, want, out, errOut)
	}
	out, errOut, code = e.deadLetterRun(t, context.Background())
	if code == 0 || !strings.Contains(errOut, want) {
		t.Errorf("run: exit %d, want an error naming %q\n%s%s", code, want, out, errOut)
	}
}

func appendFile(t *testing.T, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// checkLines asserts every line of the file is one whole dead letter.
func checkLines(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 0 && b[len(b)-1] != '\n' {
		t.Errorf("%s does not end with a newline", path)
	}
	for i, line := range bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n")) {
		var dl migrate.DeadLetter
		if err := json.Unmarshal(line, &dl); err != nil {
			t.Errorf("%s, line %d is not a dead letter: %v: %.80s", path, i+1, err, line)
		}
	}
}

// diskFull lets its first write through and then fills up: the next write
// stores half its bytes and fails with ENOSPC, as a full disk does.
type diskFull struct {
	w      io.Writer
	writes *atomic.Int32
}

func (d diskFull) Write(p []byte) (int, error) {
	if d.writes.Add(1) == 1 {
		return d.w.Write(p)
	}
	n, _ := d.w.Write(p[:len(p)/2])
	return n, &os.PathError{Op: "write", Path: "deadletter.jsonl", Err: syscall.ENOSPC}
}

// A full disk under the dead-letter file stops the run with an error that
// names the file; the half-written line it leaves is cut off, so once there
// is space again the next run records every dead item and every reader
// sees them.
func TestDeadLetterFileFullDisk(t *testing.T) {
	e := newE2E(t)
	src := e.container("orders", 400, "/region")
	put(t, src, "eu", tenantOrder("ok-1", "eu", "contoso"))
	for _, id := range []string{"dead-1", "dead-2", "dead-3", "dead-4"} {
		put(t, src, "eu", tenantOrder(id, "eu", ""))
	}
	var writes atomic.Int32
	deadLetterFileOptions = []deadletter.Option{deadletter.WithWriter(func(w io.Writer) io.Writer {
		return diskFull{w: w, writes: &writes}
	})}
	t.Cleanup(func() { deadLetterFileOptions = nil })
	// One item per page, so each page's sync is one write to the file.
	// The deadline only bounds the test should the run not stop by itself.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, errOut, code := e.deadLetterRun(t, ctx, "--page-size", "1")
	path := filepath.Join(e.state, "deadletter.jsonl")
	if code != ExitRunFailed || !strings.Contains(errOut, path) || !strings.Contains(errOut, "no space left on device") {
		t.Fatalf("run on a full disk: exit %d, want %d and an error naming %s and ENOSPC\n%s%s", code, ExitRunFailed, path, out, errOut)
	}
	checkLines(t, path)

	deadLetterFileOptions = nil // space again
	if out, errOut, code := e.deadLetterRun(t, context.Background()); code != 0 {
		t.Fatalf("run after the full disk: exit %d\n%s%s", code, out, errOut)
	}
	checkLines(t, path)
	ids, errOut, code := e.listDeadIDs(t)
	slices.Sort(ids)
	if code != 0 || strings.Join(ids, ",") != "dead-1,dead-2,dead-3,dead-4" {
		t.Fatalf("deadletter list: exit %d, ids %v\n%s", code, ids, errOut)
	}
	out, errOut, code = cli(t, context.Background(), "status", "--state", e.state)
	if code != 0 || !strings.Contains(out, "dead letters: 4") {
		t.Fatalf("status: exit %d\n%s%s", code, out, errOut)
	}
}
