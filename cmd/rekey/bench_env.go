package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rekey-dev/rekey/internal/cosmos"
	"github.com/rekey-dev/rekey/internal/emulator"
	"github.com/rekey-dev/rekey/migrate"
	"github.com/rekey-dev/rekey/transform"
)

// benchEmulator is `rekey emulator` running as a child process, so that the
// benchmark's CPU time and memory are the migrating client's alone.
type benchEmulator struct {
	cmd      *exec.Cmd
	endpoint string
	key      string
	admin    *http.Client // for /admin/metrics; loopback, self-signed
	done     chan error
}

// startBenchEmulator runs this executable's emulator command on a free
// loopback port with the admin API, and reads its endpoint from its output.
func startBenchEmulator(ctx context.Context) (*benchEmulator, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find the rekey executable: %w", err)
	}
	cmd := exec.Command(exe, "emulator", "--addr", "127.0.0.1:0", "--admin", "--log-level", "error", "--log-format", "text")
	// REKEY_TEST_MAIN makes a test binary act as rekey; rekey ignores it.
	cmd.Env = append(os.Environ(), "REKEY_TEST_MAIN=1")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the emulator: %w", err)
	}
	e := &benchEmulator{cmd: cmd, done: make(chan error, 1)}
	lines := bufio.NewScanner(out)
	ready := make(chan error, 1)
	go func() {
		for lines.Scan() {
			name, value, _ := strings.Cut(strings.TrimSpace(lines.Text()), ":")
			switch name {
			case "endpoint":
				e.endpoint = strings.TrimSpace(value)
			case "key":
				e.key = strings.TrimSpace(value)
				ready <- nil
			}
		}
		ready <- errors.New("the emulator exited before printing its endpoint")
		_, _ = io.Copy(io.Discard, out)
	}()
	go func() { e.done <- cmd.Wait() }()
	select {
	case err = <-ready:
	case <-ctx.Done():
		err = ctx.Err()
	case <-time.After(30 * time.Second):
		err = errors.New("the emulator did not start within 30s")
	}
	if err != nil {
		e.stop()
		return nil, err
	}
	e.admin = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		// The child's certificate is self-signed; it is on loopback.
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}, //nolint:gosec // loopback child
	}}
	return e, nil
}

// stop interrupts the emulator and waits for it, killing it after 5s.
func (e *benchEmulator) stop() {
	_ = e.cmd.Process.Signal(os.Interrupt)
	select {
	case <-e.done:
	case <-time.After(5 * time.Second):
		_ = e.cmd.Process.Kill()
		<-e.done
	}
}

// config is how rekey's clients reach the emulator.
func (e *benchEmulator) config(priority string) cosmos.Config {
	return cosmos.Config{Endpoint: e.endpoint, AccountKey: e.key, Insecure: true, Priority: priority}
}

// metrics reads the counters of container db/coll from the admin API.
func (e *benchEmulator) metrics(ctx context.Context, db, coll string) (emulator.ContainerMetrics, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.endpoint+"admin/metrics", nil)
	if err != nil {
		return emulator.ContainerMetrics{}, err
	}
	resp, err := e.admin.Do(req)
	if err != nil {
		return emulator.ContainerMetrics{}, err
	}
	defer resp.Body.Close()
	var all []emulator.ContainerMetrics
	if err := json.NewDecoder(resp.Body).Decode(&all); err != nil {
		return emulator.ContainerMetrics{}, fmt.Errorf("emulator metrics: %w", err)
	}
	for _, m := range all {
		if m.Database == db && m.Container == coll {
			return m, nil
		}
	}
	return emulator.ContainerMetrics{}, fmt.Errorf("emulator metrics: no container %s/%s", db, coll)
}

// benchItems generates the benchmark's source items: n items of about size
// bytes, keyed in the source on /tenant (a hundred items per tenant, so the
// seed goes in transactional batches) and carrying the new key /customerId:
// unique per item, except a share skew of the items, which all carry the one
// hot customer "hot".
type benchItems struct {
	n    int
	size int
	skew float64
}

const benchHotCustomer = "hot"

// tenant is the source key of item i.
func (g benchItems) tenant(i int) string { return "t-" + strconv.Itoa(i/100) }

// item is the body of item i.
func (g benchItems) item(i int) []byte {
	h := splitmix64(uint64(i))
	customer := fmt.Sprintf("c-%012d", h%1_000_000_000_000)
	if float64(h>>11)/float64(1<<53) < g.skew {
		customer = benchHotCustomer
	}
	head := fmt.Sprintf(`{"id":"it-%09d","tenant":%q,"customerId":%q,"n":%d,"pad":"`, i, g.tenant(i), customer, i)
	pad := max(g.size-len(head)-2, 0)
	return []byte(head + strings.Repeat("x", pad) + `"}`)
}

// splitmix64 scatters i over 64 bits, deterministically.
func splitmix64(x uint64) uint64 {
	x += 0x9E3779B97F4A7C15
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9
	x = (x ^ (x >> 27)) * 0x94D049BB133111EB
	return x ^ (x >> 31)
}

// seed writes the items into src in transactional batches of one tenant,
// workers at a time, waiting out 429s.
func (g benchItems) seed(ctx context.Context, src *cosmos.Container, workers int, log *slog.Logger) error {
	batches := make(chan int)
	var done atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for first := range batches {
				bodies := make([][]byte, 0, 100)
				for i := first; i < min(first+100, g.n); i++ {
					bodies = append(bodies, g.item(i))
				}
				key := migrate.Key{transform.StringValue(g.tenant(first))}
				err := migrate.Retry(ctx, func() error {
					res, err := src.CreateBatch(ctx, key, bodies)
					if err == nil && !res.Committed {
						err = fmt.Errorf("seed batch at item %d did not commit: %v", first, res.Statuses)
					}
					return err
				})
				if err != nil {
					errs <- err
					return
				}
				if n := done.Add(int64(len(bodies))); n%100_000 < int64(len(bodies)) {
					log.Info("seeding the source", "items", n, "of", g.n)
				}
			}
		}()
	}
	var err error
feed:
	for first := 0; first < g.n; first += 100 {
		select {
		case batches <- first:
		case err = <-errs:
			break feed
		case <-ctx.Done():
			err = ctx.Err()
			break feed
		}
	}
	close(batches)
	wg.Wait()
	if err == nil {
		select {
		case err = <-errs:
		default:
		}
	}
	return err
}
