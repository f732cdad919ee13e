package query

import (
	"strings"
	"unicode"
	"unicode/utf16"
)

// String positions and lengths count UTF-16 code units, as the service (and
// its .NET reference evaluator) does; for ASCII text they are bytes.

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func toUnits(s string) []uint16 { return utf16.Encode([]rune(s)) }

func fromUnits(u []uint16) string { return string(utf16.Decode(u)) }

func unitLen(s string) int {
	if isASCII(s) {
		return len(s)
	}
	return len(toUnits(s))
}

// substring returns length code units from start, clamped to the string.
func substring(s string, start, length int64) string {
	n := int64(unitLen(s))
	if start < 0 || start >= n || length <= 0 {
		return ""
	}
	end := min(start+length, n)
	if isASCII(s) {
		return s[start:end]
	}
	return fromUnits(toUnits(s)[start:end])
}

// stringArgs returns the arguments as strings, or false if one is not.
func stringArgs(a []Value) ([]string, bool) {
	out := make([]string, len(a))
	for i, v := range a {
		s, ok := v.AsString()
		if !ok {
			return nil, false
		}
		out[i] = s
	}
	return out, true
}

// ignoreCaseArg reads the optional boolean third argument of CONTAINS,
// STARTSWITH, ENDSWITH and STRINGEQUALS.
func ignoreCaseArg(a []Value) (bool, bool) {
	if len(a) < 3 {
		return false, true
	}
	return a[2].AsBool()
}

// stringPredicate registers f(s1, s2 [, ignoreCase]) -> bool.
func stringPredicate(name string, f func(a, b string) bool) {
	register(name, 2, 3, false, func(a []Value) Value {
		s, ok := stringArgs(a[:2])
		ic, ok2 := ignoreCaseArg(a)
		if !ok || !ok2 {
			return Value{}
		}
		if ic {
			s[0], s[1] = strings.ToLower(s[0]), strings.ToLower(s[1])
		}
		return BoolValue(f(s[0], s[1]))
	})
}

// stringFunc registers a function of one string.
func stringFunc(name string, f func(string) Value) {
	register(name, 1, 1, false, func(a []Value) Value {
		s, ok := a[0].AsString()
		if !ok {
			return Value{}
		}
		return f(s)
	})
}

// trimFunc registers LTRIM, RTRIM or TRIM: whitespace, or the characters of
// the optional second argument.
func trimFunc(name string, trim func(string, func(rune) bool) string) {
	register(name, 1, 2, false, func(a []Value) Value {
		s, ok := stringArgs(a)
		if !ok {
			return Value{}
		}
		pred := unicode.IsSpace
		if len(s) == 2 {
			set := s[1]
			pred = func(r rune) bool { return strings.ContainsRune(set, r) }
		}
		return StringValue(trim(s[0], pred))
	})
}

func registerStrings() {
	register("CONCAT", 2, -1, false, func(a []Value) Value {
		s, ok := stringArgs(a)
		if !ok {
			return Value{}
		}
		return StringValue(strings.Join(s, ""))
	})
	stringFunc("LENGTH", func(s string) Value { return NumberValue(float64(unitLen(s))) })
	stringFunc("LOWER", func(s string) Value { return StringValue(strings.ToLower(s)) })
	stringFunc("UPPER", func(s string) Value { return StringValue(strings.ToUpper(s)) })
	// REVERSE reverses characters (code points), keeping surrogate pairs
	// whole.
	stringFunc("REVERSE", func(s string) Value {
		r := []rune(s)
		for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
			r[i], r[j] = r[j], r[i]
		}
		return StringValue(string(r))
	})
	trimFunc("LTRIM", strings.TrimLeftFunc)
	trimFunc("RTRIM", strings.TrimRightFunc)
	trimFunc("TRIM", strings.TrimFunc)
	stringPredicate("CONTAINS", strings.Contains)
	stringPredicate("STARTSWITH", strings.HasPrefix)
	stringPredicate("ENDSWITH", strings.HasSuffix)
	stringPredicate("STRINGEQUALS", func(a, b string) bool { return a == b })

	register("SUBSTRING", 3, 3, false, func(a []Value) Value {
		s, ok := a[0].AsString()
		start, ok2 := intArg(a[1])
		length, ok3 := intArg(a[2])
		if !ok || !ok2 || !ok3 {
			return Value{}
		}
		return StringValue(substring(s, start, length))
	})
	register("LEFT", 2, 2, false, func(a []Value) Value {
		s, ok := a[0].AsString()
		n, ok2 := intArg(a[1])
		if !ok || !ok2 {
			return Value{}
		}
		return StringValue(substring(s, 0, n))
	})
	register("RIGHT", 2, 2, false, func(a []Value) Value {
		s, ok := a[0].AsString()
		n, ok2 := intArg(a[1])
		if !ok || !ok2 {
			return Value{}
		}
		total := int64(unitLen(s))
		return StringValue(substring(s, max(total-n, 0), total))
	})
	register("INDEX_OF", 2, 3, false, func(a []Value) Value {
		s, ok := stringArgs(a[:2])
		if !ok {
			return Value{}
		}
		var from int64
		if len(a) == 3 {
			if from, ok = intArg(a[2]); !ok {
				return Value{}
			}
		}
		hay, needle := toUnits(s[0]), toUnits(s[1])
		if from < 0 || from > int64(len(hay)) {
			return NumberValue(-1)
		}
		for i := int(from); i+len(needle) <= len(hay); i++ {
			if unitsEqual(hay[i:i+len(needle)], needle) {
				return NumberValue(float64(i))
			}
		}
		return NumberValue(-1)
	})
	register("REPLACE", 3, 3, false, func(a []Value) Value {
		s, ok := stringArgs(a)
		if !ok || s[1] == "" {
			return Value{}
		}
		return StringValue(strings.ReplaceAll(s[0], s[1], s[2]))
	})
	register("REPLICATE", 2, 2, false, func(a []Value) Value {
		s, ok := a[0].AsString()
		n, ok2 := intArg(a[1])
		// The service caps the result at 10,000 characters.
		if !ok || !ok2 || n < 0 || n > 10000 || int64(unitLen(s))*n > 10000 {
			return Value{}
		}
		return StringValue(strings.Repeat(s, int(n)))
	})
}

func unitsEqual(a, b []uint16) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
