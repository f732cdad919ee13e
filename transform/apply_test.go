package transform

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"
)

func mustTransformer(t testing.TB, keys []string, source ...string) *Transformer {
	t.Helper()
	spec, err := ParseSpec(keys)
	if err != nil {
		t.Fatalf("ParseSpec(%q): %v", keys, err)
	}
	tr, err := New(spec, source)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return tr
}

// keyJSON renders values as a JSON array, undefined as {}.
func keyJSON(vs []Value) string { return string(AppendJSONArray(nil, vs)) }

func TestApply(t *testing.T) {
	tests := []struct {
		name   string
		keys   []string
		source []string
		item   string
		key    string // JSON array of the target key
		srcKey string // JSON array of the source key
		out    string // target item, byte for byte
		once   bool   // the key reads a field the target item lacks, so re-transforming it fails
	}{
		{
			name: "natural string key, system properties stripped, user _field kept",
			keys: []string{"/customerId"}, source: []string{"/region"},
			item:   `{"id":"1","customerId":"c1","region":"eu","_myField":1,"_rid":"r","_self":"s","_etag":"\"e\"","_attachments":"a/","_ts":1,"_lsn":9}`,
			key:    `["c1"]`,
			srcKey: `["eu"]`,
			out:    `{"id":"1","customerId":"c1","region":"eu","_myField":1}`,
		},
		{
			name: "natural keys keep their JSON type",
			keys: []string{"/n", "/b", "/z"},
			item: `{"id":"1","n":12345678901234567890,"b":false,"z":null}`,
			key:  `[12345678901234567890,false,null]`,
			out:  `{"id":"1","n":12345678901234567890,"b":false,"z":null}`,
		},
		{
			name: "numbers, strings and spacing inside members are copied exactly",
			keys: []string{"/pk={a}"},
			item: ` { "id" : "1" , "a":"x", "f": 1.0, "e": -2.5E+10, "big": 123456789012345678901234567890, "s": "\u00e9\n\"", "o": { "k" : [ 1 , 2 ] } } `,
			key:  `["x"]`,
			out:  `{"id" : "1" , "a":"x", "f": 1.0, "e": -2.5E+10, "big": 123456789012345678901234567890, "s": "\u00e9\n\"", "o": { "k" : [ 1 , 2 ] },"pk":"x"}`,
		},
		{
			name: "system properties in the middle split the copy",
			keys: []string{"/pk={a}"},
			item: `{"_rid":"r","id":"1","_ts":5,"a":"x","_etag":"e","b":2,"_self":"s"}`,
			key:  `["x"]`,
			out:  `{"id":"1","a":"x","b":2,"pk":"x"}`,
		},
		{
			name: "nested system property names are user data",
			keys: []string{"/a/_ts"},
			item: `{"id":"1","a":{"_ts":7,"_rid":"keep"}}`,
			key:  `[7]`,
			out:  `{"id":"1","a":{"_ts":7,"_rid":"keep"}}`,
		},
		{
			name: "escaped system property name is still stripped",
			keys: []string{"/a"},
			item: `{"id":"1","a":1,"_r\u0069d":"x"}`,
			key:  `[1]`,
			out:  `{"id":"1","a":1}`,
		},
		{
			name: "synthetic key from _ts, which the target does not keep",
			keys: []string{"/tenantId", "/month={_ts|yyyyMM}"},
			item: `{"id":"1","tenantId":"t","_ts":1709630146}`,
			key:  `["t","202403"]`,
			out:  `{"id":"1","tenantId":"t","month":"202403"}`,
			once: true,
		},
		{
			name: "nested target created with its intermediate object",
			keys: []string{"/meta/pk={a}"},
			item: `{"id":"1","a":"x"}`,
			key:  `["x"]`,
			out:  `{"id":"1","a":"x","meta":{"pk":"x"}}`,
		},
		{
			name: "nested target written into an existing object",
			keys: []string{"/meta/pk={a}"},
			item: `{"id":"1","meta":{"v":1 },"a":"x","_ts":1}`,
			key:  `["x"]`,
			out:  `{"id":"1","meta":{"v":1 ,"pk":"x"},"a":"x"}`,
		},
		{
			name: "nested target written into an existing empty object",
			keys: []string{"/meta/deep/pk={a}"},
			item: `{"id":"1","meta":{ },"a":"x"}`,
			key:  `["x"]`,
			out:  `{"id":"1","meta":{ "deep":{"pk":"x"}},"a":"x"}`,
		},
		{
			name: "two synthetic keys share a new intermediate object",
			keys: []string{"/m/a={x}", "/m/b={y}", "/top={x}{y}"},
			item: `{"id":"1","x":"1","y":"2"}`,
			key:  `["1","2","12"]`,
			out:  `{"id":"1","x":"1","y":"2","m":{"a":"1","b":"2"},"top":"12"}`,
		},
		{
			name: "synthetic keys into two existing objects",
			keys: []string{"/p/a={x}", "/q/b={x}"},
			item: `{"id":"1","q":{},"x":"v","p":{"z":0}}`,
			key:  `["v","v"]`,
			out:  `{"id":"1","q":{"b":"v"},"x":"v","p":{"z":0,"a":"v"}}`,
		},
		{
			name: "the key property already holds the same value: the item is unchanged",
			keys: []string{"/pk={a|upper}"},
			item: `{"id":"1","a":"x","pk":"X"}`,
			key:  `["X"]`,
			out:  `{"id":"1","a":"x","pk":"X"}`,
		},
		{
			name: "same value written with escapes counts as the same",
			keys: []string{"/pk={a}"},
			item: `{"id":"1","a":"é","pk":"\u00e9"}`,
			key:  `["é"]`,
			out:  `{"id":"1","a":"é","pk":"\u00e9"}`,
		},
		{
			name: "synthetic key value with characters to escape",
			keys: []string{"/pk={a}"},
			item: `{"id":"1","a":"q\"b\\s\t\u0001\u2028"}`,
			key:  `["q\"b\\s\t\u0001` + "\u2028" + `"]`,
			out:  `{"id":"1","a":"q\"b\\s\t\u0001\u2028","pk":"q\"b\\s\t\u0001` + "\u2028" + `"}`,
		},
		{
			name: "only system properties besides the id",
			keys: []string{"/pk={id}"},
			item: `{"_rid":"r","id":"1","_ts":3}`,
			key:  `["1"]`,
			out:  `{"id":"1","pk":"1"}`,
		},
		{
			name: "Id and id are different fields",
			keys: []string{"/Id"},
			item: `{"id":"lower","Id":"Upper"}`,
			key:  `["Upper"]`,
			out:  `{"id":"lower","Id":"Upper"}`,
		},
		{
			name: "escaped member names match",
			keys: []string{"/tenantId"}, source: []string{"/region"},
			item:   `{"\u0069d":"1","tenant\u0049d":"t","regio\u006e":"eu"}`,
			key:    `["t"]`,
			srcKey: `["eu"]`,
			out:    `{"\u0069d":"1","tenant\u0049d":"t","regio\u006e":"eu"}`,
		},
		{
			name: "quoted path name",
			keys: []string{`/"zip code"`},
			item: `{"id":"1","zip code":"80331"}`,
			key:  `["80331"]`,
			out:  `{"id":"1","zip code":"80331"}`,
		},
		{
			name: "missing source key is undefined, null source key is null",
			keys: []string{"/a"}, source: []string{"/region", "/z", "/deep/x"},
			item:   `{"id":"1","a":1,"z":null,"deep":"flat"}`,
			key:    `[1]`,
			srcKey: `[{},null,{}]`,
			out:    `{"id":"1","a":1,"z":null,"deep":"flat"}`,
		},
		{
			name: "hierarchical source key",
			keys: []string{"/pk={tenantId}-{userId}"}, source: []string{"/tenantId", "/userId", "/n"},
			item:   `{"id":"1","tenantId":"t","userId":"u","n":2.50}`,
			key:    `["t-u"]`,
			srcKey: `["t","u",2.50]`,
			out:    `{"id":"1","tenantId":"t","userId":"u","n":2.50,"pk":"t-u"}`,
		},
		{
			name: "key of exactly the maximum size",
			keys: []string{"/pk={a}"},
			item: `{"id":"1","a":"` + strings.Repeat("x", MaxKeyBytes) + `"}`,
			key:  `["` + strings.Repeat("x", MaxKeyBytes) + `"]`,
			out:  `{"id":"1","a":"` + strings.Repeat("x", MaxKeyBytes) + `","pk":"` + strings.Repeat("x", MaxKeyBytes) + `"}`,
		},
		{
			name: "id of exactly the maximum size",
			keys: []string{"/a"},
			item: `{"id":"` + strings.Repeat("é", MaxIDBytes/2) + `x","a":1}`,
			key:  `[1]`,
			out:  `{"id":"` + strings.Repeat("é", MaxIDBytes/2) + `x","a":1}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := mustTransformer(t, tt.keys, tt.source...)
			r, err := tr.Apply([]byte(tt.item))
			if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			if got := string(r.Item); got != tt.out {
				t.Errorf("item\n got %s\nwant %s", got, tt.out)
			}
			if !json.Valid(r.Item) {
				t.Errorf("item is not valid JSON: %s", r.Item)
			}
			if got := keyJSON(r.Key); got != tt.key {
				t.Errorf("key = %s, want %s", got, tt.key)
			}
			wantSrc := tt.srcKey
			if wantSrc == "" {
				wantSrc = "[]"
			}
			if got := keyJSON(r.SourceKey); got != wantSrc {
				t.Errorf("source key = %s, want %s", got, wantSrc)
			}
			if r.Size() != len(r.Item) {
				t.Errorf("Size() = %d, want %d", r.Size(), len(r.Item))
			}
			if tt.once {
				return
			}
			// Transforming the target item again changes nothing.
			again, err := tr.Apply(r.Item)
			if err != nil {
				t.Fatalf("re-transform: %v", err)
			}
			if string(again.Item) != string(r.Item) || keyJSON(again.Key) != keyJSON(r.Key) {
				t.Errorf("re-transform changed the item or key:\n%s %s\n%s %s", r.Item, keyJSON(r.Key), again.Item, keyJSON(again.Key))
			}
		})
	}
}

func TestApplyValues(t *testing.T) {
	tr := mustTransformer(t, []string{"/s", "/n", "/b"}, "/x")
	r, err := tr.Apply([]byte(`{"id":"i-1","s":"a\u00e9","n":1.5e3,"b":true}`))
	if err != nil {
		t.Fatal(err)
	}
	if r.ID != "i-1" {
		t.Errorf("ID = %q", r.ID)
	}
	want := []Value{{Type: TypeString, Str: "aé"}, {Type: TypeNumber, Num: 1500, Raw: "1.5e3"}, {Type: TypeBool, Bool: true}}
	for i, w := range want {
		if r.Key[i] != w {
			t.Errorf("Key[%d] = %+v, want %+v", i, r.Key[i], w)
		}
	}
	if r.Key[0].Any() != "aé" || r.Key[1].Any() != 1500.0 || r.Key[2].Any() != true {
		t.Errorf("Any() = %v %v %v", r.Key[0].Any(), r.Key[1].Any(), r.Key[2].Any())
	}
	if r.SourceKey[0].Type != TypeUndefined || r.SourceKey[0].Any() != nil || r.SourceKey[0].Type.String() != "undefined" {
		t.Errorf("SourceKey = %+v", r.SourceKey)
	}
	if !r.Key[1].Equal(Value{Type: TypeNumber, Num: 1500, Raw: "1500"}) || r.Key[1].Equal(StringValue("1500")) {
		t.Error("Equal compares type and value, not the text")
	}
}

// TestApplyToReuse checks that ApplyTo reuses the result's buffers without
// corrupting strings handed out before.
func TestApplyToReuse(t *testing.T) {
	tr := mustTransformer(t, []string{"/a", "/pk={b}"}, "/c")
	var r Result
	if err := tr.ApplyTo(&r, []byte(`{"id":"first","a":"A1","b":"B1","c":"C1"}`)); err != nil {
		t.Fatal(err)
	}
	id, k0, k1, s0 := r.ID, r.Key[0].Str, r.Key[1].Str, r.SourceKey[0].Str
	if err := tr.ApplyTo(&r, []byte(`{"id":"second","a":"A2","b":"B2","c":"C2"}`)); err != nil {
		t.Fatal(err)
	}
	if id != "first" || k0 != "A1" || k1 != "B1" || s0 != "C1" {
		t.Errorf("strings of the first result changed: %q %q %q %q", id, k0, k1, s0)
	}
	if r.ID != "second" || string(r.Item) != `{"id":"second","a":"A2","b":"B2","c":"C2","pk":"B2"}` {
		t.Errorf("second result = %q %s", r.ID, r.Item)
	}
	if err := tr.ApplyTo(&r, []byte(`{"id":"third"}`)); err == nil || r.ID != "second" {
		t.Errorf("a failed ApplyTo = %v and changed the result to %q", err, r.ID)
	}
	item := []byte(`{"id":"second","a":"A2","b":"B2","c":"C2"}`)
	allocs := testing.AllocsPerRun(100, func() {
		_ = tr.ApplyTo(&r, item)
	})
	if allocs > 1 && !raceEnabled {
		t.Errorf("ApplyTo allocates %v times per item, want at most 1", allocs)
	}
}

func TestApplyConcurrent(t *testing.T) {
	tr := mustTransformer(t, []string{"/tenantId", "/pk={customer.address.city|lower}-{createdAt|yyyyMM}-{id|hash:16}"}, "/region")
	item := benchItem(4 << 10)
	want, err := tr.Apply(item)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Go(func() {
			var r Result
			for range 200 {
				if err := tr.ApplyTo(&r, item); err != nil {
					t.Error(err)
					return
				}
				if string(r.Item) != string(want.Item) || keyJSON(r.Key) != keyJSON(want.Key) {
					t.Error("concurrent Apply gave a different result")
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestSourceKeyOf(t *testing.T) {
	spec, err := ParseSpec([]string{"/pk={tenantId}-{createdAt|yyyyMM}"})
	if err != nil {
		t.Fatal(err)
	}
	tr, err := New(spec, []string{"/region", "/shard"})
	if err != nil {
		t.Fatal(err)
	}
	item := []byte(`{"id":"a\u00e9","region":"eu","shard":7,"tenantId":"t"}`)
	id, key, err := tr.SourceKeyOf(item)
	if err != nil {
		t.Fatal(err)
	}
	if id != "aé" || len(key) != 2 || key[0].Str != "eu" || key[1].Num != 7 || key[1].Raw != "7" {
		t.Fatalf("SourceKeyOf = %q %v", id, key)
	}
	// The target key is not evaluated: a missing createdAt is no error here.
	res, err := tr.Apply(append([]byte(nil), item...))
	if err == nil {
		t.Fatalf("Apply should fail without createdAt, got %s", res.Item)
	}
	if _, key, err := tr.SourceKeyOf([]byte(`{"id":"b"}`)); err != nil || key[0].Type != TypeUndefined {
		t.Fatalf("absent source key: %v %v", key, err)
	}
	if _, _, err := tr.SourceKeyOf([]byte(`[1]`)); err == nil {
		t.Fatal("a non-object should fail")
	}
}
