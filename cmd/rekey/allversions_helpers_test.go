package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rekey-dev/rekey/internal/cosmos"
	"github.com/rekey-dev/rekey/internal/emulator/emulatortest"
)

// offsetClock is the emulator's clock in the all-versions tests: real
// time (RU budgets refill as usual) plus an offset a test moves forward to
// expire items by their time to live or changes past the retention.
type offsetClock struct{ offset atomic.Int64 }

func (c *offsetClock) Now() time.Time { return time.Now().Add(time.Duration(c.offset.Load())) }

func (c *offsetClock) Advance(d time.Duration) { c.offset.Add(int64(d)) }

// newVersionedE2E is an e2e whose emulator runs on a clock the test moves.
func newVersionedE2E(t *testing.T) (*e2e, *offsetClock) {
	clock := &offsetClock{}
	return newE2E(t, emulatortest.WithClock(clock.Now)), clock
}

// versionedContainer creates db/id partitioned on paths with a change feed
// policy that keeps versions for retention and, when ttl is not 0, that
// defaultTtl. azcosmos v1.5.0 cannot set a change feed policy, so the
// container is created with a REST request signed with the account key
// (https://learn.microsoft.com/rest/api/cosmos-db/create-a-collection,
// https://learn.microsoft.com/rest/api/cosmos-db/access-control-on-cosmosdb-resources).
func (e *e2e) versionedContainer(id string, ru int, retention time.Duration, ttl int, paths ...string) *cosmos.Container {
	e.t.Helper()
	e.signed(http.MethodPost, "dbs", "", "dbs", fmt.Sprintf(`{"id":%q}`, testDB), nil, http.StatusConflict)
	props := map[string]any{
		"id":               id,
		"partitionKey":     map[string]any{"paths": paths, "kind": "Hash", "version": 2},
		"changeFeedPolicy": map[string]any{"retentionDuration": int(retention / time.Minute)},
	}
	if ttl != 0 {
		props["defaultTtl"] = ttl
	}
	body, _ := json.Marshal(props)
	e.signed(http.MethodPost, "colls", "dbs/"+testDB, "dbs/"+testDB+"/colls", string(body), map[string]string{"x-ms-offer-throughput": strconv.Itoa(ru)})
	return e.client.Container(testDB, id)
}

// signed sends a REST request to the emulator signed with its master key;
// a status other than 2xx (and than accept) fails the test.
func (e *e2e) signed(method, resourceType, link, path, body string, headers map[string]string, accept ...int) {
	e.t.Helper()
	key, err := base64.StdEncoding.DecodeString(e.srv.Key())
	if err != nil {
		e.t.Fatal(err)
	}
	date := time.Now().UTC().Format(http.TimeFormat)
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(strings.ToLower(method) + "\n" + resourceType + "\n" + link + "\n" + strings.ToLower(date) + "\n\n"))
	auth := url.QueryEscape("type=master&ver=1.0&sig=" + base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	req, err := http.NewRequest(method, strings.TrimSuffix(e.srv.Endpoint(), "/")+"/"+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("authorization", auth)
	req.Header.Set("x-ms-date", date)
	req.Header.Set("x-ms-version", "2020-11-05")
	req.Header.Set("content-type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	hc := emulatortest.HTTPClient(e.t, e.srv)
	resp, err := hc.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	for _, a := range accept {
		if resp.StatusCode == a {
			return
		}
	}
	if resp.StatusCode/100 != 2 {
		e.t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, out)
	}
}

// mutations changes the source while rekey runs, one change every pause,
// until stop is closed or limit changes were made: inserts (every third with a 30-second time to
// live), updates, updates of the field the new key is built from
// (tenantId), and deletes. Items 0..next-1 exist when it starts.
func mutations(t *testing.T, src *cosmos.Container, next, limit int, pause time.Duration, stop <-chan struct{}) (wait func()) {
	live := make([]int, next)
	for i := range live {
		live[i] = i
	}
	var once sync.Once
	done := make(chan struct{})
	go func() {
		defer close(done)
		rng := rand.New(rand.NewPCG(3, 5))
		for n := 0; n < limit; n++ {
			select {
			case <-stop:
				return
			default:
			}
			pick := func() (int, int) {
				j := rng.IntN(len(live))
				return j, live[j]
			}
			switch n % 6 {
			case 0, 4: // insert
				o := order(next, 1)
				if next%3 == 0 {
					o["ttl"] = 30
				}
				put(t, src, o["region"].(string), o)
				live = append(live, next)
				next++
			case 1, 5: // update in place
				_, i := pick()
				o := order(i, 2+n)
				put(t, src, o["region"].(string), o)
			case 2: // a key-field change
				_, i := pick()
				o := order(i, 2+n)
				o["tenantId"] = fmt.Sprintf("tenant-moved-%d", n)
				put(t, src, o["region"].(string), o)
			case 3: // delete
				j, i := pick()
				live = append(live[:j], live[j+1:]...)
				if _, err := src.Delete(context.Background(), keyOf(regions[i%len(regions)]), itemID(i), ""); err != nil {
					t.Errorf("delete %s: %v", itemID(i), err)
				}
			}
			time.Sleep(pause)
		}
	}()
	return func() { once.Do(func() { <-done }) }
}

// leaseModes reads the feed mode of every lease file of a file state:
// "latest", "latest+bookmark" or "all-versions"; nil before any exists.
func leaseModes(t *testing.T, state string) []string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(state, "leases", "*.json"))
	var out []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil || len(bytes.TrimSpace(b)) == 0 {
			continue // being replaced
		}
		var doc struct {
			Properties map[string]string `json:"properties"`
		}
		if json.Unmarshal(b, &doc) != nil {
			continue
		}
		mode := doc.Properties["mode"]
		switch {
		case mode == "all-versions":
		case doc.Properties["bookmark"] != "":
			mode = "latest+bookmark"
		default:
			mode = "latest"
		}
		out = append(out, mode)
	}
	return out
}

// countModes is how many of modes are want.
func countModes(modes []string, want string) int {
	n := 0
	for _, m := range modes {
		if m == want {
			n++
		}
	}
	return n
}
