package transform

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// benchItem returns a realistic order document of about size bytes: nested
// customer and address, order lines, ISO and epoch dates, numbers in several
// notations, unicode text, escapes and the service's system properties.
func benchItem(size int) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, `{"id":"order-%08d","tenantId":"tenant-0042","region":"westeurope","status":"shipped",`, 1234567)
	b.WriteString(`"createdAt":"2024-03-05T10:15:30.1234567+01:00","updatedMs":1709630130123,`)
	b.WriteString(`"customer":{"id":"c-981","name":"Zoë Ångström","email":"zoe@example.com","vip":true,"score":9.75e-1,`)
	b.WriteString(`"address":{"street":"Königstraße 12","city":"München","zip":"80331","country":"DE","geo":{"lat":48.1372,"lon":11.5756}}},`)
	b.WriteString(`"total":1234.50,"currency":"EUR","bigCounter":12345678901234567890,"ratio":1.0,"_myField":"kept","note":"line1\nline2 \"quoted\" \u00e9",`)
	b.WriteString(`"lines":[`)
	for i := 0; b.Len() < size-260; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"sku":"SKU-%05d","qty":%d,"price":%d.99,"tags":["a","b"],"discount":null}`, i*37%100000, i%7+1, i%50+3)
	}
	b.WriteString(`],"_rid":"Sl8fALN4sw4BAAAAAAAAAA==","_self":"dbs/Sl8fAA==/colls/Sl8fALN4sw4=/docs/Sl8fALN4sw4BAAAAAAAAAA==/",`)
	b.WriteString(`"_etag":"\"0000d2a6-0000-0d00-0000-65e6f1c20000\"","_attachments":"attachments/","_ts":1709630146}`)
	return []byte(b.String())
}

var benchSpec = []string{"/tenantId", "/pk={customer.address.city|lower}-{createdAt|yyyyMM}-{id|hash:16}"}

// BenchmarkTransform compares Apply with what a map-based tool does: an
// encoding/json unmarshal into map[string]any, the same edits, and a marshal.
// Both report MB/s of source item bytes and allocations, in the same run.
func BenchmarkTransform(b *testing.B) {
	spec, err := ParseSpec(benchSpec)
	if err != nil {
		b.Fatal(err)
	}
	tr, err := New(spec, []string{"/region"})
	if err != nil {
		b.Fatal(err)
	}
	for _, size := range []int{1 << 10, 10 << 10} {
		item := benchItem(size)
		name := fmt.Sprintf("%dKB", size>>10)
		b.Run(name+"/rekey", func(b *testing.B) {
			var r Result
			b.SetBytes(int64(len(item)))
			b.ReportAllocs()
			for b.Loop() {
				if err := tr.ApplyTo(&r, item); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/encoding-json", func(b *testing.B) {
			b.SetBytes(int64(len(item)))
			b.ReportAllocs()
			for b.Loop() {
				var m map[string]any
				if err := json.Unmarshal(item, &m); err != nil {
					b.Fatal(err)
				}
				for k := range m {
					if IsSystemProperty(k) {
						delete(m, k)
					}
				}
				m["pk"] = "x"
				if _, err := json.Marshal(m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
