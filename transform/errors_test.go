package transform

import (
	"errors"
	"strings"
	"testing"
)

// TestApplyErrors names every kind of item error with the input that causes
// it, and checks that the error carries the item id, the field and a reason.
func TestApplyErrors(t *testing.T) {
	long := strings.Repeat("x", MaxKeyBytes+1)
	tests := []struct {
		name  string
		keys  []string
		item  string
		kind  error
		id    string
		field string
	}{
		{"empty item", []string{"/a"}, ``, ErrInvalidJSON, "", ""},
		{"truncated item", []string{"/a"}, `{"id":"1","a":`, ErrInvalidJSON, "1", ""},
		{"trailing data", []string{"/a"}, `{"id":"1","a":1} x`, ErrInvalidJSON, "1", ""},
		{"bad number", []string{"/a"}, `{"id":"1","a":01}`, ErrInvalidJSON, "1", ""},
		{"invalid UTF-8", []string{"/a"}, "{\"id\":\"1\",\"a\":\"\xff\"}", ErrInvalidJSON, "1", ""},
		{"control character", []string{"/a"}, "{\"id\":\"1\",\"a\":\"\n\"}", ErrInvalidJSON, "1", ""},
		{"trailing comma", []string{"/a"}, `{"id":"1","a":1,}`, ErrInvalidJSON, "1", ""},
		{"array item", []string{"/a"}, `[{"id":"1"}]`, ErrNotObject, "", ""},
		{"string item", []string{"/a"}, `"x"`, ErrNotObject, "", ""},
		{"null item", []string{"/a"}, ` null `, ErrNotObject, "", ""},
		{"missing id", []string{"/a"}, `{"a":1}`, ErrInvalidID, "", "id"},
		{"Id is not id", []string{"/a"}, `{"Id":"1","a":1}`, ErrInvalidID, "", "id"},
		{"number id", []string{"/a"}, `{"id":1,"a":1}`, ErrInvalidID, "", "id"},
		{"null id", []string{"/a"}, `{"id":null,"a":1}`, ErrInvalidID, "", "id"},
		{"empty id", []string{"/a"}, `{"id":"","a":1}`, ErrInvalidID, "", "id"},
		{"long id", []string{"/a"}, `{"id":"` + strings.Repeat("é", 512) + `","a":1}`, ErrInvalidID, "", "id"},
		{"two ids", []string{"/a"}, `{"id":"1","a":1,"id":"2"}`, ErrDuplicateField, "", "id"},
		{"missing natural key", []string{"/customerId"}, `{"id":"1","customerid":"c"}`, ErrMissingField, "1", "/customerId"},
		{"missing nested natural key", []string{"/a/b"}, `{"id":"1","a":{"c":1}}`, ErrMissingField, "1", "/a/b"},
		{"natural key under a non-object", []string{"/a/b"}, `{"id":"1","a":[1]}`, ErrMissingField, "1", "/a/b"},
		{"object as key", []string{"/a"}, `{"id":"1","a":{"b":1}}`, ErrWrongType, "1", "/a"},
		{"array as key", []string{"/a"}, `{"id":"1","a":[1]}`, ErrWrongType, "1", "/a"},
		{"natural key too large", []string{"/a"}, `{"id":"1","a":"` + long + `"}`, ErrKeyTooLarge, "1", "/a"},
		{"number out of range", []string{"/a"}, `{"id":"1","a":1e999}`, ErrInvalidValue, "1", "/a"},
		{"duplicate natural key", []string{"/a"}, `{"id":"1","a":1,"a":2}`, ErrDuplicateField, "1", "/a"},
		{"duplicate nested key", []string{"/a/b"}, `{"id":"1","a":{"b":1,"b":1}}`, ErrDuplicateField, "1", "/a/b"},
		{"missing template field", []string{"/pk={region}"}, `{"id":"1"}`, ErrMissingField, "1", "region"},
		{"missing nested template field", []string{"/pk={address.city}"}, `{"id":"1","address":{}}`, ErrMissingField, "1", "address.city"},
		{"null template field", []string{"/pk={region}"}, `{"id":"1","region":null}`, ErrWrongType, "1", "region"},
		{"object template field", []string{"/pk={region}"}, `{"id":"1","region":{}}`, ErrWrongType, "1", "region"},
		{"array template field", []string{"/pk={region?x}"}, `{"id":"1","region":["eu"]}`, ErrWrongType, "1", "region"},
		{"synthetic key too large", []string{"/pk={a}{a}"}, `{"id":"1","a":"` + long[:MaxKeyBytes/2+1] + `"}`, ErrKeyTooLarge, "1", "/pk"},
		{"synthetic key conflicts", []string{"/pk={a}"}, `{"id":"1","a":"x","pk":"y"}`, ErrKeyConflict, "1", "/pk"},
		{"synthetic key conflicts with a number", []string{"/pk={a}"}, `{"id":"1","a":1,"pk":1}`, ErrKeyConflict, "1", "/pk"},
		{"synthetic key conflicts with an object", []string{"/pk={a}"}, `{"id":"1","a":"x","pk":{}}`, ErrKeyConflict, "1", "/pk"},
		{"non-object on the target path", []string{"/m/pk={a}"}, `{"id":"1","a":"x","m":"s"}`, ErrKeyConflict, "1", "/m/pk"},
		{"array on the target path", []string{"/m/n/pk={a}"}, `{"id":"1","a":"x","m":{"n":[]}}`, ErrKeyConflict, "1", "/m/n/pk"},
		{"nested conflict", []string{"/m/pk={a}"}, `{"id":"1","a":"x","m":{"pk":"z"}}`, ErrKeyConflict, "1", "/m/pk"},
		{"duplicate target", []string{"/pk={a}"}, `{"id":"1","a":"x","pk":"x","pk":"x"}`, ErrDuplicateField, "1", "/pk"},
		{"duplicate intermediate", []string{"/m/pk={a}"}, `{"id":"1","a":"x","m":{},"m":{}}`, ErrDuplicateField, "1", "/m/pk"},
		{"bad date", []string{"/pk={d|yyyy}"}, `{"id":"1","d":"05/03/2024"}`, ErrInvalidValue, "1", "d"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := mustTransformer(t, tt.keys)
			_, err := tr.Apply([]byte(tt.item))
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Apply = %v, want an *Error", err)
			}
			if !errors.Is(err, tt.kind) {
				t.Errorf("kind = %v, want %v (%v)", e.Kind, tt.kind, err)
			}
			if e.ID != tt.id || e.Field != tt.field {
				t.Errorf("ID, Field = %q, %q; want %q, %q (%v)", e.ID, e.Field, tt.id, tt.field, err)
			}
			if e.Reason == "" {
				t.Error("no reason")
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.kind.Error()) || (tt.field != "" && !strings.Contains(msg, tt.field)) {
				t.Errorf("message %q does not name the kind and field", msg)
			}
		})
	}
}

func TestErrorMessage(t *testing.T) {
	tr := mustTransformer(t, []string{"/pk={tenantId}-{createdAt|yyyyMM}"})
	_, err := tr.Apply([]byte(`{"id":"order-1","createdAt":"2024-03-05"}`))
	want := `item "order-1" field tenantId: missing-field: the item has no such field (in key /pk; give a default with {tenantId?value})`
	if err == nil || err.Error() != want {
		t.Errorf("error =\n%v\nwant\n%s", err, want)
	}
	_, err = tr.Apply([]byte(`{"Id":"order-1","tenantId":"t","createdAt":"2024-03-05"}`))
	if want := `item (no id) field id: invalid-id: the item has no id (it has "Id"; names are case-sensitive)`; err == nil || err.Error() != want {
		t.Errorf("error =\n%v\nwant\n%s", err, want)
	}
	_, err = tr.Apply([]byte(`{"id":"order-1","TenantID":"t","createdAt":"2024-03-05"}`))
	if err == nil || !strings.Contains(err.Error(), `(it has "TenantID"; names are case-sensitive)`) {
		t.Errorf("error %v gives no hint about the case", err)
	}
	_, err = tr.Apply([]byte(`[]`))
	if want := `item (no id): not-object: the item is an array, not an object`; err == nil || err.Error() != want {
		t.Errorf("error =\n%v\nwant\n%s", err, want)
	}
}

func TestSourceKeyErrors(t *testing.T) {
	tr := mustTransformer(t, []string{"/a"}, "/region")
	for _, item := range []string{`{"id":"1","a":1,"region":{"x":1}}`, `{"id":"1","a":1,"region":[]}`} {
		_, err := tr.Apply([]byte(item))
		var e *Error
		if !errors.As(err, &e) || !errors.Is(err, ErrWrongType) || e.Field != "/region" {
			t.Errorf("%s: got %v, want a wrong-type error on /region", item, err)
		}
	}
	// A source key may be longer than a target key may: it is only reported.
	long := strings.Repeat("x", MaxKeyBytes+1)
	r, err := tr.Apply([]byte(`{"id":"1","a":1,"region":"` + long + `"}`))
	if err != nil || r.SourceKey[0].Str != long {
		t.Errorf("long source key: %v", err)
	}
}
