package query

// like reports whether s matches the LIKE pattern, case-sensitively:
// % matches any run of characters, _ any one character, [abc] and [a-f]
// one character of a set, [^abc] one character outside it; esc, when set,
// makes the character after it literal. These are the wildcards the
// service documents for LIKE.
func like(s, pattern, esc string) bool {
	var escRune rune = -1
	for _, r := range esc {
		escRune = r
	}
	return likeRunes([]rune(s), []rune(pattern), escRune)
}

func likeRunes(s, p []rune, esc rune) bool {
	// Iterative matcher with backtracking to the last %, linear in
	// practice.
	si, pi := 0, 0
	starP, starS := -1, 0
	for si < len(s) {
		if pi < len(p) {
			switch c := p[pi]; {
			case c == '%':
				starP, starS = pi, si
				pi++
				continue
			case c == esc && pi+1 < len(p):
				if p[pi+1] == s[si] {
					si++
					pi += 2
					continue
				}
			case c == '_':
				si++
				pi++
				continue
			case c == '[':
				if ok, next := matchSet(p, pi, s[si]); next > 0 {
					if ok {
						si++
						pi = next
						continue
					}
					break
				}
				if s[si] == '[' {
					si++
					pi++
					continue
				}
			default:
				if c == s[si] {
					si++
					pi++
					continue
				}
			}
		}
		if starP < 0 {
			return false
		}
		starS++
		si, pi = starS, starP+1
	}
	for pi < len(p) && p[pi] == '%' {
		pi++
	}
	return pi == len(p)
}

// matchSet matches r against the bracket expression opening at p[i] and
// returns the index after it, or next = 0 when the bracket is not closed
// (it is then a literal '[').
func matchSet(p []rune, i int, r rune) (ok bool, next int) {
	j := i + 1
	neg := false
	if j < len(p) && p[j] == '^' {
		neg = true
		j++
	}
	start := j
	for j < len(p) && (p[j] != ']' || j == start) {
		j++
	}
	if j >= len(p) {
		return false, 0
	}
	set := p[start:j]
	in := false
	for k := 0; k < len(set); k++ {
		if k+2 < len(set) && set[k+1] == '-' {
			if set[k] <= r && r <= set[k+2] {
				in = true
			}
			k += 2
			continue
		}
		if set[k] == r {
			in = true
		}
	}
	return in != neg, j + 1
}
