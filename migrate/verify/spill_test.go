package verify

import (
	"fmt"
	"testing"

	"github.com/rekey-dev/rekey/migrate"
)

// A bucket past maxBucketBytes is split again, so each comparison holds
// about maxBucketBytes of records, and every record of one source identity
// still arrives in the same call. The set digest does not depend on how the
// records were split.
func TestSpillSplitsLargeBucketsAndKeepsIdentitiesTogether(t *testing.T) {
	const items = 30_000 // about 2.4 MB of records: two copies of each item
	digestOf := func(buckets int) (string, int) {
		sp, err := newSpill(t.TempDir(), buckets)
		if err != nil {
			t.Fatal(err)
		}
		defer sp.close()
		for i := 0; i < items; i++ {
			id := fmt.Sprintf("item-%06d", i)
			src := &record{id: id, srcKey: `["eu"]`, tgtKey: `["t1"]`, digest: migrate.Digest{byte(i)}, ts: int64(i)}
			tgt := *src
			tgt.flags = recTarget
			for _, r := range []*record{src, &tgt} {
				if err := sp.add(r); err != nil {
					t.Fatal(err)
				}
			}
		}
		rep := &Report{}
		cmp := newComparer(rep, Config{MaxRecheck: 10, MaxIDs: 10})
		calls, largest := 0, 0
		err = sp.each(func(recs []record) error {
			calls++
			size := 0
			for i := range recs {
				size += len(recs[i].appendTo(nil))
			}
			largest = max(largest, size)
			cmp.bucket(recs)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Matched != items || rep.Differences() != 0 {
			t.Fatalf("%d buckets: matched %d, differences %d: an identity's records were split apart", buckets, rep.Matched, rep.Differences())
		}
		if largest > maxBucketBytes {
			t.Fatalf("%d buckets: a comparison held %d bytes of records, over %d", buckets, largest, maxBucketBytes)
		}
		return cmp.digest.String(), calls
	}
	one, calls := digestOf(1)
	if calls < 3 {
		t.Fatalf("a 2.4 MB bucket was compared in %d calls: not split", calls)
	}
	if many, _ := digestOf(64); many != one {
		t.Fatalf("the digest depends on the bucketing: %s vs %s", one, many)
	}
}
