package epk

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// The partition key hash baselines the Go SDK ships (see testdata/README.md
// for their origin, format and license). Version 2 vectors are EPKs: each is
// checked raw, against the file, and routed through the exported Hash,
// against the file's value with the routing mask applied. Version 1 vectors
// are not EPKs but the bare 32-bit hash of each component, untruncated (the
// Go SDK's simplified form): each is checked against murmur32 of the hashing
// encoding, and against the hash that Hash's EPK carries in its first
// component, which is the same for keys of at most 100 characters and the
// hash of the first 100 characters for longer ones.

type baselineFile struct {
	Results []baselineResult `xml:"Result"`
}

type baselineResult struct {
	Description string `xml:"Input>Description"`
	Value       string `xml:"Input>PartitionKeyValue"`
	V1          string `xml:"Output>PartitionKeyHashV1"`
	V2          string `xml:"Output>PartitionKeyHashV2"`
}

// baselineValues turns a PartitionKeyValue into key components.
func baselineValues(raw string) ([]any, error) {
	if raw == "UNDEFINED" {
		return []any{Undefined{}}, nil
	}
	var v any
	if err := json.Unmarshal([]byte(raw), &v); err != nil {
		return nil, fmt.Errorf("parse %q: %w", raw, err)
	}
	switch v := v.(type) {
	case string:
		// The .NET generator writes the non-finite doubles as strings. Its
		// NaN is the bit pattern 0xFFF8000000000000, not Go's math.NaN().
		switch v {
		case "NaN":
			return []any{math.Float64frombits(0xFFF8000000000000)}, nil
		case "Infinity":
			return []any{math.Inf(1)}, nil
		case "-Infinity":
			return []any{math.Inf(-1)}, nil
		}
		return []any{v}, nil
	case []any:
		return v, nil
	default: // nil, bool, float64
		return []any{v}, nil
	}
}

// maskedV2 applies the routing mask to each 32-digit hash of an unmasked
// baseline value.
func maskedV2(t *testing.T, raw string) string {
	t.Helper()
	b := []byte(raw)
	for i := 0; i < len(b); i += 32 {
		hi, ok := nibble(b[i])
		if !ok {
			t.Fatalf("baseline V2 %q: bad digit", raw)
		}
		b[i] = hexDigits[hi&0x3]
	}
	return string(b)
}

func TestBaselineVectors(t *testing.T) {
	files := []struct {
		name  string
		count int  // guards against a parse that silently drops vectors
		multi bool // the Lists file holds hierarchical keys
	}{
		{"Singletons", 4, false},
		{"Numbers", 16, false},
		{"Strings", 6, false},
		{"Lists", 3, true},
	}
	total := 0
	// The 100-character string's hash, which longer strings share.
	truncatedHash := map[string]string{}
	for _, f := range files {
		path := filepath.Join("testdata", "PartitionKeyHashBaselineTest."+f.name+".xml")
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var parsed baselineFile
		if err := xml.Unmarshal(data, &parsed); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if len(parsed.Results) != f.count {
			t.Fatalf("%s: %d vectors, want %d", path, len(parsed.Results), f.count)
		}
		for _, r := range parsed.Results {
			total++
			values, err := baselineValues(r.Value)
			if err != nil {
				t.Fatalf("%s %q: %v", f.name, r.Description, err)
			}
			if r.Description == "100 byte string" {
				truncatedHash[f.name] = r.V1
			}
			t.Run(f.name+"/"+r.Description, func(t *testing.T) {
				checkBaseline(t, r, values, f.multi, truncatedHash[f.name])
			})
		}
	}
	if total != 29 {
		t.Errorf("checked %d vectors, want 29", total)
	}
}

// hashOfV1 returns the 32-bit hash a version 1 EPK carries in its first
// component, as 32 digits in the baseline files' form.
func hashOfV1(t *testing.T, epk string) string {
	t.Helper()
	v, _, err := parseV1(epk)
	if err != nil {
		t.Fatalf("EPK %q: %v", epk, err)
	}
	return fmt.Sprintf("%024d%08X", 0, v.lo)
}

func checkBaseline(t *testing.T, r baselineResult, values []any, multi bool, truncatedHash string) {
	// Version 1: per component, the bare hash of the untruncated encoding.
	var raw []byte
	for _, c := range values {
		enc, err := appendComponent(nil, c, stringEndV1)
		if err != nil {
			t.Fatal(err)
		}
		raw = fmt.Appendf(raw, "%024d%08X", 0, murmur32(enc, 0))
	}
	if string(raw) != r.V1 {
		t.Errorf("V1 raw hashes = %s; want %s", raw, r.V1)
	}
	raw, err := appendEPK(nil, values, Version2, multi, false)
	if err != nil || string(raw) != r.V2 {
		t.Errorf("V2 unmasked = %s, %v; want %s", raw, err, r.V2)
	}

	// The same vectors through the exported API, as the emulator calls it.
	paths := make([]string, len(values))
	for i := range paths {
		paths[i] = fmt.Sprintf("/p%d", i)
	}
	v2 := Definition{Paths: paths, Kind: KindHash, Version: Version2}
	if multi {
		v2.Kind = KindMultiHash
	}
	if got, err := Hash(v2, values); err != nil || got != maskedV2(t, r.V2) {
		t.Errorf("Hash(%+v) = %s, %v; want %s", v2, got, err, maskedV2(t, r.V2))
	}
	if multi {
		return // version 1 has no hierarchical keys
	}
	v1 := Definition{Paths: paths} // version and kind omitted: Hash, version 1
	got, err := Hash(v1, values)
	if err != nil {
		t.Fatalf("Hash(%+v): %v", v1, err)
	}
	want := r.V1
	if s, ok := values[0].(string); ok && len(s) > maxStringUnits {
		want = truncatedHash // the service hashes the first 100 characters
		if want == r.V1 {
			t.Fatalf("the file's %d-character hash equals the 100-character one", len(s))
		}
	}
	if h := hashOfV1(t, got); h != want {
		t.Errorf("Hash(%+v) = %s carries hash %s; want %s", v1, got, h, want)
	}
	if _, undefined := values[0].(Undefined); undefined {
		// An empty key is the undefined key.
		if empty, err := Hash(v1, nil); err != nil || empty != got {
			t.Errorf("Hash(v1, nil) = %s, %v; want %s", empty, err, got)
		}
		if got, err := Hash(v2, []any{}); err != nil || got != maskedV2(t, r.V2) {
			t.Errorf("Hash(v2, []) = %s, %v; want %s", got, err, maskedV2(t, r.V2))
		}
	}
}
