package pipeline

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rekey-dev/rekey/migrate"
	"github.com/rekey-dev/rekey/migrate/deadletter"
	"github.com/rekey-dev/rekey/migrate/migratetest"
)

// Every dead-lettered item gets a WARN line naming it, its key and why, at
// most a burst of 10 and 5 a second after on the run's clock; the items held
// back are counted in one "... and K more" line before the next line, or
// when the run ends. Every item is recorded in the store either way.
func TestDeadLetteredItemsAreLoggedRateLimited(t *testing.T) {
	store, err := deadletter.OpenFile(filepath.Join(t.TempDir(), "dl.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	var out bytes.Buffer
	clock := &migratetest.Clock{}
	d := newLoggedDeadLetters(store, slog.New(slog.NewJSONHandler(&out, nil)), clock)
	n := 0
	add := func(count int) {
		for range count {
			n++
			dl := migrate.DeadLetter{Time: clock.Now(), SourceID: fmt.Sprintf("order-%d", n), SourceKey: json.RawMessage(`["eu"]`),
				Kind: "missing-field", Reason: "missing field /tenantId", Item: []byte(`{}`)}
			if err := d.Add(dl); err != nil {
				t.Fatal(err)
			}
		}
	}
	type line struct {
		Level, Msg, ID, PK, Kind, Reason string
		More                             int
	}
	lines := func() []line {
		var ls []line
		for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
			var v line
			if err := json.Unmarshal([]byte(l), &v); err != nil {
				t.Fatalf("log line %q: %v", l, err)
			}
			ls = append(ls, v)
		}
		out.Reset()
		return ls
	}

	add(30) // at one instant: the burst of 10 is logged, 20 held back
	ls := lines()
	if len(ls) != 10 || ls[0] != (line{Level: "WARN", Msg: "dead-lettered an item: it was not copied", ID: "order-1", PK: `["eu"]`, Kind: "missing-field", Reason: "missing field /tenantId"}) {
		t.Fatalf("first burst: %d lines, first %+v", len(ls), ls[0])
	}
	clock.Advance(time.Second) // 5 more may be logged
	add(7)
	ls = lines()
	if len(ls) != 6 || ls[0].More != 20 || !strings.HasPrefix(ls[0].Msg, "... and 20 more dead-lettered items") || ls[1].ID != "order-31" || ls[5].ID != "order-35" {
		t.Fatalf("after a second: %+v", ls)
	}
	d.flush() // the run ends: order-36 and order-37 were held back
	if ls = lines(); len(ls) != 1 || ls[0].More != 2 {
		t.Fatalf("at the end: %+v", ls)
	}
	d.flush()
	if out.Len() != 0 {
		t.Fatalf("a second flush logged %s", out.String())
	}
	if c, err := store.Count(); err != nil || c != 37 {
		t.Fatalf("the store holds %d dead letters (%v), want all 37", c, err)
	}
}
