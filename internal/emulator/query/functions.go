package query

import (
	"math"
	"strconv"
)

// builtin is a system function. Unless undefOK is set, any undefined
// argument makes the result undefined without calling fn, and fn returns
// Undefined for arguments of the wrong type: that is how the service's
// functions behave.
type builtin struct {
	name    string
	minArgs int
	maxArgs int // -1: no limit
	undefOK bool
	fn      func(args []Value) Value
}

func (b *builtin) call(args []Value) Value { return b.fn(args) }

func (b *builtin) arity() string {
	switch {
	case b.maxArgs < 0:
		return "at least " + strconv.Itoa(b.minArgs)
	case b.minArgs == b.maxArgs:
		return strconv.Itoa(b.minArgs)
	case b.maxArgs == b.minArgs+1:
		return strconv.Itoa(b.minArgs) + " or " + strconv.Itoa(b.maxArgs)
	}
	return strconv.Itoa(b.minArgs) + " to " + strconv.Itoa(b.maxArgs)
}

// builtins maps upper-case names to functions; function names are
// case-insensitive.
var builtins = map[string]*builtin{}

func register(name string, minArgs, maxArgs int, undefOK bool, fn func([]Value) Value) {
	builtins[name] = &builtin{name: name, minArgs: minArgs, maxArgs: maxArgs, undefOK: undefOK, fn: fn}
}

func init() {
	// Type checking: defined for undefined arguments too.
	typeCheck := func(name string, pred func(Value) bool) {
		register(name, 1, 1, true, func(a []Value) Value { return BoolValue(pred(a[0])) })
	}
	typeCheck("IS_DEFINED", func(v Value) bool { return v.kind != KindUndefined })
	typeCheck("IS_NULL", func(v Value) bool { return v.kind == KindNull })
	typeCheck("IS_BOOL", func(v Value) bool { return v.kind == KindBool })
	typeCheck("IS_NUMBER", func(v Value) bool { return v.kind == KindNumber })
	typeCheck("IS_STRING", func(v Value) bool { return v.kind == KindString })
	typeCheck("IS_ARRAY", func(v Value) bool { return v.kind == KindArray })
	typeCheck("IS_OBJECT", func(v Value) bool { return v.kind == KindObject })
	typeCheck("IS_PRIMITIVE", func(v Value) bool {
		return v.kind == KindNull || v.kind == KindBool || v.kind == KindNumber || v.kind == KindString
	})
	typeCheck("IS_FINITE_NUMBER", func(v Value) bool { return v.kind == KindNumber })
	typeCheck("IS_INTEGER", func(v Value) bool {
		return v.kind == KindNumber && v.num == float64(int64(v.num)) && v.num >= -9223372036854775808 && v.num < 9223372036854775808
	})

	register("ARRAY_CONTAINS", 2, 3, true, arrayContains)
	containsSome := func(name string, all bool) {
		register(name, 2, -1, false, func(a []Value) Value {
			if a[0].kind != KindArray {
				return Value{}
			}
			for _, needle := range a[1:] {
				found := false
				for _, hay := range a[0].Elems() {
					if Equal(hay, needle) {
						found = true
						break
					}
				}
				if found != all {
					return BoolValue(found)
				}
			}
			return BoolValue(all)
		})
	}
	containsSome("ARRAY_CONTAINS_ANY", false)
	containsSome("ARRAY_CONTAINS_ALL", true)
	// IIF(condition, whenTrue, whenFalse): anything but true selects the
	// third argument.
	register("IIF", 3, 3, true, func(a []Value) Value {
		if a[0].isTrue() {
			return a[1]
		}
		return a[2]
	})
	register("ARRAY_LENGTH", 1, 1, false, func(a []Value) Value {
		if a[0].kind != KindArray {
			return Value{}
		}
		return NumberValue(float64(a[0].Len()))
	})
	register("ARRAY_SLICE", 2, 3, false, arraySlice)
	register("ARRAY_CONCAT", 2, -1, false, func(a []Value) Value {
		var items []Value
		for _, v := range a {
			if v.kind != KindArray {
				return Value{}
			}
			items = append(items, v.Elems()...)
		}
		return ArrayValue(items...)
	})
	register("TOSTRING", 1, 1, false, func(a []Value) Value {
		if a[0].kind == KindString {
			return a[0]
		}
		return StringValue(string(a[0].AppendJSON(nil)))
	})
	stringTo := func(name string, want Kind) {
		register(name, 1, 1, false, func(a []Value) Value {
			s, ok := a[0].AsString()
			if !ok {
				return Value{}
			}
			v, err := Decode([]byte(s))
			if err != nil || v.kind != want {
				return Value{}
			}
			return v
		})
	}
	stringTo("STRINGTONUMBER", KindNumber)
	stringTo("STRINGTOBOOLEAN", KindBool)
	stringTo("STRINGTONULL", KindNull)
	stringTo("STRINGTOARRAY", KindArray)
	stringTo("STRINGTOOBJECT", KindObject)

	registerStrings()
	registerMath()
}

// arrayContains implements ARRAY_CONTAINS(arr, value [, partial]): with
// partial true, an object needle matches an element that has at least the
// needle's members with equal values.
func arrayContains(a []Value) Value {
	partial := false
	if len(a) == 3 && a[2].kind != KindUndefined {
		b, ok := a[2].AsBool()
		if !ok {
			return Value{}
		}
		partial = b
	}
	if a[0].kind != KindArray || a[1].kind == KindUndefined {
		return Value{}
	}
	needle := a[1]
	for _, hay := range a[0].Elems() {
		if partial && needle.kind == KindObject {
			if hay.kind == KindObject && containsMembers(hay, needle) {
				return BoolValue(true)
			}
			continue
		}
		if Equal(hay, needle) {
			return BoolValue(true)
		}
	}
	return BoolValue(false)
}

func containsMembers(hay, needle Value) bool {
	for _, m := range needle.Members() {
		if !Equal(hay.Get(m.Key), m.Value) {
			return false
		}
	}
	return true
}

// arraySlice implements ARRAY_SLICE(arr, start [, length]); a negative start
// counts from the end.
func arraySlice(a []Value) Value {
	if a[0].kind != KindArray {
		return Value{}
	}
	start, ok := intArg(a[1])
	if !ok {
		return Value{}
	}
	items := a[0].Elems()
	n := int64(len(items))
	count := n
	if len(a) == 3 {
		if count, ok = intArg(a[2]); !ok {
			return Value{}
		}
	}
	if start < 0 {
		start = max(start+n, 0)
	}
	if start >= n || count <= 0 {
		return ArrayValue()
	}
	end := min(start+count, n)
	return ArrayValue(items[start:end]...)
}

// intArg returns an integral number argument.
func intArg(v Value) (int64, bool) {
	if v.kind != KindNumber || v.num != float64(int64(v.num)) {
		return 0, false
	}
	return int64(v.num), true
}

// mathFunc registers a function of one number.
func mathFunc(name string, f func(float64) float64) {
	register(name, 1, 1, false, func(a []Value) Value {
		x, ok := a[0].AsNumber()
		if !ok {
			return Value{}
		}
		return NumberValue(f(x))
	})
}

// mathFunc2 registers a function of two numbers.
func mathFunc2(name string, f func(x, y float64) float64) {
	register(name, 2, 2, false, func(a []Value) Value {
		x, ok := a[0].AsNumber()
		y, ok2 := a[1].AsNumber()
		if !ok || !ok2 {
			return Value{}
		}
		return NumberValue(f(x, y))
	})
}

func registerMath() {
	mathFunc("ABS", math.Abs)
	mathFunc("CEILING", math.Ceil)
	mathFunc("FLOOR", math.Floor)
	// ROUND rounds half away from zero (2.5 -> 3, -2.5 -> -3), as the
	// service documents.
	mathFunc("ROUND", math.Round)
	mathFunc("TRUNC", math.Trunc)
	mathFunc("SQRT", math.Sqrt)
	mathFunc("SQUARE", func(x float64) float64 { return x * x })
	mathFunc("SIGN", func(x float64) float64 {
		switch {
		case x > 0:
			return 1
		case x < 0:
			return -1
		}
		return 0
	})
	mathFunc("EXP", math.Exp)
	mathFunc("LOG10", math.Log10)
	mathFunc("SIN", math.Sin)
	mathFunc("COS", math.Cos)
	mathFunc("TAN", math.Tan)
	mathFunc("COT", func(x float64) float64 { return 1 / math.Tan(x) })
	mathFunc("ASIN", math.Asin)
	mathFunc("ACOS", math.Acos)
	mathFunc("ATAN", math.Atan)
	mathFunc("DEGREES", func(x float64) float64 { return x * 180 / math.Pi })
	mathFunc("RADIANS", func(x float64) float64 { return x * math.Pi / 180 })
	mathFunc2("POWER", math.Pow)
	// ATN2(y, x): ATN2(35.175643, 129.44) is 0.2653445320648..., per the docs.
	mathFunc2("ATN2", math.Atan2)
	register("PI", 0, 0, false, func([]Value) Value { return NumberValue(math.Pi) })
	register("LOG", 1, 2, false, func(a []Value) Value {
		x, ok := a[0].AsNumber()
		if !ok {
			return Value{}
		}
		if len(a) == 1 {
			return NumberValue(math.Log(x))
		}
		base, ok := a[1].AsNumber()
		if !ok {
			return Value{}
		}
		return NumberValue(math.Log(x) / math.Log(base))
	})
}
