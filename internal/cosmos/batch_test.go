package cosmos

import (
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"testing"

	"github.com/rekey-dev/rekey/internal/emulator"
	"github.com/rekey-dev/rekey/migrate"
)

func TestCreateBatch(t *testing.T) {
	e := newEnv(t)
	c := e.container(t, "c", 400)
	ctx := tctx(t)

	var bodies [][]byte
	for i := range 5 {
		bodies = append(bodies, itemBody(t, fmt.Sprint(i), "p", i))
	}
	res, err := c.CreateBatch(ctx, key("p"), bodies)
	if err != nil || !res.Committed || res.RU <= 0 || res.Statuses != nil {
		t.Fatalf("batch = %+v, %v; want committed with a charge", res, err)
	}
	for i := range 5 {
		if _, err := c.Read(ctx, key("p"), fmt.Sprint(i)); err != nil {
			t.Fatalf("item %d after the batch: %v", i, err)
		}
	}

	// One existing id: nothing is written, and the statuses say which.
	again := [][]byte{itemBody(t, "new1", "p", 0), itemBody(t, "3", "p", 0), itemBody(t, "new2", "p", 0)}
	res, err = c.CreateBatch(ctx, key("p"), again)
	if err != nil {
		t.Fatal(err)
	}
	if res.Committed || !reflect.DeepEqual(res.Statuses, []int{424, 409, 424}) {
		t.Fatalf("batch with a conflict = %+v; want uncommitted with statuses [424 409 424]", res)
	}
	if _, err := c.Read(ctx, key("p"), "new1"); !errors.Is(err, migrate.ErrNotFound) {
		t.Fatalf("an item of a failed batch was written: %v", err)
	}

	if res, err := c.CreateBatch(ctx, key("p"), nil); err != nil || !res.Committed {
		t.Errorf("empty batch = %+v, %v; want a trivial commit", res, err)
	}
	tooMany := make([][]byte, MaxBatchItems+1)
	for i := range tooMany {
		tooMany[i] = itemBody(t, fmt.Sprint("m", i), "p", i)
	}
	if _, err := c.CreateBatch(ctx, key("p"), tooMany); err == nil {
		t.Error("a batch over the limit was sent")
	}

	// A failure of the request as a whole is an error, not a result.
	inject(t, e.srv, emulator.Fault{Status: http.StatusTooManyRequests, Count: 1, Operations: []string{"batch"}})
	if _, err := c.CreateBatch(ctx, key("q"), [][]byte{itemBody(t, "z", "q", 0)}); !errors.Is(err, migrate.ErrThrottled) {
		t.Errorf("throttled batch = %v, want ErrThrottled", err)
	}
}

func TestBatchID(t *testing.T) {
	for id, want := range map[string]string{
		"plain":      "plain",
		`a"b`:        `a\"b`,
		`a\b`:        `a\\b`,
		"tab\there":  `tab\there`,
		"<html>&amp": "<html>&amp",
	} {
		if got := batchID(id); got != want {
			t.Errorf("batchID(%q) = %s, want %s", id, got, want)
		}
	}
}
