package cosmos

import (
	"errors"
	"fmt"
	"testing"

	"github.com/rekey-dev/rekey/migrate"
)

func TestQuery(t *testing.T) {
	e := newEnv(t)
	c := e.container(t, "c", 12000) // two physical partitions
	ctx := tctx(t)
	const n = 30
	for i := range n {
		pk := fmt.Sprint("p", i%3)
		mustCreate(t, c, key(pk), itemBody(t, fmt.Sprint(i), pk, i))
	}

	t.Run("across partitions", func(t *testing.T) {
		seen := map[string]bool{}
		var pages int
		var ru float64
		err := c.Query(ctx, "SELECT * FROM c", nil, nil, 7, func(items [][]byte, charge float64) error {
			pages++
			ru += charge
			if len(items) > 7 {
				t.Errorf("a page of %d items, asked for 7", len(items))
			}
			for _, it := range items {
				seen[fields(t, it)["id"].(string)] = true
			}
			return nil
		})
		if err != nil || len(seen) != n || pages < 5 || ru <= 0 {
			t.Fatalf("query: %v; %d items in %d pages for %v RU; want %d items in at least 5 pages", err, len(seen), pages, ru, n)
		}
	})

	t.Run("in one partition with parameters", func(t *testing.T) {
		var got []float64
		k := key("p1")
		err := c.Query(ctx, "SELECT * FROM c WHERE c.v >= @min", []Param{{Name: "@min", Value: 20}}, &k, 0, func(items [][]byte, _ float64) error {
			for _, it := range items {
				got = append(got, fields(t, it)["v"].(float64))
			}
			return nil
		})
		if err != nil || fmt.Sprint(got) != "[22 25 28]" {
			t.Fatalf("query = %v, %v; want [22 25 28]", got, err)
		}
	})

	t.Run("fn error stops it", func(t *testing.T) {
		stop := errors.New("stop")
		calls := 0
		err := c.Query(ctx, "SELECT * FROM c", nil, nil, 5, func([][]byte, float64) error { calls++; return stop })
		if !errors.Is(err, stop) || calls != 1 {
			t.Fatalf("err %v after %d calls; want stop after 1", err, calls)
		}
	})

	t.Run("not served across partitions", func(t *testing.T) {
		err := c.Query(ctx, "SELECT VALUE COUNT(1) FROM c", nil, nil, 0, func([][]byte, float64) error { return nil })
		var re *migrate.RequestError
		if !errors.Is(err, migrate.ErrBadRequest) || !errors.As(err, &re) || re.SubStatus != 1004 {
			t.Fatalf("cross-partition aggregate = %v, want ErrBadRequest with substatus 1004", err)
		}
	})

	t.Run("missing container", func(t *testing.T) {
		err := e.client.Container(testDB, "absent").Query(ctx, "SELECT * FROM c", nil, nil, 0, func([][]byte, float64) error { return nil })
		if !errors.Is(err, migrate.ErrNotFound) {
			t.Fatalf("query of a missing container = %v, want ErrNotFound", err)
		}
	})
}
