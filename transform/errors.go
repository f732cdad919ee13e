package transform

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Kinds of item errors. Every error Apply returns is an *Error whose Kind is
// one of these, so callers decide with errors.Is. The text of each kind is a
// stable code, safe to store in dead-letter records and to match in scripts.
var (
	// ErrInvalidJSON: the item is not well-formed JSON (or not UTF-8).
	ErrInvalidJSON = errors.New("invalid-json")
	// ErrNotObject: the item is well-formed JSON but not an object.
	ErrNotObject = errors.New("not-object")
	// ErrInvalidID: the id is missing, not a string, empty or longer than
	// MaxIDBytes.
	ErrInvalidID = errors.New("invalid-id")
	// ErrMissingField: a field a key needs is absent and has no default.
	ErrMissingField = errors.New("missing-field")
	// ErrWrongType: a field a key needs is an object or an array, or is null
	// where a template needs text and no default is given.
	ErrWrongType = errors.New("wrong-type")
	// ErrInvalidValue: a field has the right type but a function cannot take
	// its value (a date that is not ISO-8601, an epoch out of range, a number
	// out of float64 range).
	ErrInvalidValue = errors.New("invalid-value")
	// ErrKeyConflict: the synthetic key property already exists in the item
	// with a different value, or a non-object is in the way of its path.
	ErrKeyConflict = errors.New("key-conflict")
	// ErrKeyTooLarge: a key value is longer than MaxKeyBytes.
	ErrKeyTooLarge = errors.New("key-too-large")
	// ErrDuplicateField: a field the transformer reads or writes appears twice
	// in the same object, so which one counts is ambiguous.
	ErrDuplicateField = errors.New("duplicate-field")
)

// Error is an item that cannot be transformed. The pipeline dead-letters it
// with these fields; nothing about it is retried, because the same bytes give
// the same error every time.
type Error struct {
	ID     string // the item's id; empty when the id itself is the problem or was not reached
	Field  string // the field as the spec names it: "/tenantId", "address.city", "id"; empty for whole-item errors
	Reason string // what is wrong, for people
	Kind   error  // one of the Err* kinds above
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("item ")
	if e.ID != "" {
		b.WriteString(strconv.Quote(e.ID))
	} else {
		b.WriteString("(no id)")
	}
	if e.Field != "" {
		b.WriteString(" field ")
		b.WriteString(e.Field)
	}
	b.WriteString(": ")
	b.WriteString(e.Kind.Error())
	if e.Reason != "" {
		b.WriteString(": ")
		b.WriteString(e.Reason)
	}
	return b.String()
}

// Unwrap returns the kind, so errors.Is(err, ErrMissingField) works.
func (e *Error) Unwrap() error { return e.Kind }

// SpecError is a --key (or source key path) that does not parse or that
// cannot be used as a partition key. Column points at the offending character.
type SpecError struct {
	Index    int    // 0-based position of the spec in the list given to ParseSpec or New
	Spec     string // the spec as given
	Column   int    // 1-based, counted in characters (runes) of Spec; 0 when the whole list is wrong
	Expected string // what the parser expected or why the spec is refused
	What     string // "key spec" or "source key path"
}

func (e *SpecError) Error() string {
	what := e.What
	if what == "" {
		what = "key spec"
	}
	if e.Column == 0 {
		return fmt.Sprintf("%s %d %q: %s", what, e.Index+1, e.Spec, e.Expected)
	}
	return fmt.Sprintf("%s %d %q: column %d: %s", what, e.Index+1, e.Spec, e.Column, e.Expected)
}

// Pointer returns the spec and a caret under the offending column, for
// printing below the error on a terminal. It is empty when Column is 0.
func (e *SpecError) Pointer() string {
	if e.Column == 0 {
		return ""
	}
	return "  " + e.Spec + "\n  " + strings.Repeat(" ", e.Column-1) + "^"
}

// column converts a byte offset in s to a 1-based rune column.
func column(s string, off int) int {
	if off > len(s) {
		off = len(s)
	}
	return utf8.RuneCountInString(s[:off]) + 1
}
