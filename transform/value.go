package transform

import (
	"strconv"
)

// Type is the JSON type of a partition key value.
type Type uint8

const (
	// TypeUndefined is a source key whose field is absent from the item.
	// Cosmos DB keeps such items under the "undefined" key, which is not null.
	TypeUndefined Type = iota
	TypeNull
	TypeBool
	TypeNumber
	TypeString
)

var typeNames = [...]string{"undefined", "null", "bool", "number", "string"}

func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return "Type(" + strconv.Itoa(int(t)) + ")"
}

// Value is one component of a partition key. Target keys are never
// undefined; source keys are when the item lacks the field.
type Value struct {
	Type Type
	// Str is the decoded text of a string.
	Str string
	// Num is a number as float64, the type azcosmos partition keys take.
	Num float64
	// Raw is a number's JSON text exactly as the item has it (such as
	// "12345678901234567890" or "1.0"), which float64 may not hold exactly.
	Raw string
	// Bool is a bool's value.
	Bool bool
}

// StringValue returns a string key value.
func StringValue(s string) Value { return Value{Type: TypeString, Str: s} }

// Any returns the value as string, float64, bool or nil, for building an SDK
// partition key. It returns nil for both null and undefined; check Type to
// tell them apart.
func (v Value) Any() any {
	switch v.Type {
	case TypeString:
		return v.Str
	case TypeNumber:
		return v.Num
	case TypeBool:
		return v.Bool
	}
	return nil
}

// AppendJSON appends v as JSON: strings quoted, numbers in their original
// text, and undefined as {} (the way Cosmos DB writes an undefined partition
// key component).
func (v Value) AppendJSON(dst []byte) []byte {
	switch v.Type {
	case TypeString:
		return appendQuoted(dst, v.Str)
	case TypeNumber:
		if v.Raw != "" {
			return append(dst, v.Raw...)
		}
		return strconv.AppendFloat(dst, v.Num, 'g', -1, 64)
	case TypeBool:
		return strconv.AppendBool(dst, v.Bool)
	case TypeNull:
		return append(dst, "null"...)
	}
	return append(dst, "{}"...)
}

// String returns the value as JSON text.
func (v Value) String() string { return string(v.AppendJSON(nil)) }

// AppendJSONArray appends values as a JSON array, each as AppendJSON writes
// it: a partition key as rekey shows and records it, such as ["eu",42] or
// [{}] for an undefined component. migrate.Key.AppendJSON is this; it is
// here so that the transform's own output and tests share it.
func AppendJSONArray(dst []byte, vs []Value) []byte {
	dst = append(dst, '[')
	for i, v := range vs {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = v.AppendJSON(dst)
	}
	return append(dst, ']')
}

// Equal reports whether v and w are the same key value: same type and the
// same string, number (by float64, as the service hashes it) or bool.
func (v Value) Equal(w Value) bool {
	if v.Type != w.Type {
		return false
	}
	switch v.Type {
	case TypeString:
		return v.Str == w.Str
	case TypeNumber:
		return v.Num == w.Num
	case TypeBool:
		return v.Bool == w.Bool
	}
	return true
}
