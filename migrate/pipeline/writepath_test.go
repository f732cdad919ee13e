package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/rekey-dev/rekey/migrate"
	"github.com/rekey-dev/rekey/migrate/pacing"
)

// Run and Replay default what the Runner leaves unset (its clock, its
// stats) in the state of their own call: the Runner is the same after
// them as before.
func TestRunAndReplayLeaveTheRunnerAsGiven(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src, dst := newSource(t), newTarget(t)
		upsert(t, src, "item-1", "eu", "a", 1)
		r := testRunner(t, src, dst, t.TempDir())
		before := *r
		if _, err := r.Run(context.Background(), RunConfig{UntilCaughtUp: true}); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Replay(context.Background(), nil); err != nil {
			t.Fatal(err)
		}
		if *r != before {
			t.Fatalf("the Runner changed: %+v, was %+v", *r, before)
		}
		if _, err := (&Runner{Source: src, Store: r.Store}).Run(context.Background(), RunConfig{}); err == nil {
			t.Fatal("a Runner without a write path ran")
		}
	})
}

// Replay writes through the Runner's write path: its retries are the
// write path's and its warnings go to the write path's logger. Before, a
// replay got no logger, so it dropped them, and wrote under a fixed limit
// of its own.
func TestReplayRetriesAndWarnsThroughTheWritePath(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src, dst := newSource(t), newTarget(t)
		upsert(t, src, "item-1", "eu", "a", 1)
		r := testRunner(t, src, dst, t.TempDir())
		var logs bytes.Buffer
		r.Writes = NewWritePath(dst, WritePathConfig{
			Flow: pacing.Config{Controller: pacing.ControllerFixed},
			Log:  slog.New(slog.NewTextHandler(&logs, nil)),
		})
		fails := 1
		dst.Intercept(func(op string, _ migrate.Key, _ string) error {
			if op == "create" && fails > 0 {
				fails--
				return &migrate.RequestError{Op: op, Status: http.StatusServiceUnavailable}
			}
			return nil
		})
		res, err := r.Replay(context.Background(), []migrate.DeadLetter{{SourceID: "item-1", SourceKey: json.RawMessage(`["eu"]`), Kind: "missing-field"}})
		if err != nil || res.Written != 1 || len(dst.Items()) != 1 {
			t.Fatalf("replay %+v %v, target %d items", res, err, len(dst.Items()))
		}
		if !strings.Contains(logs.String(), "retrying after a transient failure") {
			t.Fatalf("the retry was not logged through the write path:\n%s", logs.String())
		}
	})
}
