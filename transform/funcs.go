package transform

import (
	"math"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"
)

// MaxHashBuckets is the largest N of hash:N.
const MaxHashBuckets = 1 << 32

// op is a template function.
type op uint8

const (
	opYear  op = iota + 1 // yyyy
	opMonth               // yyyyMM
	opDay                 // yyyyMMdd
	opHour                // yyyyMMddHH
	opLower               // lower
	opUpper               // upper
	opHash                // hash:N
)

var opNames = [...]string{opYear: "yyyy", opMonth: "yyyyMM", opDay: "yyyyMMdd", opHour: "yyyyMMddHH",
	opLower: "lower", opUpper: "upper", opHash: "hash"}

func (o op) String() string { return opNames[o] }

func lookupFunction(name string) (op, bool) {
	for o := opYear; o < opHash; o++ {
		if opNames[o] == name {
			return o, true
		}
	}
	return 0, false
}

// function is one |fn of a placeholder.
type function struct {
	op op
	n  uint64 // buckets of hash:N
}

// epochMillisThreshold separates epoch seconds from epoch milliseconds: a
// number whose magnitude is below it is seconds (up to the year 5138), at or
// above it milliseconds (from 1973-03-03 on).
const epochMillisThreshold = 1e11

// apply runs f on the value (typ, text) and appends the result to dst. A
// string's text is its decoded value; a number's and a bool's text is the
// JSON text as it appears in the item. The result is always a string.
func (f function) apply(dst []byte, typ Type, text []byte) ([]byte, error) {
	switch f.op {
	case opLower, opUpper:
		return appendCase(dst, text, f.op == opUpper), nil
	case opHash:
		return strconv.AppendUint(dst, HashBucket(text, f.n), 10), nil
	}
	t, err := timeOf(typ, text)
	if err != nil {
		return dst, err
	}
	y, m, d := t.Date()
	if y < 0 || y > 9999 {
		return dst, errorf("the date %s is outside the years 0000-9999", text)
	}
	dst = appendDigits(dst, y, 4)
	if f.op >= opMonth {
		dst = appendDigits(dst, int(m), 2)
	}
	if f.op >= opDay {
		dst = appendDigits(dst, d, 2)
	}
	if f.op >= opHour {
		dst = appendDigits(dst, t.Hour(), 2)
	}
	return dst, nil
}

// HashBucket returns the bucket of text among n buckets, as hash:N computes
// it: the 64-bit FNV-1a hash of the UTF-8 bytes of text, modulo n. The
// algorithm is part of the key format and must never change: the same value
// lands in the same bucket on every platform and in every version.
func HashBucket(text []byte, n uint64) uint64 {
	const (
		offset64 = 14695981039346656037
		prime64  = 1099511628211
	)
	h := uint64(offset64)
	for _, c := range text {
		h ^= uint64(c)
		h *= prime64
	}
	return h % n
}

// appendCase maps text to lower or upper case, rune by rune with Go's Unicode
// tables (simple case mapping), ASCII without a table look-up.
func appendCase(dst, text []byte, upper bool) []byte {
	for i := 0; i < len(text); {
		c := text[i]
		if c < utf8.RuneSelf {
			if upper && 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			} else if !upper && 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			dst = append(dst, c)
			i++
			continue
		}
		r, size := utf8.DecodeRune(text[i:])
		if upper {
			r = unicode.ToUpper(r)
		} else {
			r = unicode.ToLower(r)
		}
		dst = utf8.AppendRune(dst, r)
		i += size
	}
	return dst
}

func appendDigits(dst []byte, v, width int) []byte {
	var buf [4]byte
	for i := width - 1; i >= 0; i-- {
		buf[i] = byte('0' + v%10)
		v /= 10
	}
	return append(dst, buf[:width]...)
}

// valueError is a reason that apply turns into an *Error of ErrInvalidValue.
type valueError struct{ reason string }

func (e *valueError) Error() string { return e.reason }

func errorf(format string, text []byte) error {
	// Quote the offending text, shortened, so a reason stays one short line.
	s := string(text)
	if len(s) > 64 {
		s = s[:61] + "..."
	}
	q := strconv.Quote(s)
	out := make([]byte, 0, len(format)+len(q))
	for i := 0; i < len(format); i++ {
		if format[i] == '%' && i+1 < len(format) && format[i+1] == 's' {
			out = append(out, q...)
			i++
			continue
		}
		out = append(out, format[i])
	}
	return &valueError{reason: string(out)}
}

// timeOf reads a point in time: an ISO-8601 string, or a number of epoch
// seconds (such as _ts) or milliseconds, told apart by epochMillisThreshold.
func timeOf(typ Type, text []byte) (time.Time, error) {
	switch typ {
	case TypeString:
		return parseISO(text)
	case TypeNumber:
		f, err := strconv.ParseFloat(string(text), 64)
		if err != nil || math.IsInf(f, 0) {
			return time.Time{}, errorf("the number %s is not an epoch time", text)
		}
		var ms float64
		if math.Abs(f) < epochMillisThreshold {
			ms = math.Floor(f * 1000)
		} else {
			ms = math.Floor(f)
		}
		// Years 0000 to 9999 are within ±2.6e14 ms; refuse what is beyond
		// before converting, so huge values cannot overflow int64.
		if math.Abs(ms) > 3e14 {
			return time.Time{}, errorf("the epoch time %s is outside the years 0000-9999", text)
		}
		return time.UnixMilli(int64(ms)).UTC(), nil
	default:
		return time.Time{}, errorf("a date function needs an ISO-8601 string or an epoch number, not %s", text)
	}
}

// parseISO parses the ISO-8601 / RFC 3339 forms found in JSON documents:
// YYYY-MM-DD, optionally followed by T (or t, or a space) hh:mm, :ss, a
// fraction of any length, and Z or an offset ±hh:mm, ±hhmm or ±hh. A time
// without an offset is taken as UTC. The result is in UTC.
func parseISO(s []byte) (time.Time, error) {
	bad := func() (time.Time, error) {
		return time.Time{}, errorf("%s is not an ISO-8601 date such as 2024-03-05 or 2024-03-05T10:15:00Z", s)
	}
	num := func(i, n int) (int, bool) {
		if i+n > len(s) {
			return 0, false
		}
		v := 0
		for _, c := range s[i : i+n] {
			if c < '0' || c > '9' {
				return 0, false
			}
			v = v*10 + int(c-'0')
		}
		return v, true
	}
	year, ok1 := num(0, 4)
	month, ok2 := num(5, 2)
	day, ok3 := num(8, 2)
	if !ok1 || !ok2 || !ok3 || s[4] != '-' || s[7] != '-' {
		return bad()
	}
	if month < 1 || month > 12 || day < 1 || day > daysIn(year, month) {
		return time.Time{}, errorf("%s is not a calendar date", s)
	}
	var hour, minute, sec, offset int
	i := 10
	if i < len(s) {
		if c := s[i]; c != 'T' && c != 't' && c != ' ' {
			return bad()
		}
		var ok bool
		if hour, ok = num(i+1, 2); !ok || len(s) < i+6 || s[i+3] != ':' {
			return bad()
		}
		if minute, ok = num(i+4, 2); !ok {
			return bad()
		}
		i += 6
		if i < len(s) && s[i] == ':' {
			if sec, ok = num(i+1, 2); !ok {
				return bad()
			}
			i += 3
			if i < len(s) && (s[i] == '.' || s[i] == ',') {
				j := i + 1
				for j < len(s) && s[j] >= '0' && s[j] <= '9' {
					j++
				}
				if j == i+1 {
					return bad()
				}
				i = j // the fraction never changes the hour, so it is not kept
			}
		}
		if hour > 23 || minute > 59 || sec > 60 {
			return time.Time{}, errorf("%s is not a time of day", s)
		}
		if i < len(s) {
			switch s[i] {
			case 'Z', 'z':
				i++
			case '+', '-':
				oh, ok := num(i+1, 2)
				if !ok {
					return bad()
				}
				om, j := 0, i+3
				if j < len(s) && s[j] == ':' {
					j++
					if j == len(s) {
						return bad()
					}
				}
				if j < len(s) {
					if om, ok = num(j, 2); !ok {
						return bad()
					}
					j += 2
				}
				if oh > 23 || om > 59 {
					return bad()
				}
				offset = (oh*60 + om) * 60
				if s[i] == '-' {
					offset = -offset
				}
				i = j
			default:
				return bad()
			}
		}
	}
	if i != len(s) {
		return bad()
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, 0, time.UTC)
	return t.Add(-time.Duration(offset) * time.Second), nil
}

func daysIn(year, month int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}
