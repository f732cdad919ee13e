package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rekey-dev/rekey/migrate"
)

// deadLetterFileMB is the size of the dead-letter file the memory test
// writes: 48 MB in CI, REKEY_DEADLETTER_MB for a bigger run (the 300 MB of
// the report that took status to 414 MB RSS).
func deadLetterFileMB(t *testing.T) int {
	if s := os.Getenv("REKEY_DEADLETTER_MB"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("REKEY_DEADLETTER_MB=%q: want a positive number", s)
		}
		return n
	}
	return 48
}

// writeBigDeadLetterFile writes about mb megabytes of dead letters as a
// long run leaves them: 1,000 items that keep failing, each version a full
// copy of an 8 KB item, one in ten later resolved. It returns how many are
// dead at the end.
func writeBigDeadLetterFile(t *testing.T, path string, mb int) int {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	const items = 1000
	blob := strings.Repeat("0123456789abcdef", 512)
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	written := 0
	for v := 0; written < mb<<20; v++ {
		for i := 0; i < items && written < mb<<20; i++ {
			id := fmt.Sprintf("order-%05d", i)
			dl := migrate.DeadLetter{Time: at.Add(time.Duration(v*items+i) * time.Millisecond), SourceID: id,
				SourceKey: json.RawMessage(`["eu"]`), Kind: "missing-field", Reason: "the item has no tenantId",
				Item: json.RawMessage(fmt.Sprintf(`{"id":%q,"region":"eu","version":%d,"blob":%q}`, id, v, blob))}
			b, _ := json.Marshal(dl)
			n, _ := w.Write(append(b, '\n'))
			written += n
		}
	}
	dead := 0
	for i := 0; i < items; i++ {
		if i%10 == 0 {
			b, _ := json.Marshal(migrate.DeadLetter{Time: at, SourceID: fmt.Sprintf("order-%05d", i), SourceKey: json.RawMessage(`["eu"]`), Resolved: true})
			w.Write(append(b, '\n'))
		} else {
			dead++
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return dead
}

// peakRSS runs rekey as a child process and returns its peak resident set
// in MB and its standard output's size in bytes. The child reports its own
// peak (VmHWM) when it exits: the rusage of a child started with vfork, as
// os/exec starts it, counts the parent's pages until the exec.
func peakRSS(t *testing.T, args ...string) (rssMB float64, outBytes int64) {
	t.Helper()
	peakFile := filepath.Join(t.TempDir(), "peak")
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "REKEY_TEST_MAIN=1", "REKEY_TEST_PEAK_FILE="+peakFile)
	var out countingWriter
	var errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("rekey %s: %v\n%s", strings.Join(args[:2], " "), err, errOut.String())
	}
	b, err := os.ReadFile(peakFile)
	if err != nil {
		t.Skipf("the child could not report its peak RSS (VmHWM needs Linux's /proc): %v", err)
	}
	kb, err := strconv.ParseFloat(strings.TrimSpace(string(b)), 64)
	if err != nil {
		t.Fatalf("peak RSS %q: %v", b, err)
	}
	return kb / 1024, out.n
}

// recordPeakRSS writes this process's peak resident set in KB (VmHWM of
// /proc/self/status) to REKEY_TEST_PEAK_FILE, when that is set.
func recordPeakRSS() {
	path := os.Getenv("REKEY_TEST_PEAK_FILE")
	if path == "" {
		return
	}
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			os.WriteFile(path, []byte(strings.TrimSuffix(strings.TrimSpace(rest), " kB")), 0o644)
		}
	}
}

type countingWriter struct{ n int64 }

func (c *countingWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}

// status, deadletter list and run over a large dead-letter file: their
// peak RSS stays near that of a process that reads nothing, because the
// file is streamed and indexed by item id (and run compacts it); it does
// not grow with the file. The figures are logged (go test -v).
func TestDeadLetterMemoryIsBounded(t *testing.T) {
	e := newE2E(t)
	src := e.container("orders", 400, "/region")
	put(t, src, "eu", tenantOrder("ok-1", "eu", "contoso"))
	if out, errOut, code := e.deadLetterRun(t, context.Background()); code != 0 {
		t.Fatalf("first run: exit %d\n%s%s", code, out, errOut)
	}
	mb := deadLetterFileMB(t)
	path := filepath.Join(e.state, "deadletter.jsonl")
	dead := writeBigDeadLetterFile(t, path, mb)
	info, _ := os.Stat(path)

	base, _ := peakRSS(t, "version", "--log-level", "warn")
	status, _ := peakRSS(t, "status", "--state", e.state)
	list, listed := peakRSS(t, append([]string{"deadletter", "list", "-o", "json"}, e.args("orders", "target", tornKeys...)...)...)
	run, _ := peakRSS(t, append([]string{"run", "--until-caught-up", "--poll-interval", "20ms"}, e.args("orders", "target", tornKeys...)...)...)
	after, _ := os.Stat(path)
	t.Logf("dead-letter file %.0f MB (%d dead items), peak RSS: baseline (rekey version) %.1f MB, status %.1f MB, deadletter list %.1f MB (%.1f MB listed), run %.1f MB; after run the file is %.1f MB",
		float64(info.Size())/(1<<20), dead, base, status, list, float64(listed)/(1<<20), run, float64(after.Size())/(1<<20))

	out, _, code := cli(t, context.Background(), "status", "--state", e.state)
	if code != 0 || !strings.Contains(out, fmt.Sprintf("dead letters: %d", dead)) {
		t.Fatalf("status after the run: exit %d, want %d dead letters\n%s", code, dead, out)
	}
	// The index holds 1,000 ids; a record is read one at a time. 32 MB over
	// the baseline leaves room for the runtime's and the SDK's own buffers,
	// and is well under the file's size.
	limit := base + 32
	for name, rss := range map[string]float64{"status": status, "deadletter list": list, "run": run} {
		if rss > limit {
			t.Errorf("%s peaked at %.1f MB RSS over a %d MB dead-letter file, want at most %.1f MB", name, rss, mb, limit)
		}
	}
	if after.Size() > 2*int64(dead)*9000 {
		t.Errorf("run left a %d-byte file for %d dead items: it was not compacted", after.Size(), dead)
	}
}
