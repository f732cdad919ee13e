package query

import (
	"math"
)

// Kind is the JSON type of a Value, plus Undefined, the query language's
// "no value" (a missing property, a failed operator, a function given the
// wrong type). The declaration order is the service's cross-type sort order
// (see Compare).
type Kind uint8

// Kinds, in the order ORDER BY sorts them.
const (
	KindUndefined Kind = iota
	KindNull
	KindBool
	KindNumber
	KindString
	KindArray
	KindObject
)

var kindNames = [...]string{"undefined", "null", "boolean", "number", "string", "array", "object"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "invalid"
}

// Value is an immutable JSON value or Undefined. The zero Value is Undefined.
//
// Arrays and objects keep their elements and members in document order;
// an object read from JSON is not decoded until it is inspected: property
// access scans the retained JSON text, so evaluating c.pk over a stored
// document neither allocates nor decodes the rest of it. Values are safe for
// concurrent use; copying one is cheap.
type Value struct {
	kind Kind
	num  float64 // KindNumber; KindBool stores 1 or 0
	str  string  // KindString
	raw  []byte  // KindArray, KindObject: JSON text, when list is nil
	list *list   // KindArray, KindObject: decoded form
}

// list holds a decoded array (keys nil) or object (keys parallel to items).
type list struct {
	keys  []string
	items []Value
}

// Member is one property of an object.
type Member struct {
	Key   string
	Value Value
}

// Undefined returns the undefined value (the zero Value).
func Undefined() Value { return Value{} }

// Null returns JSON null.
func Null() Value { return Value{kind: KindNull} }

// BoolValue returns a JSON boolean.
func BoolValue(b bool) Value {
	if b {
		return Value{kind: KindBool, num: 1}
	}
	return Value{kind: KindBool}
}

// NumberValue returns a JSON number. NaN and infinities, which JSON cannot
// carry, yield Undefined, as arithmetic that overflows does in a query.
func NumberValue(f float64) Value {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return Value{}
	}
	return Value{kind: KindNumber, num: f}
}

// StringValue returns a JSON string.
func StringValue(s string) Value { return Value{kind: KindString, str: s} }

// ArrayValue returns an array of elems; undefined elements are dropped, as
// the service drops them from array literals.
func ArrayValue(elems ...Value) Value {
	items := make([]Value, 0, len(elems))
	for _, e := range elems {
		if e.kind != KindUndefined {
			items = append(items, e)
		}
	}
	return Value{kind: KindArray, list: &list{items: items}}
}

// ObjectValue returns an object with members in the given order; members
// whose value is undefined are dropped.
func ObjectValue(members ...Member) Value {
	l := &list{keys: make([]string, 0, len(members)), items: make([]Value, 0, len(members))}
	for _, m := range members {
		if m.Value.kind != KindUndefined {
			l.keys = append(l.keys, m.Key)
			l.items = append(l.items, m.Value)
		}
	}
	return Value{kind: KindObject, list: l}
}

// Kind reports the value's type.
func (v Value) Kind() Kind { return v.kind }

// IsDefined reports whether v is not Undefined.
func (v Value) IsDefined() bool { return v.kind != KindUndefined }

// AsBool returns the boolean and whether v is one.
func (v Value) AsBool() (bool, bool) { return v.num != 0, v.kind == KindBool }

// AsNumber returns the number and whether v is one.
func (v Value) AsNumber() (float64, bool) { return v.num, v.kind == KindNumber }

// AsString returns the string and whether v is one.
func (v Value) AsString() (string, bool) { return v.str, v.kind == KindString }

// isTrue reports whether v is exactly the boolean true, the only value a
// WHERE clause keeps.
func (v Value) isTrue() bool { return v.kind == KindBool && v.num != 0 }

// decoded returns the decoded elements of an array or object.
func (v Value) decoded() *list {
	if v.list != nil {
		return v.list
	}
	if v.kind != KindArray && v.kind != KindObject {
		return &list{}
	}
	return decodeComposite(v.raw, v.kind)
}

// Len returns the number of elements of an array or members of an object,
// and 0 for other kinds.
func (v Value) Len() int {
	switch v.kind {
	case KindArray, KindObject:
		if v.list != nil {
			return len(v.list.items)
		}
		return rawLen(v.raw)
	}
	return 0
}

// Index returns element i of an array, or Undefined when v is not an array
// or i is out of range.
func (v Value) Index(i int) Value {
	if v.kind != KindArray || i < 0 {
		return Value{}
	}
	if v.list != nil {
		if i >= len(v.list.items) {
			return Value{}
		}
		return v.list.items[i]
	}
	return rawIndex(v.raw, i)
}

// Get returns the member named key of an object, or Undefined when v is not
// an object or has no such member. When a member name repeats, the first
// occurrence wins.
func (v Value) Get(key string) Value {
	if v.kind != KindObject {
		return Value{}
	}
	if v.list != nil {
		for i, k := range v.list.keys {
			if k == key {
				return v.list.items[i]
			}
		}
		return Value{}
	}
	return rawGet(v.raw, key)
}

// Elems returns the elements of an array (nil for other kinds). The slice
// must not be modified.
func (v Value) Elems() []Value {
	if v.kind != KindArray {
		return nil
	}
	return v.decoded().items
}

// Members returns the members of an object in document order (nil for other
// kinds).
func (v Value) Members() []Member {
	if v.kind != KindObject {
		return nil
	}
	l := v.decoded()
	out := make([]Member, len(l.items))
	for i := range l.items {
		out[i] = Member{Key: l.keys[i], Value: l.items[i]}
	}
	return out
}

// RawJSON returns the JSON text an array or object was read from by Decode
// or Raw, and true, when v is such a value (a stored document returned by
// SELECT *, a sub-object returned by SELECT VALUE c.address). The text is
// as given, not normalized: the emulator can write it directly when it
// stores documents in the service's compact form, and use AppendJSON
// otherwise. The slice must not be modified.
func (v Value) RawJSON() ([]byte, bool) {
	if (v.kind == KindArray || v.kind == KindObject) && v.list == nil {
		return v.raw, true
	}
	return nil, false
}

// Interface converts v to the types encoding/json produces: nil, bool,
// float64, string, []any and map[string]any. Undefined converts to nil too;
// check Kind first when the difference matters.
func (v Value) Interface() any {
	switch v.kind {
	case KindBool:
		return v.num != 0
	case KindNumber:
		return v.num
	case KindString:
		return v.str
	case KindArray:
		items := v.decoded().items
		out := make([]any, len(items))
		for i, e := range items {
			out[i] = e.Interface()
		}
		return out
	case KindObject:
		l := v.decoded()
		out := make(map[string]any, len(l.items))
		for i, e := range l.items {
			if _, dup := out[l.keys[i]]; !dup {
				out[l.keys[i]] = e.Interface()
			}
		}
		return out
	}
	return nil
}

// String returns v as compact JSON, or "undefined".
func (v Value) String() string {
	if v.kind == KindUndefined {
		return "undefined"
	}
	return string(v.AppendJSON(nil))
}
