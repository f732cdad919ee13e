package transform

import (
	"errors"
	"hash/fnv"
	"testing"
)

// evalTemplate evaluates a one-key synthetic spec /k=TEMPLATE on item and
// returns the key.
func evalTemplate(t *testing.T, template, item string) (string, error) {
	t.Helper()
	spec, err := ParseSpec([]string{"/k=" + template})
	if err != nil {
		t.Fatalf("ParseSpec: %v", err)
	}
	tr, err := New(spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := tr.Apply([]byte(item))
	if err != nil {
		return "", err
	}
	return r.Key[0].Str, nil
}

func TestDateFunctions(t *testing.T) {
	tests := []struct {
		value string // JSON value of field v
		fn    string
		want  string
	}{
		{`"2024-03-05"`, "yyyy", "2024"},
		{`"2024-03-05"`, "yyyyMM", "202403"},
		{`"2024-03-05"`, "yyyyMMdd", "20240305"},
		{`"2024-03-05"`, "yyyyMMddHH", "2024030500"},
		{`"2024-03-05T10:15:30Z"`, "yyyyMMddHH", "2024030510"},
		{`"2024-03-05t10:15:30z"`, "yyyyMMddHH", "2024030510"},
		{`"2024-03-05 10:15:30Z"`, "yyyyMMddHH", "2024030510"},
		{`"2024-03-05T10:15Z"`, "yyyyMMddHH", "2024030510"},
		{`"2024-03-05T10:15:30"`, "yyyyMMddHH", "2024030510"},
		{`"2024-03-05T10:15:30.1234567Z"`, "yyyyMMddHH", "2024030510"},
		{`"2024-03-05T10:15:30,5Z"`, "yyyyMMddHH", "2024030510"},
		// Offsets are converted to UTC, across day, month and year.
		{`"2024-03-05T23:30:00-02:00"`, "yyyyMMddHH", "2024030601"},
		{`"2024-03-31T23:30:00-0100"`, "yyyyMM", "202404"},
		{`"2024-12-31T22:00:00-05"`, "yyyy", "2025"},
		{`"2024-01-01T00:30:00+01:00"`, "yyyyMMddHH", "2023123123"},
		{`"2024-03-05T05:00:00+05:30"`, "yyyyMMddHH", "2024030423"},
		{`"2024-02-29"`, "yyyyMMdd", "20240229"},
		{`"2024-06-30T23:59:60Z"`, "yyyyMMdd", "20240701"}, // a leap second rolls over, as in UTC
		// Epoch seconds (_ts), fractional seconds, milliseconds.
		{`1709630146`, "yyyyMMddHH", "2024030509"},
		{`1709630146.9`, "yyyyMMddHH", "2024030509"},
		{`1709630146123`, "yyyyMMddHH", "2024030509"},
		{`1.709630146e9`, "yyyyMM", "202403"},
		{`0`, "yyyyMMddHH", "1970010100"},
		{`-1`, "yyyyMMddHH", "1969123123"},
		{`99999999999`, "yyyy", "5138"},     // just below the threshold: seconds
		{`100000000000`, "yyyy", "1973"},    // at the threshold: milliseconds
		{`253402300799`, "yyyy", "1978"},    // 9999-12-31 in seconds is above the threshold, so ms
		{`253402300799999`, "yyyy", "9999"}, // the last millisecond of 9999
	}
	for _, tt := range tests {
		t.Run(tt.value+"|"+tt.fn, func(t *testing.T) {
			got, err := evalTemplate(t, "{v|"+tt.fn+"}", `{"id":"1","v":`+tt.value+`}`)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("{v|%s} of %s = %q, want %q", tt.fn, tt.value, got, tt.want)
			}
		})
	}
}

func TestDateFunctionErrors(t *testing.T) {
	tests := []struct {
		value string
		kind  error
	}{
		{`"yesterday"`, ErrInvalidValue},
		{`"2024-3-5"`, ErrInvalidValue},
		{`"2024-13-01"`, ErrInvalidValue},
		{`"2023-02-29"`, ErrInvalidValue},
		{`"2024-04-31"`, ErrInvalidValue},
		{`"2024-03-05T24:00:00Z"`, ErrInvalidValue},
		{`"2024-03-05T10:60Z"`, ErrInvalidValue},
		{`"2024-03-05T10"`, ErrInvalidValue},
		{`"2024-03-05T10:15:30."`, ErrInvalidValue},
		{`"2024-03-05T10:15:30+01:"`, ErrInvalidValue},
		{`"2024-03-05T10:15:30+1"`, ErrInvalidValue},
		{`"2024-03-05T10:15:30 UTC"`, ErrInvalidValue},
		{`"2024-03-05Z"`, ErrInvalidValue},
		{`"1709630146"`, ErrInvalidValue},
		{`""`, ErrInvalidValue},
		{`true`, ErrInvalidValue},
		{`1e300`, ErrInvalidValue},
		{`-1e15`, ErrInvalidValue},
		{`{"a":1}`, ErrWrongType},
		{`[2024]`, ErrWrongType},
		{`null`, ErrWrongType},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			_, err := evalTemplate(t, "{v|yyyyMM}", `{"id":"x1","v":`+tt.value+`}`)
			var e *Error
			if !errors.As(err, &e) || !errors.Is(err, tt.kind) {
				t.Fatalf("got %v, want an *Error of kind %v", err, tt.kind)
			}
			if e.ID != "x1" || e.Field != "v" {
				t.Errorf("ID, Field = %q, %q; want x1, v", e.ID, e.Field)
			}
		})
	}
}

// TestHashBucketGolden pins hash:N. These values are part of the key format:
// if this test fails, existing migrations would put items in other buckets.
func TestHashBucketGolden(t *testing.T) {
	tests := []struct {
		text string
		n    uint64
		want uint64
	}{
		{"", 1, 0},
		{"", 1 << 32, 2216829733}, // FNV-1a 64 offset basis mod 2^32
		{"a", 16, 12},
		{"tenant-0042", 16, 2},
		{"tenant-0042", 1000, 282},
		{"order-01234567", 64, 54},
		{"München", 10, 9},
		{"Zoë Ångström", 7, 2},
		{"12345678901234567890", 100, 93},
		{"true", 2, 1},
	}
	for _, tt := range tests {
		if got := HashBucket([]byte(tt.text), tt.n); got != tt.want {
			t.Errorf("HashBucket(%q, %d) = %d, want %d", tt.text, tt.n, got, tt.want)
		}
		// The algorithm is FNV-1a 64, as the standard library computes it.
		h := fnv.New64a()
		h.Write([]byte(tt.text))
		if got := h.Sum64() % tt.n; got != tt.want {
			t.Errorf("fnv64a(%q) %% %d = %d, but the golden value is %d", tt.text, tt.n, got, tt.want)
		}
	}
}

func TestTextFunctions(t *testing.T) {
	tests := []struct {
		template, item, want string
	}{
		{"{v|lower}", `{"id":"1","v":"MiXeD Case"}`, "mixed case"},
		{"{v|upper}", `{"id":"1","v":"straße zoë"}`, "STRAßE ZOË"}, // simple case mapping: ß has no single-rune upper case
		{"{v|lower}", `{"id":"1","v":"ÅNGSTRÖM"}`, "ångström"},
		{"{v|lower}", `{"id":"1","v":1E5}`, "1e5"},
		{"{v|upper}", `{"id":"1","v":true}`, "TRUE"},
		{"{v|hash:16}", `{"id":"1","v":"tenant-0042"}`, "2"},
		{"{v|lower|hash:16}", `{"id":"1","v":"TENANT-0042"}`, "2"},
		{"{v|hash:100}", `{"id":"1","v":12345678901234567890}`, "93"},
		{"{v|yyyyMM|hash:1000}", `{"id":"1","v":"2024-03-05"}`, "88"},
		{"{v}", `{"id":"1","v":"a\"b\\c\u00e9\ud83d\ude00"}`, "a\"b\\cé😀"},
		{"{v}", `{"id":"1","v":1.0}`, "1.0"},
		{"{v}", `{"id":"1","v":-0.5e-3}`, "-0.5e-3"},
		{"{v}", `{"id":"1","v":12345678901234567890}`, "12345678901234567890"},
		{"{v}", `{"id":"1","v":false}`, "false"},
		{"{v?dflt}", `{"id":"1"}`, "dflt"},
		{"{v?dflt}", `{"id":"1","v":null}`, "dflt"},
		{"{v|upper?dflt}", `{"id":"1"}`, "dflt"}, // the default is final text, functions are not applied
		{"{v?}", `{"id":"1"}`, ""},
		{"{v?dflt}", `{"id":"1","v":""}`, ""}, // an empty string is a value, not a missing field
		{"{a.b.c}", `{"id":"1","a":{"b":{"c":"deep"}}}`, "deep"},
		{"{a.b?none}", `{"id":"1","a":"flat"}`, "none"},
		{`{"a.b"}`, `{"id":"1","a.b":"dotted name"}`, "dotted name"},
		{"{Id}-{id}", `{"id":"lower","Id":"Upper"}`, "Upper-lower"},
		{"{_ts|yyyyMM}", `{"id":"1","_ts":1709630146}`, "202403"},
		{"{_myField}", `{"id":"1","_myField":"mine"}`, "mine"},
		{"{{{v}}}", `{"id":"1","v":"x"}`, "{x}"},
		{"pre-{v}-{w}-post", `{"id":"1","v":"x","w":2}`, "pre-x-2-post"},
		{"{weird}", `{"id":"1","we\u0069rd":"escaped name in the item"}`, "escaped name in the item"},
	}
	for _, tt := range tests {
		t.Run(tt.template+" "+tt.item, func(t *testing.T) {
			got, err := evalTemplate(t, tt.template, tt.item)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
