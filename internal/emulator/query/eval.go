package query

import (
	"math"
)

// evaluator evaluates scalar expressions. Evaluation never fails: an
// operator or function given values it does not apply to yields Undefined,
// as in the service.
type evaluator struct {
	params []Value
	aggs   []Value // the current group's aggregate results, by slot
}

func (ev *evaluator) eval(x expr, env []Value) Value {
	switch e := x.(type) {
	case *litExpr:
		return e.v
	case *paramExpr:
		return ev.params[e.slot]
	case *identExpr:
		return env[e.slot]
	case *propExpr:
		return ev.eval(e.x, env).Get(e.name)
	case *indexExpr:
		return indexValue(ev.eval(e.x, env), ev.eval(e.idx, env))
	case *arrayExpr:
		items := make([]Value, 0, len(e.elems))
		for _, el := range e.elems {
			if v := ev.eval(el, env); v.kind != KindUndefined {
				items = append(items, v)
			}
		}
		return Value{kind: KindArray, list: &list{items: items}}
	case *objExpr:
		l := &list{keys: make([]string, 0, len(e.keys)), items: make([]Value, 0, len(e.keys))}
		for i, k := range e.keys {
			if v := ev.eval(e.vals[i], env); v.kind != KindUndefined {
				l.keys = append(l.keys, k)
				l.items = append(l.items, v)
			}
		}
		return Value{kind: KindObject, list: l}
	case *unaryExpr:
		return unary(e.op, ev.eval(e.x, env))
	case *binaryExpr:
		return ev.binary(e, env)
	case *inExpr:
		v := ev.eval(e.x, env)
		if v.kind == KindUndefined {
			return v
		}
		found := false
		for _, item := range e.list {
			if Equal(v, ev.eval(item, env)) {
				found = true
				break
			}
		}
		return BoolValue(found != e.not)
	case *betweenExpr:
		v := ev.eval(e.x, env)
		r := and(compareOp(">=", v, ev.eval(e.lo, env)), compareOp("<=", v, ev.eval(e.hi, env)))
		if e.not {
			return unary("NOT", r)
		}
		return r
	case *likeExpr:
		s, ok1 := ev.eval(e.x, env).AsString()
		pat, ok2 := ev.eval(e.pat, env).AsString()
		if !ok1 || !ok2 {
			return Value{}
		}
		return BoolValue(like(s, pat, e.esc) != e.not)
	case *condExpr:
		if ev.eval(e.c, env).isTrue() {
			return ev.eval(e.a, env)
		}
		return ev.eval(e.b, env)
	case *callExpr:
		args := make([]Value, len(e.args))
		for i, a := range e.args {
			args[i] = ev.eval(a, env)
			if args[i].kind == KindUndefined && !e.fn.undefOK {
				return Value{}
			}
		}
		return e.fn.call(args)
	case *aggExpr:
		if e.slot < len(ev.aggs) {
			return ev.aggs[e.slot]
		}
		return Value{}
	}
	return Value{}
}

// indexValue is base[idx]: an array element for a non-negative integer, an
// object member for a string, Undefined otherwise.
func indexValue(base, idx Value) Value {
	switch {
	case base.kind == KindArray && idx.kind == KindNumber:
		if idx.num != math.Trunc(idx.num) || idx.num < 0 || idx.num > math.MaxInt32 {
			return Value{}
		}
		return base.Index(int(idx.num))
	case base.kind == KindObject && idx.kind == KindString:
		return base.Get(idx.str)
	}
	return Value{}
}

func (ev *evaluator) binary(e *binaryExpr, env []Value) Value {
	l := ev.eval(e.l, env)
	switch e.op {
	case "AND":
		if l.kind == KindBool && l.num == 0 {
			return l
		}
		return and(l, ev.eval(e.r, env))
	case "OR":
		if l.isTrue() {
			return l
		}
		return or(l, ev.eval(e.r, env))
	case "??":
		if l.kind != KindUndefined {
			return l
		}
		return ev.eval(e.r, env)
	}
	return binaryOp(e.op, l, ev.eval(e.r, env))
}

// and and or implement the three-valued logic of the docs' truth tables:
// false AND anything is false, true OR anything is true, and any other
// non-boolean operand makes the result undefined.
func and(l, r Value) Value {
	if l.kind == KindBool && l.num == 0 || r.kind == KindBool && r.num == 0 {
		return BoolValue(false)
	}
	if l.kind == KindBool && r.kind == KindBool {
		return BoolValue(true)
	}
	return Value{}
}

func or(l, r Value) Value {
	if l.isTrue() || r.isTrue() {
		return BoolValue(true)
	}
	if l.kind == KindBool && r.kind == KindBool {
		return BoolValue(false)
	}
	return Value{}
}

func unary(op string, v Value) Value {
	switch op {
	case "NOT":
		if v.kind == KindBool {
			return BoolValue(v.num == 0)
		}
	case "-":
		if v.kind == KindNumber {
			return NumberValue(-v.num)
		}
	case "+":
		if v.kind == KindNumber {
			return v
		}
	case "~":
		if v.kind == KindNumber {
			return NumberValue(float64(^toInt32(v.num)))
		}
	}
	return Value{}
}

func binaryOp(op string, l, r Value) Value {
	switch op {
	case "=", "!=":
		// Undefined on either side is undefined; two defined values of
		// different types are simply unequal (see doc.go).
		if l.kind == KindUndefined || r.kind == KindUndefined {
			return Value{}
		}
		return BoolValue(Equal(l, r) == (op == "="))
	case "<", ">", "<=", ">=":
		return compareOp(op, l, r)
	case "||":
		if l.kind == KindString && r.kind == KindString {
			return StringValue(l.str + r.str)
		}
		return Value{}
	}
	if l.kind != KindNumber || r.kind != KindNumber {
		return Value{}
	}
	a, b := l.num, r.num
	switch op {
	case "+":
		return NumberValue(a + b)
	case "-":
		return NumberValue(a - b)
	case "*":
		return NumberValue(a * b)
	case "/":
		return NumberValue(a / b)
	case "%":
		return NumberValue(math.Mod(a, b))
	case "&":
		return NumberValue(float64(toInt32(a) & toInt32(b)))
	case "|":
		return NumberValue(float64(toInt32(a) | toInt32(b)))
	case "^":
		return NumberValue(float64(toInt32(a) ^ toInt32(b)))
	case "<<":
		return NumberValue(float64(toInt32(a) << (uint32(toInt32(b)) & 31)))
	case ">>":
		return NumberValue(float64(toInt32(a) >> (uint32(toInt32(b)) & 31)))
	case ">>>":
		return NumberValue(float64(uint32(toInt32(a)) >> (uint32(toInt32(b)) & 31)))
	}
	return Value{}
}

// compareOp applies a relational operator. Only two primitives of the same
// type compare (booleans: false < true; strings ordinally); anything else,
// arrays and objects included, is undefined.
func compareOp(op string, l, r Value) Value {
	if l.kind != r.kind {
		return Value{}
	}
	switch l.kind {
	case KindNull, KindBool, KindNumber, KindString:
	default:
		return Value{}
	}
	c := Compare(l, r)
	switch op {
	case "<":
		return BoolValue(c < 0)
	case ">":
		return BoolValue(c > 0)
	case "<=":
		return BoolValue(c <= 0)
	default:
		return BoolValue(c >= 0)
	}
}

// toInt32 converts like JavaScript's ToInt32, which the bitwise operators
// apply to their operands.
func toInt32(f float64) int32 {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0
	}
	m := math.Mod(math.Trunc(f), 4294967296)
	if m < 0 {
		m += 4294967296
	}
	return int32(uint32(m))
}
