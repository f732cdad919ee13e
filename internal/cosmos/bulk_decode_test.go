package cosmos

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

// referenceBulkResults decodes a bulk answer with encoding/json, field
// names matched exactly: what parseBulkResults must agree with.
func referenceBulkResults(data []byte) ([]bulkResultDoc, error) {
	if string(bytes.TrimSpace(data)) == "null" {
		return nil, fmt.Errorf("null is not an array")
	}
	var objs []map[string]json.RawMessage
	if err := json.Unmarshal(data, &objs); err != nil {
		return nil, err
	}
	out := make([]bulkResultDoc, len(objs))
	for i, o := range objs {
		if o == nil {
			return nil, fmt.Errorf("result %d is null", i)
		}
		var sc, ssc float64
		for name, dst := range map[string]any{
			"statusCode": &sc, "subStatusCode": &ssc, "requestCharge": &out[i].RequestCharge,
			"retryAfterMilliseconds": &out[i].RetryAfterMilliseconds, "eTag": &out[i].ETag, "message": &out[i].Message,
		} {
			if raw, ok := o[name]; ok {
				if err := json.Unmarshal(raw, dst); err != nil {
					return nil, err
				}
			}
		}
		out[i].StatusCode, out[i].SubStatusCode = int(sc), int(ssc)
		if raw, ok := o["resourceBody"]; ok {
			out[i].ResourceBody = raw
		}
	}
	return out, nil
}

// randomJSON is a random JSON value of at most depth levels, with strings
// that need escaping.
func randomJSON(r *rand.Rand, depth int) any {
	switch k := r.IntN(7); {
	case depth == 0 || k == 0:
		return []string{`plain`, `quote " and \ backslash`, "ctl \n\t\u0001", "ünï€😀", `</script>&`, ``}[r.IntN(6)]
	case k == 1:
		return r.Float64()*1e6 - 5e5
	case k == 2:
		return []any{true, false, nil}[r.IntN(3)]
	case k <= 4:
		m := map[string]any{}
		for range r.IntN(5) {
			m[fmt.Sprint("k\"", r.IntN(100))] = randomJSON(r, depth-1)
		}
		return m
	default:
		var a []any
		for range r.IntN(5) {
			a = append(a, randomJSON(r, depth-1))
		}
		return a
	}
}

// TestParseBulkResultsAgreesWithEncodingJSON: on answers written by
// encoding/json, with nested and escaped item bodies, the walk decodes
// what encoding/json decodes, and keeps each body byte for byte.
func TestParseBulkResultsAgreesWithEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for n := range 300 {
		results := []map[string]any{}
		for i := range r.IntN(6) {
			res := map[string]any{"statusCode": []int{200, 201, 409, 429, 413}[r.IntN(5)], "requestCharge": r.Float64() * 10}
			if r.IntN(2) == 0 {
				res["eTag"] = fmt.Sprintf("\"%08x-%d\"", r.Uint32(), i)
			}
			if r.IntN(2) == 0 {
				res["resourceBody"] = map[string]any{"id": fmt.Sprint(i), "v": randomJSON(r, 4)}
			}
			if r.IntN(4) == 0 {
				res["subStatusCode"], res["retryAfterMilliseconds"], res["message"] = 3200, 12.5, "Request rate is large \"x\""
			}
			if r.IntN(5) == 0 {
				res["unknown"] = randomJSON(r, 3)
			}
			results = append(results, res)
		}
		data, err := json.Marshal(results)
		if err != nil {
			t.Fatal(err)
		}
		if n%3 == 0 { // indented, as another writer might
			var b bytes.Buffer
			_ = json.Indent(&b, data, "", "  ")
			data = b.Bytes()
		}
		want, err := referenceBulkResults(data)
		if err != nil {
			t.Fatal(err)
		}
		got, err := parseBulkResults(data)
		if err != nil {
			t.Fatalf("%s: %v", data, err)
		}
		if len(got) == 0 && len(want) == 0 {
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s:\n got %+v\nwant %+v", data, got, want)
		}
	}
}

func TestParseBulkResultsRefusesWhatIsNotAnAnswer(t *testing.T) {
	for _, in := range []string{
		``, `{}`, `[`, `[{]`, `[{"statusCode":201}`, `[{"statusCode":201}] x`, `[{"statusCode":"201"}]`,
		`[{"resourceBody":{"a":[1,2}}]`, `[{"resourceBody":"unterminated}]`, `[{"statusCode" 201}]`, `[1]`,
		`[{"eTag":"\q"}]`, `[{"statusCode":201,}]`, `[{"resourceBody":}]`,
	} {
		if got, err := parseBulkResults([]byte(in)); err == nil {
			t.Errorf("%s: parsed as %+v, want an error", in, got)
		}
	}
}

// FuzzParseBulkResults: whatever the input, the walk does not panic, and
// whenever encoding/json reads it as results, the walk reads the same.
func FuzzParseBulkResults(f *testing.F) {
	for _, s := range []string{
		`[]`, `[{"statusCode":201,"requestCharge":5.5,"eTag":"\"00-1\"","resourceBody":{"id":"a","x":[1,{"y":"]}"}]}}]`,
		`[{"statusCode":429,"subStatusCode":3200,"retryAfterMilliseconds":12,"message":"m\u00e9"}, {"statusCode":409}]`,
		`[{"resourceBody":null,"eTag":null}]`, ` [ { "statusCode" : 200 } ] `, `[{"resourceBody":"\\\"}"}]`,
		strings.Repeat(`[`, 50),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := parseBulkResults(data)
		want, refErr := referenceBulkResults(data)
		if refErr != nil {
			return
		}
		if err != nil {
			t.Fatalf("encoding/json reads %q as %+v; the walk fails: %v", data, want, err)
		}
		if len(got)+len(want) > 0 && !reflect.DeepEqual(got, want) {
			t.Fatalf("%q:\n got %+v\nwant %+v", data, got, want)
		}
	})
}
