package lease_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rekey-dev/rekey/lease"
)

// The test binary doubles as the helper process of the subprocess tests:
// with helperEnv set it runs that helper instead of the tests.
const (
	helperEnv    = "REKEY_LEASE_TEST_HELPER"
	helperDirEnv = "REKEY_LEASE_TEST_DIR"
)

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "":
		os.Exit(m.Run())
	case "hold":
		helperHold(os.Getenv(helperDirEnv))
	case "write":
		helperWrite(os.Getenv(helperDirEnv))
	default:
		fmt.Fprintln(os.Stderr, "unknown helper", os.Getenv(helperEnv))
		os.Exit(2)
	}
}

// helperHold opens the state, says so, and holds it until stdin closes.
func helperHold(dir string) {
	s, err := lease.OpenFile(dir)
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
	s.Close()
	os.Exit(0)
}

// crashLeases is how many leases the writing helper updates concurrently.
const crashLeases = 4

// helperWrite opens the state and rewrites its meta and leases as fast as
// it can, until it is killed.
func helperWrite(dir string) {
	ctx := context.Background()
	fail := func(err error) {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	s, err := lease.OpenFile(dir)
	if err != nil {
		fail(err)
	}
	meta, err := s.Init(ctx, lease.Meta{Version: 1, Source: "s", Target: "t", Cutover: &lease.Cutover{}})
	if err != nil {
		fail(err)
	}
	list, err := s.List(ctx)
	if err != nil {
		fail(err)
	}
	for i := len(list); i < crashLeases; i++ {
		l, err := s.Create(ctx, lease.Lease{ID: fmt.Sprintf("r%d", i), Range: lease.Range{Max: "FF"}})
		if err != nil {
			fail(err)
		}
		list = append(list, l)
	}
	fmt.Println("ready")
	for _, l := range list {
		go func() {
			for {
				l.Items++
				l.Continuation = strconv.FormatInt(l.Items, 10) + strings.Repeat("c", 1+rand.IntN(4096))
				var err error
				if l, err = s.Update(ctx, l); err != nil {
					fail(err)
				}
			}
		}()
	}
	for {
		meta.Cutover.Items++
		meta.Cutover.VerifyDigest = strings.Repeat("d", rand.IntN(4096))
		if err := s.UpdateMeta(ctx, meta); err != nil {
			fail(err)
		}
	}
}

// startHelper runs the test binary as a helper on dir and waits for it to
// report that it holds the state.
func startHelper(t *testing.T, mode, dir string) (*exec.Cmd, io.WriteCloser) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, helperDirEnv+"="+dir)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "ready\n" {
		t.Fatalf("helper %s said %q, %v", mode, line, err)
	}
	go io.Copy(io.Discard, stdout) // keep an error report from blocking it
	return cmd, stdin
}

func TestOpenFileLockedInProcess(t *testing.T) {
	dir := t.TempDir()
	first, err := lease.OpenFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = lease.OpenFile(dir)
	if elapsed := time.Since(start); elapsed > time.Second {
		t.Errorf("second OpenFile took %v; it must fail at once", elapsed)
	}
	var le *lease.LockedError
	if !errors.Is(err, lease.ErrLocked) || !errors.As(err, &le) {
		t.Fatalf("second OpenFile = %v, want a *LockedError wrapping ErrLocked", err)
	}
	host, _ := os.Hostname()
	if le.PID != os.Getpid() || le.Hostname != host || le.Dir != dir {
		t.Fatalf("LockedError = %+v, want pid %d host %q dir %s", le, os.Getpid(), host, dir)
	}
	if msg := err.Error(); !strings.Contains(msg, strconv.Itoa(os.Getpid())) || !strings.Contains(msg, dir) {
		t.Fatalf("message %q names neither the holder's pid nor the directory", msg)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := lease.OpenFile(dir)
	if err != nil {
		t.Fatalf("OpenFile after Close: %v", err)
	}
	again.Close()
}

func TestOpenFileLockedByAnotherProcess(t *testing.T) {
	dir := t.TempDir()
	cmd, _ := startHelper(t, "hold", dir)

	start := time.Now()
	_, err := lease.OpenFile(dir)
	if elapsed := time.Since(start); elapsed > time.Second {
		t.Errorf("OpenFile took %v; it must fail at once", elapsed)
	}
	var le *lease.LockedError
	if !errors.As(err, &le) || !errors.Is(err, lease.ErrLocked) {
		t.Fatalf("OpenFile while another process holds the state = %v, want ErrLocked", err)
	}
	if le.PID != cmd.Process.Pid || !strings.Contains(err.Error(), strconv.Itoa(cmd.Process.Pid)) {
		t.Fatalf("error %q names pid %d, want the holder %d", err, le.PID, cmd.Process.Pid)
	}

	// kill -9: the OS drops the lock, and no stale lock remains.
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	s, err := lease.OpenFile(dir)
	if err != nil {
		t.Fatalf("OpenFile after the holder was killed: %v", err)
	}
	defer s.Close()
	b, err := os.ReadFile(filepath.Join(dir, "lock"))
	if err != nil || !strings.Contains(string(b), fmt.Sprintf(`"pid":%d`, os.Getpid())) {
		t.Fatalf("lock file says %q, %v; want this process", b, err)
	}
}

// TestCrashSafety kills a process that rewrites the state as fast as it can
// at random moments. Every time, the state opens at once (no stale lock),
// every file decodes, and no counter has gone back.
func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	dir := t.TempDir()
	ctx := context.Background()
	last := map[string]int64{}
	lastMeta := int64(0)
	sawTemp := 0
	const rounds = 15
	for round := range rounds {
		cmd, _ := startHelper(t, "write", dir)
		time.Sleep(time.Duration(rand.IntN(40_000)) * time.Microsecond)
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		cmd.Wait()
		sawTemp += countTempFiles(t, dir)

		s, err := lease.OpenFile(dir)
		if err != nil {
			t.Fatalf("round %d: OpenFile after kill: %v", round, err)
		}
		if n := countTempFiles(t, dir); n != 0 {
			t.Fatalf("round %d: %d temp files left after OpenFile", round, n)
		}
		meta, err := s.Init(ctx, lease.Meta{})
		if err != nil {
			t.Fatalf("round %d: meta: %v", round, err)
		}
		if meta.Source != "s" || meta.Cutover == nil || meta.Cutover.Items < lastMeta {
			t.Fatalf("round %d: meta %+v went back from %d", round, meta, lastMeta)
		}
		lastMeta = meta.Cutover.Items
		list, err := s.List(ctx)
		if err != nil {
			t.Fatalf("round %d: List: %v", round, err)
		}
		if len(list) != crashLeases {
			t.Fatalf("round %d: %d leases, want %d", round, len(list), crashLeases)
		}
		for _, l := range list {
			consistent := l.Items == 0 && l.Continuation == "" || strings.HasPrefix(l.Continuation, strconv.FormatInt(l.Items, 10)+"c")
			if l.Items < last[l.ID] || !consistent {
				t.Fatalf("round %d: lease %s has items %d, continuation %.20q; it had %d", round, l.ID, l.Items, l.Continuation, last[l.ID])
			}
			last[l.ID] = l.Items
		}
		s.Close()
	}
	t.Logf("after %d kills: lease items %v, meta writes %d; %d temp files were cleaned up", rounds, last, lastMeta, sawTemp)
}

func countTempFiles(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	for _, d := range []string{dir, filepath.Join(dir, "leases")} {
		entries, err := os.ReadDir(d)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if strings.Contains(e.Name(), ".tmp-") {
				n++
			}
		}
	}
	return n
}
