package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"

	"golang.org/x/time/rate"

	"github.com/rekey-dev/rekey/migrate"
	"github.com/rekey-dev/rekey/transform"
)

// demoWriters is the application's concurrency.
const demoWriters = 32

// load plays the application: it inserts new orders, distributed like the
// data, at half the container's throughput for the load duration, and
// reports each physical partition's RU/s and 429s.
func (d *demo) load(ctx context.Context, coll, keyPath string) error {
	c := d.client.Container(demoDB, coll)
	var tr *transform.Transformer
	if keyPath == "/pk" {
		spec, err := transform.ParseSpec([]string{demoKey})
		if err != nil {
			return err
		}
		if tr, err = transform.New(spec, nil); err != nil {
			return err
		}
	}
	before := d.metrics(coll)
	const costGuess = 6.0 // RU of one ~400-byte insert; the limiter paces in RU
	lim := rate.NewLimiter(rate.Limit(demoLoadShare*demoRU), int(demoLoadShare*demoRU/20))
	loadCtx, cancel := context.WithTimeout(ctx, d.opts.loadFor)
	defer cancel()
	var sent, throttled atomic.Int64
	var wg sync.WaitGroup
	var firstErr error
	var once sync.Once
	for w := 0; w < demoWriters; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				if err := lim.WaitN(loadCtx, int(math.Ceil(costGuess))); err != nil {
					return // the load's time is up
				}
				i := int(d.nextID.Add(1))
				body, key, err := demoInsert(i, d.opts.hotShare, tr)
				if err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				_, err = c.Create(loadCtx, key, body)
				sent.Add(1)
				switch {
				case err == nil:
				case errors.Is(err, migrate.ErrThrottled):
					throttled.Add(1)
				case loadCtx.Err() != nil:
					return
				default:
					once.Do(func() { firstErr = err })
					return
				}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return fmt.Errorf("application load: %w", firstErr)
	}
	after := d.metrics(coll)
	secs := d.opts.loadFor.Seconds()
	fmt.Fprintf(d.out, "   %-9s %9s %8s\n", "partition", "RU/s used", "429s")
	prev := map[string][2]float64{}
	for _, p := range before.Partitions {
		prev[p.ID] = [2]float64{p.RU, float64(p.Throttled)}
	}
	for _, p := range after.Partitions {
		ru := (p.RU - prev[p.ID][0]) / secs
		n := p.Throttled - int64(prev[p.ID][1])
		note := ""
		if n > 0 && ru >= 0.9*p.BudgetRU {
			note = fmt.Sprintf("  <- hot: at its %.0f RU/s share of the container", p.BudgetRU)
		}
		fmt.Fprintf(d.out, "   %-9s %9.0f %8d%s\n", p.ID, ru, n, note)
	}
	used := (after.RU - before.RU) / secs
	share := 0.0
	if sent.Load() > 0 {
		share = float64(throttled.Load()) / float64(sent.Load())
	}
	fmt.Fprintf(d.out, "   %d of %d requests throttled (%.0f%%) while the container used %.0f of its %d RU/s (%.0f%%)\n",
		throttled.Load(), sent.Load(), 100*share, used, demoRU, 100*used/demoRU)
	return nil
}

// demoInsert builds a new order and its partition key: the region for the
// source, the synthetic key (written into the item) for the target.
func demoInsert(i int, hotShare float64, tr *transform.Transformer) ([]byte, migrate.Key, error) {
	o := demoOrder(i, hotShare)
	o["id"] = fmt.Sprintf("new-order-%08d", i)
	body, _ := json.Marshal(o)
	if tr == nil {
		return body, migrate.Key{transform.StringValue(o["region"].(string))}, nil
	}
	res, err := tr.Apply(body)
	if err != nil {
		return nil, nil, err
	}
	return res.Item, migrate.Key(res.Key), nil
}
