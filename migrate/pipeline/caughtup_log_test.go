package pipeline

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/rekey-dev/rekey/migrate/pacing"
)

// "every range has caught up" is news once: a run that read nothing (a
// cutover's drains, one after another while the source is quiet) logs it
// at debug level only.
func TestCaughtUpIsLoggedOnChange(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src, dst := newSource(t), newTarget(t)
		for i := range 50 {
			upsert(t, src, fmt.Sprintf("item-%d", i), "eu", "a", 1)
		}
		var logs bytes.Buffer
		log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		r := testRunner(t, src, dst, t.TempDir())
		r.Writes = NewWritePath(dst, WritePathConfig{Flow: pacing.Config{Controller: pacing.ControllerFixed}, Log: log})
		r.Stats = &Stats{} // shared by the runs, as a command's metrics share it
		for range 3 {
			if _, err := r.Run(context.Background(), RunConfig{PageSize: 20, UntilCaughtUp: true}); err != nil {
				t.Fatal(err)
			}
		}
		info := strings.Count(logs.String(), `level=INFO msg="every range has caught up"`)
		debug := strings.Count(logs.String(), `level=DEBUG msg="every range has caught up"`)
		if info != 1 || debug != 2 {
			t.Errorf("logged at info %d times, at debug %d; want 1 and 2:\n%s", info, debug, logs.String())
		}
	})
}
