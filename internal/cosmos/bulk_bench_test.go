package cosmos

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// BenchmarkBulkEncodeDecode measures the client's CPU per bulk request of
// 100 creates of about 385 bytes: encoding the body (checking each item is
// JSON, as ExecuteBulk does, or trusting it, as the pipeline's port does)
// and decoding a 200 answer that echoes the items (no network, no
// emulator).
func BenchmarkBulkEncodeDecode(b *testing.B) {
	ops := make([]BulkOperation, 100)
	var res strings.Builder
	res.WriteByte('[')
	for i := range ops {
		body := fmt.Sprintf(`{"id":"item-%06d","pk":"tenant-%d-202401","name":"%s"}`, i, i%7, strings.Repeat("x", 320))
		ops[i] = BulkOperation{Type: BulkCreate, Key: key(fmt.Sprintf("tenant-%d-202401", i%7)), Body: []byte(body)}
		if i > 0 {
			res.WriteByte(',')
		}
		fmt.Fprintf(&res, `{"statusCode":201,"requestCharge":6.29,"eTag":"\"0000-%d\"","resourceBody":%s}`, i, body[:len(body)-1]+`,"_rid":"abc","_etag":"\"x\"","_ts":1700000000}`)
	}
	res.WriteByte(']')
	resp := &rawResponse{status: 200, header: http.Header{}, body: []byte(res.String()), ru: 629}
	for _, check := range []bool{true, false} {
		b.Run(fmt.Sprintf("checked=%v", check), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := encodeBulk(ops, check); err != nil {
					b.Fatal(err)
				}
				if _, err := decodeBulk(resp, ops, "db/c"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
