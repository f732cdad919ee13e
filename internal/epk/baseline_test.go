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

// The .NET SDK's partition key hash baselines (see testdata/README.md for
// their origin and license). Every vector is checked for both versions: raw,
// against the file, and routed through the exported Hash, against the file's
// value with the routing mask applied.

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
			t.Run(f.name+"/"+r.Description, func(t *testing.T) {
				checkBaseline(t, r, values, f.multi)
			})
		}
	}
	if total != 29 {
		t.Errorf("checked %d vectors, want 29", total)
	}
}

func checkBaseline(t *testing.T, r baselineResult, values []any, multi bool) {
	raw, err := appendEPK(nil, values, Version1, true, false)
	if err != nil || string(raw) != r.V1 {
		t.Errorf("V1 = %s, %v; want %s", raw, err, r.V1)
	}
	raw, err = appendEPK(nil, values, Version2, multi, false)
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
	if got, err := Hash(v1, values); err != nil || got != r.V1 {
		t.Errorf("Hash(%+v) = %s, %v; want %s", v1, got, err, r.V1)
	}
	if _, undefined := values[0].(Undefined); undefined {
		// An empty key is the undefined key.
		if got, err := Hash(v1, nil); err != nil || got != r.V1 {
			t.Errorf("Hash(v1, nil) = %s, %v; want %s", got, err, r.V1)
		}
		if got, err := Hash(v2, []any{}); err != nil || got != maskedV2(t, r.V2) {
			t.Errorf("Hash(v2, []) = %s, %v; want %s", got, err, maskedV2(t, r.V2))
		}
	}
}
