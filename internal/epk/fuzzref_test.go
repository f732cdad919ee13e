package epk

import (
	"fmt"
	"math"
	"math/big"
	"strings"
)

// Independent references for FuzzSplitPoints: arbitrary-precision integers
// for version 2, and for version 1 a bit-by-bit spelling of the number
// encoding that shares no code with v1.go.

// refSplit is an independent reference for SplitPoints over arbitrary
// precision integers; ok is false when SplitPoints must fail.
func refSplit(v Version, min, max string, parts int) (points []string, ok bool) {
	if v < 0 || v > 2 || parts < 1 || parts > MaxParts {
		return nil, false
	}
	if v.effective() == Version1 {
		return refSplitV1(min, max, parts)
	}
	top := new(big.Int).Lsh(big.NewInt(1), 126)
	topDigits := top.Text(16)
	topDigits = strings.Repeat("0", 32-len(topDigits)) + strings.ToUpper(topDigits)
	value := func(s string) (digits string, val *big.Int, inexact, ok bool) {
		if strings.TrimRight(s, "0") == "FF" {
			return topDigits, new(big.Int).Set(top), false, true
		}
		if !isUpperHex(s) {
			return "", nil, false, false
		}
		padded := s + strings.Repeat("0", 32)
		val, _ = new(big.Int).SetString("0"+padded[:32], 16)
		if len(s) > 32 {
			inexact = strings.Trim(s[32:], "0") != ""
		}
		if c := val.Cmp(top); c > 0 || c == 0 && inexact {
			return "", nil, false, false
		}
		return s, val, inexact, true
	}
	minDigits, lo, minInexact, ok1 := value(min)
	maxDigits, hi, _, ok2 := value(max)
	if !ok1 || !ok2 || padCompare(minDigits, maxDigits) >= 0 {
		return nil, false
	}
	if parts == 1 {
		return []string{}, true
	}
	if minInexact {
		lo.Add(lo, big.NewInt(1))
	}
	width := new(big.Int).Sub(hi, lo)
	if width.Cmp(big.NewInt(int64(parts))) < 0 {
		return nil, false
	}
	for i := 1; i < parts; i++ {
		b := new(big.Int).Mul(width, big.NewInt(int64(i)))
		b.Quo(b, big.NewInt(int64(parts))).Add(b, lo)
		d := strings.ToUpper(b.Text(16))
		points = append(points, strings.Repeat("0", 32-len(d))+d)
	}
	return points, true
}

// refTopV1 is the value "FF" stands for in the version 1 space.
const refTopV1 = 1<<32 - 1

// refEncodeV1 writes a whole number as a version 1 boundary, spelling the
// payload out bit by bit: 8 bits, then 7-bit groups, each followed by a
// continuation bit, up to the last group with a one bit.
func refEncodeV1(n uint64) string {
	payload := math.Float64bits(float64(n)) | 1<<63 // non-negative: set the sign bit
	var bitsOf strings.Builder
	for i := 63; i >= 0; i-- {
		bitsOf.WriteByte(byte('0' + payload>>uint(i)&1))
	}
	all := bitsOf.String()
	last := strings.LastIndexByte(all[8:], '1') + 8 // index of the last one bit
	groups := 1
	if last >= 8 {
		groups = (last-8)/7 + 1
	}
	out := "05" + fmt.Sprintf("%02X", payload>>56)
	for g := 0; g < groups; g++ {
		chunk := (all[8+7*g:] + "0000000")[:7]
		cont := "1"
		if g == groups-1 {
			cont = "0"
		}
		b, _ := new(big.Int).SetString(chunk+cont, 2)
		out += fmt.Sprintf("%02X", b.Int64())
	}
	return out
}

// refValueV1 reads a version 1 bound: "" (or zeros) is 0, "FF" the top, else
// a number component at the start, whole and in range; inexact when the
// number has a fraction or nonzero digits follow it.
func refValueV1(s string) (val uint64, inexact, ok bool) {
	if strings.TrimRight(s, "0") == "FF" {
		return refTopV1, false, true
	}
	if !isUpperHex(s) {
		return 0, false, false
	}
	if strings.TrimRight(s, "0") == "" {
		return 0, false, true
	}
	if len(s)%2 == 1 {
		s += "0"
	}
	if len(s) < 6 || s[:2] != "05" {
		return 0, false, false
	}
	var payload uint64
	hi, _ := new(big.Int).SetString(s[2:4], 16)
	payload = hi.Uint64() << 56
	end := -1
	for g := 0; 4+2*g+2 <= len(s); g++ {
		if g == 8 {
			return 0, false, false
		}
		c, _ := new(big.Int).SetString(s[4+2*g:6+2*g], 16)
		payload |= (c.Uint64() >> 1) << uint(49-7*g)
		if c.Uint64()&1 == 0 {
			end = 6 + 2*g
			break
		}
	}
	if end < 0 || payload < 1<<63 { // unterminated, or a negative number
		return 0, false, false
	}
	x := math.Float64frombits(payload &^ (1 << 63))
	if math.IsNaN(x) || x > refTopV1 {
		return 0, false, false
	}
	return uint64(math.Floor(x)), x != math.Floor(x) || strings.Trim(s[end:], "0") != "", true
}

// refSplitV1 is refSplit for version 1: boundary i is min + i*(width//parts).
func refSplitV1(min, max string, parts int) ([]string, bool) {
	lo, minInexact, ok1 := refValueV1(min)
	hi, _, ok2 := refValueV1(max)
	canon := func(s string) string {
		if strings.TrimRight(s, "0") == "FF" {
			return refEncodeV1(refTopV1)
		}
		return s
	}
	if !ok1 || !ok2 || padCompare(canon(min), canon(max)) >= 0 {
		return nil, false
	}
	if parts == 1 {
		return []string{}, true
	}
	if minInexact {
		lo++
	}
	if hi < lo || hi-lo < uint64(parts) {
		return nil, false
	}
	var points []string
	for i := 1; i < parts; i++ {
		points = append(points, refEncodeV1(lo+uint64(i)*((hi-lo)/uint64(parts))))
	}
	return points, true
}
