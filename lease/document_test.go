package lease

import (
	"bytes"
	"errors"
	"flag"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/lease")

const goldenDir = "../testdata/lease"

func sampleLease() Lease {
	ts := time.Date(2025, 3, 14, 15, 9, 26, 535897900, time.UTC)
	return Lease{
		ID:             TokenFor(Range{Min: "05C1E0", Max: "0AAAAA"}),
		Range:          Range{Min: "05C1E0", Max: "0AAAAA"},
		Continuation:   `"1842"`,
		Owner:          "rekey-job-7d9f-0",
		Timestamp:      ts,
		Items:          120433,
		RU:             1284001.52,
		CheckpointedAt: ts.Add(-2 * time.Second),
		CaughtUpAt:     ts.Add(-90 * time.Second),
		LastChangeTS:   1741964964,
	}
}

// allVersionsLease is a lease that follows the all-versions feed after a
// fallback: its mode, the copy's latest-version continuation kept as the
// bookmark, and when and why it fell back, in "properties".
func allVersionsLease() Lease {
	l := sampleLease()
	l.Mode = ModeAllVersions
	l.Continuation = `{"format":"rekey.allVersions.v1","rid":"AAA=","range":{"min":"05C1E0","max":"0AAAAA"},"positions":[{"min":"05C1E0","max":"0AAAAA","etag":"\"2001\""}]}`
	l.Bookmark = `"1842"`
	l.FallbackAt = l.Timestamp.Add(-time.Hour)
	l.Fallback = "the range's all-versions position fell out of the retention window"
	return l
}

// TestLeaseDocumentGolden pins the document format: a change in it breaks
// every reader of existing state, so it must be deliberate (-update).
func TestLeaseDocumentGolden(t *testing.T) {
	cases := []struct {
		name string
		id   string
		l    Lease
		etag string
	}{
		{"lease-cosmos.golden", "rekey..05C1E0-0AAAAA", sampleLease(), ""},
		{"lease-file.golden", "rekey..05C1E0-0AAAAA", sampleLease(), "W3NQKXHEZ4CQ5FHLOJ6K7QAYNM"},
		{"lease-new.golden", "rekey..-FF", Lease{ID: "-FF", Range: Range{Max: "FF"}}, ""},
		{"lease-all-versions.golden", "rekey..05C1E0-0AAAAA", allVersionsLease(), ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := encodeLease(tc.id, tc.l, tc.etag)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(goldenDir, tc.name)
			if *update {
				if err := os.MkdirAll(goldenDir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("document differs from %s:\n%s\nwant\n%s", path, got, want)
			}
			back, id, err := decodeLease(want)
			if err != nil {
				t.Fatal(err)
			}
			wantLease := tc.l
			wantLease.ETag = tc.etag
			if id != tc.id || !reflect.DeepEqual(back, normalize(wantLease)) {
				t.Fatalf("decoded %q %+v, want %q %+v", id, back, tc.id, normalize(wantLease))
			}
		})
	}
}

// Documents as the SDKs' processors write them decode: the .NET processor
// writes null Owner and ContinuationToken on a new lease and may omit the
// inclusivity flags; the Java processor spells "feedRange"; a document
// without "timestamp" falls back to the service's "_ts".
func TestDecodeProcessorDocuments(t *testing.T) {
	cases := []struct {
		name string
		doc  string
		want Lease
	}{
		{
			name: ".NET new lease",
			doc: `{"id":"app..-FF","_etag":"\"0100\"","version":1,"LeaseToken":"-FF",
				"FeedRange":{"Range":{"min":"","max":"FF"}},"Owner":null,"ContinuationToken":null,
				"timestamp":"2025-03-14T15:09:26.5358979Z","properties":{},"_rid":"x","_ts":1741964966}`,
			want: Lease{ID: "-FF", Range: Range{Max: "FF"}, ETag: `"0100"`,
				Timestamp: time.Date(2025, 3, 14, 15, 9, 26, 535897900, time.UTC)},
		},
		{
			name: "Java feedRange, owned, offset timestamp",
			doc: `{"id":"app..00-FF","_etag":"e","version":1,"LeaseToken":"00-FF",
				"feedRange":{"Range":{"min":"00","max":"FF","isMinInclusive":true,"isMaxInclusive":false}},
				"Owner":"host-1","ContinuationToken":"\"77\"","timestamp":"2025-03-14T16:09:26+01:00"}`,
			want: Lease{ID: "00-FF", Range: Range{Min: "00", Max: "FF"}, ETag: "e", Owner: "host-1",
				Continuation: `"77"`, Timestamp: time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC)},
		},
		{
			name: "no timestamp: _ts",
			doc: `{"id":"app..a","version":1,"LeaseToken":"a","FeedRange":{"Range":{"min":"","max":"FF"}},
				"_ts":1741964966,"properties":{"items":"5","other":"kept out"}}`,
			want: Lease{ID: "a", Range: Range{Max: "FF"}, Items: 5, Timestamp: time.Unix(1741964966, 0).UTC()},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, _, err := decodeLease([]byte(tc.doc))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestDecodeRefusesBadDocuments(t *testing.T) {
	good := `{"id":"p..a","version":1,"LeaseToken":"a","FeedRange":{"Range":{"min":"","max":"FF"}}}`
	if _, _, err := decodeLease([]byte(good)); err != nil {
		t.Fatalf("the base document must decode: %v", err)
	}
	cases := map[string]string{
		"empty":                  ``,
		"torn":                   good[:len(good)/2],
		"two objects":            good + good,
		"trailing garbage":       good + `x`,
		"array":                  `[` + good + `]`,
		"no id":                  strings.Replace(good, `"id":"p..a",`, ``, 1),
		"PK-range lease (v0)":    strings.Replace(good, `"version":1`, `"version":0`, 1),
		"no version":             strings.Replace(good, `"version":1,`, ``, 1),
		"no LeaseToken":          strings.Replace(good, `"LeaseToken":"a",`, ``, 1),
		"no FeedRange":           strings.Replace(good, `,"FeedRange":{"Range":{"min":"","max":"FF"}}`, ``, 1),
		"no max":                 strings.Replace(good, `,"max":"FF"`, ``, 1),
		"exclusive min":          strings.Replace(good, `"max":"FF"`, `"max":"FF","isMinInclusive":false`, 1),
		"inclusive max":          strings.Replace(good, `"max":"FF"`, `"max":"FF","isMaxInclusive":true`, 1),
		"bad timestamp":          strings.Replace(good, `"version"`, `"timestamp":"yesterday","version"`, 1),
		"bad items":              strings.Replace(good, `"version"`, `"properties":{"items":"many"},"version"`, 1),
		"NaN RU":                 strings.Replace(good, `"version"`, `"properties":{"ru":"NaN"},"version"`, 1),
		"huge RU":                strings.Replace(good, `"version"`, `"properties":{"ru":"1e999"},"version"`, 1),
		"bad checkpointedAt":     strings.Replace(good, `"version"`, `"properties":{"checkpointedAt":"1"},"version"`, 1),
		"token is a path":        strings.Replace(good, `"LeaseToken":"a"`, `"LeaseToken":"../../etc/passwd"`, 1),
		"owner is a number":      strings.Replace(good, `"version"`, `"Owner":7,"version"`, 1),
		"_ts beyond year 9999":   strings.Replace(good, `"version"`, `"_ts":300000000000,"version"`, 1),
		"lastChangeTs not a num": strings.Replace(good, `"version"`, `"properties":{"lastChangeTs":"x"},"version"`, 1),
		"unknown mode":           strings.Replace(good, `"version"`, `"properties":{"mode":"incremental"},"version"`, 1),
		"bad fallbackAt":         strings.Replace(good, `"version"`, `"properties":{"fallbackAt":"soon"},"version"`, 1),
	}
	for name, doc := range cases {
		t.Run(name, func(t *testing.T) {
			if l, _, err := decodeLease([]byte(doc)); err == nil {
				t.Fatalf("decoded %+v from %s", l, doc)
			}
		})
	}
}

func TestEncodeRefusesWhatItCannotHold(t *testing.T) {
	cases := map[string]Lease{
		"bad id":        {ID: "a/b"},
		"infinite RU":   {ID: "a", RU: math.Inf(1)},
		"NaN RU":        {ID: "a", RU: math.NaN()},
		"year 10000":    {ID: "a", CaughtUpAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
		"year before 1": {ID: "a", Timestamp: time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC)},
	}
	for name, l := range cases {
		if _, err := encodeLease("p..a", l, ""); err == nil {
			t.Errorf("%s: encoded %+v", name, l)
		}
	}
}

func TestCorruptErrorsNameTheSource(t *testing.T) {
	err := corrupt("/state/leases/a.json", errors.New("unexpected EOF"))
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "/state/leases/a.json") {
		t.Fatalf("corrupt() = %v", err)
	}
}

// FuzzDecodeLease: decoding never panics, and whatever decodes re-encodes
// and decodes to the same lease and id.
func FuzzDecodeLease(f *testing.F) {
	for _, etag := range []string{"", "etag"} {
		b, err := encodeLease("rekey..05C1E0-0AAAAA", sampleLease(), etag)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"id":"a..-FF","version":1,"LeaseToken":"-FF","FeedRange":{"Range":{"min":"","max":"FF"}},"Owner":null,"_ts":5}`))
	f.Add([]byte(`{"id":"x","version":1,"LeaseToken":"t","feedRange":{"Range":{"min":"0","max":"1","isMinInclusive":true}},"properties":{"ru":"-0","items":"+3"}}`))
	f.Add([]byte(`{"id":"x","version":1}`))
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, b []byte) {
		l, id, err := decodeLease(b)
		if err != nil {
			return
		}
		again, err := encodeLease(id, l, l.ETag)
		if err != nil {
			t.Fatalf("decoded %+v but cannot encode it: %v", l, err)
		}
		l2, id2, err := decodeLease(again)
		if err != nil {
			t.Fatalf("re-encoded document does not decode: %v\n%s", err, again)
		}
		if id2 != id || !reflect.DeepEqual(l2, l) {
			t.Fatalf("round trip changed the lease:\n%q %+v\n%q %+v", id, l, id2, l2)
		}
	})
}

// When a holder left writes unanswered survives the document (a cutover
// waits for them), and a lease without it encodes as before.
func TestUnansweredAtRoundTrips(t *testing.T) {
	l := sampleLease()
	l.Owner = ""
	l.UnansweredAt = l.Timestamp.Add(-time.Second)
	b, err := encodeLease("rekey..05C1E0-0AAAAA", l, "")
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := decodeLease(b)
	if err != nil {
		t.Fatal(err)
	}
	if !got.UnansweredAt.Equal(l.UnansweredAt) {
		t.Fatalf("unansweredAt %v after a round trip, want %v\n%s", got.UnansweredAt, l.UnansweredAt, b)
	}
	plain, err := encodeLease("rekey..05C1E0-0AAAAA", sampleLease(), "")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(plain), propUnansweredAt) {
		t.Fatalf("a lease without unanswered writes carries %q:\n%s", propUnansweredAt, plain)
	}
}
