package query

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// benchDoc returns a document of about 1 KB with pk near the front and n
// near the end, the shape of a typical stored item.
func benchDoc() []byte {
	var b strings.Builder
	b.WriteString(`{"id":"7f3c9a2e-0b1d-4c5e-9f8a-1b2c3d4e5f60","pk":"tenant-42",`)
	for i := 0; b.Len() < 950; i++ {
		fmt.Fprintf(&b, `"field%02d":{"name":"value number %d","count":%d,"ok":true},`, i, i, i*17)
	}
	b.WriteString(`"n":12,"_ts":1700000000}`)
	return []byte(b.String())
}

func BenchmarkMatch(b *testing.B) {
	raw := benchDoc()
	doc, err := Decode(raw)
	if err != nil {
		b.Fatal(err)
	}
	q, err := Parse("SELECT * FROM c WHERE c.pk = @p AND c.n > 5")
	if err != nil {
		b.Fatal(err)
	}
	bound, err := q.Bind(params("@p", `"tenant-42"`))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, ok, _ := bound.Match(doc); !ok {
			b.Fatal("no match")
		}
	}
}

// BenchmarkMatchRawAppend is the emulator's whole streaming step: wrap the
// stored bytes, match, and write the result.
func BenchmarkMatchRawAppend(b *testing.B) {
	raw := benchDoc()
	q, _ := Parse("SELECT * FROM c WHERE c.pk = @p AND c.n > 5")
	bound, _ := q.Bind(params("@p", `"tenant-42"`))
	var out []byte
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		v, ok, _ := bound.Match(Raw(raw))
		if !ok {
			b.Fatal("no match")
		}
		out = v.AppendJSON(out[:0])
	}
}

func BenchmarkRunOrderBy1000(b *testing.B) {
	docs := make([]Value, 1000)
	for i := range docs {
		docs[i] = Raw([]byte(fmt.Sprintf(`{"id":"%d","pk":"p","n":%d,"s":"x%d"}`, i, (i*7919)%1000, i)))
	}
	q, _ := Parse("SELECT VALUE c.id FROM c WHERE c.n >= 0 ORDER BY c.n DESC, c.s")
	bound, _ := q.Bind(nil)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if out, _ := bound.Run(slices.Values(docs)); len(out) != 1000 {
			b.Fatal(len(out))
		}
	}
}
