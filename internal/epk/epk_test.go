package epk

import (
	"errors"
	"math"
	"strings"
	"testing"
)

var (
	defV1     = Definition{Paths: []string{"/pk"}}
	defV2     = Definition{Paths: []string{"/pk"}, Kind: KindHash, Version: Version2}
	defMulti2 = Definition{Paths: []string{"/tenantId", "/userId"}, Kind: KindMultiHash, Version: Version2}
	defMulti3 = Definition{Paths: []string{"/a", "/b", "/c"}, Kind: KindMultiHash, Version: Version2}
)

// Vectors from the Go SDK's own tests (azcosmos v1.5.0). Its version 1 EPKs
// are a simplified form of its own (TestHashV1GoSDKForm); the rest are the
// service's.
func TestHashSDKVectors(t *testing.T) {
	tests := []struct {
		name   string
		def    Definition
		values []any
		want   string
	}{
		// partition_key_test.go, TestComputeEffectivePartitionKey.
		{"V2 null masked", defV2, []any{nil}, "378867E4430E67857ACE5C908374FE16"},
		{"MultiHash a,b", defMulti2, []any{"a", "b"},
			"3A5381E1114EB8D3FCC90795045B49B7195644569A78B1E22D200348AF9416CE"},
		// A MultiHash prefix hashes like the first component alone
		// (the first 32 digits of the vector above).
		{"MultiHash prefix a", defMulti2, []any{"a"}, "3A5381E1114EB8D3FCC90795045B49B7"},
		// PartitionKeyHashBaselineTest.Lists.xml "3 Path List", masked: the
		// third component's raw hash starts 0xEC, masked to 0x2C.
		{"MultiHash 3 paths", defMulti3, []any{"/path1", "/path2", "/path3"},
			"3499FD5198AE0F1EB6B77F6E428D2FF0" + "27A1848BD1102A3B65AFF266874D0FF5" + "2CA5ABC953544CF9BD94776DA5E6EA52"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Hash(tt.def, tt.values)
			if err != nil || got != tt.want {
				t.Errorf("Hash = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// The Go SDK's version 1 vectors (partition_key_test.go,
// TestComputeEffectivePartitionKey) are 24 '0' digits and the key's hash:
// not the service's EPK, but the same hash the service's EPK carries in its
// first component, for keys of at most 100 characters.
func TestHashV1GoSDKForm(t *testing.T) {
	for _, tt := range []struct {
		values []any
		sdk    string
		want   string
	}{
		{[]any{"hello"}, "000000000000000000000000FF69187F", "05C1EFF74961FE0869666D6D7000"},
		{[]any{}, "000000000000000000000000514E28B7", "05C1D529E345DC00"}, // the undefined key
	} {
		got, err := Hash(defV1, tt.values)
		if err != nil || got != tt.want {
			t.Errorf("Hash(V1, %v) = %q, %v; want %q", tt.values, got, err, tt.want)
			continue
		}
		if h := hashOfV1(t, got); h != tt.sdk {
			t.Errorf("Hash(V1, %v) = %q carries hash %s; the SDK's form is %s", tt.values, got, h, tt.sdk)
		}
	}
}

func TestHashComponentsAndUndefined(t *testing.T) {
	// An empty key is one undefined component, even for MultiHash: a point,
	// 32 digits, the SDK's computeEPKRange "UndefinedPK_MultiHash" case
	// (cosmos_container_read_many_test.go).
	empty, err := Hash(defMulti2, nil)
	if err != nil {
		t.Fatal(err)
	}
	undef, err := Hash(defMulti2, []any{Undefined{}})
	if err != nil || empty != undef || len(empty) != 32 {
		t.Errorf("Hash(multi, nil) = %q, Hash(multi, [Undefined]) = %q, %v", empty, undef, err)
	}
	// A MultiHash key with an absent second field is a full key of two
	// components, not a prefix.
	full, err := Hash(defMulti2, []any{"t", Undefined{}})
	if err != nil || len(full) != 64 {
		t.Errorf("Hash(multi, [t, Undefined]) = %q, %v", full, err)
	}
	// null and undefined are different keys.
	null, _ := Hash(defV2, []any{nil})
	undef, _ = Hash(defV2, []any{Undefined{}})
	if null == undef {
		t.Errorf("null and undefined hash alike: %q", null)
	}
	// -0 and 0 are hashed by their bits, as the SDK and .NET do.
	pos, _ := Hash(defV2, []any{0.0})
	neg, _ := Hash(defV2, []any{math.Copysign(0, -1)})
	if pos == neg {
		t.Errorf("0 and -0 hash alike: %q", pos)
	}
}

func TestHashErrors(t *testing.T) {
	tests := []struct {
		name   string
		def    Definition
		values []any
		want   error
	}{
		{"int component", defV2, []any{42}, ErrUnsupportedValue},
		{"[]byte component", defV2, []any{[]byte("x")}, ErrUnsupportedValue},
		{"Undefined pointer", defV2, []any{&Undefined{}}, ErrUnsupportedValue},
		{"bad V1 component", defV1, []any{int64(1)}, ErrUnsupportedValue},
		{"bad second component", defMulti2, []any{"a", float32(1)}, ErrUnsupportedValue},
		// cosmos_container_read_many_test.go, TestComputeEPKRange_TooManyComponents.
		{"too many components", defV2, []any{"a", "b"}, ErrComponentCount},
		{"too many for MultiHash", defMulti2, []any{"a", "b", "c"}, ErrComponentCount},
		{"no paths", Definition{}, []any{"a"}, ErrInvalidDefinition},
		// cosmos_container_read_many_test.go, TestComputeEPKRange_NonMultiHashPartialKey:
		// the SDK refuses the partial key; a Hash definition of two paths is
		// already invalid here.
		{"Hash with 2 paths", Definition{Paths: []string{"/a", "/b"}, Version: Version2}, []any{"x"}, ErrInvalidDefinition},
		{"MultiHash on V1", Definition{Paths: []string{"/a", "/b"}, Kind: KindMultiHash}, []any{"x", "y"}, ErrInvalidDefinition},
		{"MultiHash 4 paths", Definition{Paths: []string{"/a", "/b", "/c", "/d"}, Kind: KindMultiHash, Version: Version2}, nil, ErrInvalidDefinition},
		{"kind Range", Definition{Paths: []string{"/a"}, Kind: "Range"}, []any{"x"}, ErrInvalidDefinition},
		{"version 3", Definition{Paths: []string{"/a"}, Version: 3}, []any{"x"}, ErrUnsupportedVersion},
		{"version -1", Definition{Paths: []string{"/a"}, Version: -1}, []any{"x"}, ErrInvalidDefinition},
		{"path without slash", Definition{Paths: []string{"pk"}}, []any{"x"}, ErrInvalidDefinition},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Hash(tt.def, tt.values)
			if !errors.Is(err, tt.want) || got != "" {
				t.Errorf("Hash = %q, %v; want error %v", got, err, tt.want)
			}
		})
	}
}

func TestDefinitionDefaults(t *testing.T) {
	d := Definition{Paths: []string{"/pk"}}
	if d.EffectiveKind() != KindHash || d.EffectiveVersion() != Version1 {
		t.Errorf("defaults = %s, %d; want Hash, 1", d.EffectiveKind(), d.EffectiveVersion())
	}
	if err := d.Validate(); err != nil {
		t.Errorf("Validate(%+v) = %v", d, err)
	}
	for n, want := range map[int]bool{0: false, 1: true, 2: true, 3: false, 4: false} {
		if got := defMulti3.IsPrefix(n); got != want {
			t.Errorf("IsPrefix(%d) = %v, want %v", n, got, want)
		}
	}
	if defV2.IsPrefix(0) || defV2.IsPrefix(1) {
		t.Error("a Hash key has no prefixes")
	}
}

func TestPrefixRange(t *testing.T) {
	// cosmos_container_read_many_test.go, TestComputeEPKRange_PrefixKeyMultiHash:
	// the range is [epk, epk+"FF").
	r, err := PrefixRange(defMulti2, []any{"tenant1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Min) != 32 || r.Max != r.Min+"FF" {
		t.Fatalf("PrefixRange = %+v", r)
	}
	for _, user := range []any{"user1", "", nil, Undefined{}, 7.0, true} {
		full, err := Hash(defMulti2, []any{"tenant1", user})
		if err != nil || !r.Contains(full) {
			t.Errorf("full key [tenant1 %v] = %q (%v) not in %+v", user, full, err, r)
		}
	}
	other, _ := Hash(defMulti2, []any{"tenant2", "user1"})
	if r.Contains(other) {
		t.Errorf("other tenant's key %q in %+v", other, r)
	}

	// Two of three components.
	r2, err := PrefixRange(defMulti3, []any{"/path1", "/path2"})
	if err != nil || r2.Max != r2.Min+"FF" || len(r2.Min) != 64 ||
		r2.Min != "3499FD5198AE0F1EB6B77F6E428D2FF027A1848BD1102A3B65AFF266874D0FF5" {
		t.Errorf("PrefixRange(2 of 3) = %+v, %v", r2, err)
	}

	for _, tt := range []struct {
		def    Definition
		values []any
		want   error
	}{
		{defMulti2, []any{"a", "b"}, ErrNotPrefix}, // full key
		{defMulti2, nil, ErrNotPrefix},             // the undefined key is a point
		{defV2, []any{"a"}, ErrNotPrefix},
		{defMulti2, []any{1}, ErrUnsupportedValue},
		{Definition{}, []any{"a"}, ErrInvalidDefinition},
	} {
		if _, err := PrefixRange(tt.def, tt.values); !errors.Is(err, tt.want) {
			t.Errorf("PrefixRange(%+v, %v) = %v, want %v", tt.def, tt.values, err, tt.want)
		}
	}
}

func TestHashLongKeys(t *testing.T) {
	// Past the stack buffer; the 2 KB baseline vector covers correctness,
	// this covers MultiHash components of that size.
	long := strings.Repeat("x", 5000)
	got, err := Hash(defMulti3, []any{long, long, long})
	if err != nil || len(got) != 96 || got[:32] != got[32:64] || got[32:64] != got[64:] {
		t.Errorf("Hash(3 long) = %q, %v", got, err)
	}
}

func BenchmarkHashV2ShortString(b *testing.B) {
	values := []any{"tenant-42"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Hash(defV2, values); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkHashMultiHash3(b *testing.B) {
	values := []any{"tenant-42", "user-1234", 202406.0}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Hash(defMulti3, values); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkHashV1ShortString(b *testing.B) {
	values := []any{"tenant-42"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Hash(defV1, values); err != nil {
			b.Fatal(err)
		}
	}
}
