package pipeline

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rekey-dev/rekey/migrate"
	"github.com/rekey-dev/rekey/migrate/migratetest"
	"github.com/rekey-dev/rekey/migrate/pacing"
)

// send is a change-feed read with its time and charge.
type send struct {
	at time.Time
	ru float64
}

// TestSourceCapHoldsEverySecondFromTheFirst: under --max-source-ru the
// change-feed reads never spend more than 1.1 times the cap in any second,
// the first included, although the items are 64 KB, far above the 1 KB the
// cost model assumes before it has seen one: the first pages are small,
// the later ones sized to the items read. Time is synctest's.
func TestSourceCapHoldsEverySecondFromTheFirst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newSource(t)
		pad := strings.Repeat("x", 64<<10)
		for i := range 1200 {
			migratetest.MustUpsert(t, src, fmt.Sprintf(`{"id":"id-%04d","region":"r%d","tenant":"t%d","pad":%q}`, i, i%5, i%7, pad))
		}
		var mu sync.Mutex
		var reads []send
		src.AfterFeed(func(_ migrate.ChangeRequest, p migrate.ChangePage) {
			mu.Lock()
			reads = append(reads, send{at: time.Now(), ru: p.RU})
			mu.Unlock()
		})
		const cap = 4000.0
		dst := newTarget(t)
		r := testRunner(t, src, dst, filepath.Join(t.TempDir(), "state"))
		r.Writes = NewWritePath(dst, WritePathConfig{Flow: pacing.Config{Controller: pacing.ControllerFixed, MaxSourceRU: cap}})
		sum, err := r.Run(context.Background(), RunConfig{UntilCaughtUp: true, PollInterval: 10 * time.Millisecond})
		if err != nil || sum.Stats.Created != 1200 {
			t.Fatalf("run: %v, %+v", err, sum.Stats)
		}
		mu.Lock()
		defer mu.Unlock()
		worst, first := 0.0, 0.0
		for i, a := range reads {
			in := 0.0
			for _, b := range reads[i:] {
				if b.at.Sub(a.at) < time.Second {
					in += b.ru
				}
			}
			worst = max(worst, in)
			if i == 0 {
				first = in
			}
		}
		total := 0.0
		for _, r := range reads {
			total += r.ru
		}
		if worst > 1.1*cap || first > 1.1*cap {
			t.Fatalf("worst second %.0f RU, first second %.0f RU, under a source cap of %.0f", worst, first, cap)
		}
		if secs := reads[len(reads)-1].at.Sub(reads[0].at).Seconds(); total/secs < 0.8*cap {
			t.Fatalf("%.0f RU in %.1fs: the cap held the reads back too far", total, secs)
		}
	})
}
