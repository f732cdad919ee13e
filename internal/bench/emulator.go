package bench

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/rekey-dev/rekey/internal/cosmos"
	"github.com/rekey-dev/rekey/internal/emulator"
)

// emulatorProcess is `rekey emulator` running as a child process, so that the
// benchmark's CPU time and memory are the migrating client's alone.
type emulatorProcess struct {
	cmd      *exec.Cmd
	endpoint string
	key      string
	admin    *http.Client // for /admin/metrics; loopback, self-signed
	done     chan error
}

// startEmulator runs this executable's emulator command on a free
// loopback port with the admin API, and reads its endpoint from its output.
func startEmulator(ctx context.Context) (*emulatorProcess, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find the rekey executable: %w", err)
	}
	// No compute-gateway listener: its fixed default port would collide
	// with any other emulator on the machine, and the clients use --addr.
	cmd := exec.Command(exe, "emulator", "--addr", "127.0.0.1:0", "--compute-addr", "", "--admin", "--log-level", "error", "--log-format", "text")
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
	e := &emulatorProcess{cmd: cmd, done: make(chan error, 1)}
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
func (e *emulatorProcess) stop() {
	_ = e.cmd.Process.Signal(os.Interrupt)
	select {
	case <-e.done:
	case <-time.After(5 * time.Second):
		_ = e.cmd.Process.Kill()
		<-e.done
	}
}

// config is how rekey's clients reach the emulator.
func (e *emulatorProcess) config(priority string) cosmos.Config {
	return cosmos.Config{Endpoint: e.endpoint, AccountKey: e.key, Insecure: true, Priority: priority}
}

// injectLatency makes the emulator delay every request it serves by d from
// now on (its latency fault, which the admin API takes in milliseconds).
func (e *emulatorProcess) injectLatency(ctx context.Context, d time.Duration) error {
	body := fmt.Sprintf(`{"latencyMs":%d}`, d.Milliseconds())
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.endpoint+"admin/faults", strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.admin.Do(req)
	if err != nil {
		return fmt.Errorf("inject the emulator's latency: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		msg, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("inject the emulator's latency: %s: %s", resp.Status, msg)
	}
	return nil
}

// metrics reads the counters of container db/coll from the admin API.
func (e *emulatorProcess) metrics(ctx context.Context, db, coll string) (emulator.ContainerMetrics, error) {
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
