package cosmos

import (
	"fmt"
	"testing"

	"github.com/rekey-dev/rekey/migrate"
	"github.com/rekey-dev/rekey/transform"
)

func TestNaiveCopierCountsThrottlingAndLosses(t *testing.T) {
	e := newEnv(t)
	src := e.container(t, "src", 10000)
	e.container(t, "dst", 400, "/pk") // one partition of 400 RU/s: throttles
	for i := range 200 {
		if _, err := src.Create(tctx(t), key("p"), doc(t, map[string]any{"id": fmt.Sprint(i), "pk": "p"})); err != nil {
			t.Fatal(err)
		}
	}
	n, err := NewNaiveCopier(Config{Endpoint: e.srv.Endpoint(), AccountKey: e.srv.Key(), HTTPClient: e.client.hc})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	convert := func(item []byte) (migrate.Key, []byte, error) {
		return migrate.Key{transform.StringValue("p")}, item, nil
	}
	st, err := n.Copy(tctx(t), migrate.ContainerRef{Database: testDB, Container: "src"}, migrate.ContainerRef{Database: testDB, Container: "dst"}, 32, convert, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Read != 200 || st.Written+st.Lost != 200 || st.Requests < st.Written {
		t.Fatalf("stats %+v", st)
	}
	// 200 upserts of ~5.5 RU against 400 RU/s with 32 workers: the
	// partition's budget runs out, and the SDK's three retries meet 429s.
	t.Logf("%+v", st)
	if st.Throttled == 0 || st.RU < 5*float64(st.Written) {
		t.Fatalf("stats %+v: want 429s counted and the charges summed", st)
	}
}
