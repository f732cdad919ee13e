package query

// Navigation over retained JSON text: what lets a filter read c.pk from a
// stored document without decoding the rest of it.

// keyIs reports whether the raw key body (between the quotes) equals key.
func keyIs(body []byte, key string) bool {
	for _, c := range body {
		if c == '\\' {
			return unescape(body) == key
		}
	}
	return string(body) == key
}

// rawMembers calls fn for each member of the raw object, stopping when fn
// returns false. Parsing stops silently at malformed input.
func rawMembers(raw []byte, fn func(keyBody []byte, valueAt int) bool) {
	i := skipWS(raw, 1)
	if i >= len(raw) || raw[i] == '}' {
		return
	}
	for i < len(raw) && raw[i] == '"' {
		kEnd := skipString(raw, i)
		if kEnd < 0 {
			return
		}
		body := raw[i+1 : kEnd-1]
		i = skipWS(raw, kEnd)
		if i >= len(raw) || raw[i] != ':' {
			return
		}
		i = skipWS(raw, i+1)
		if !fn(body, i) {
			return
		}
		i = skipValue(raw, i)
		if i < 0 {
			return
		}
		i = skipWS(raw, i)
		if i >= len(raw) || raw[i] != ',' {
			return
		}
		i = skipWS(raw, i+1)
	}
}

// rawElems calls fn for each element start of the raw array.
func rawElems(raw []byte, fn func(valueAt int) bool) {
	i := skipWS(raw, 1)
	if i >= len(raw) || raw[i] == ']' {
		return
	}
	for i < len(raw) {
		if !fn(i) {
			return
		}
		i = skipValue(raw, i)
		if i < 0 {
			return
		}
		i = skipWS(raw, i)
		if i >= len(raw) || raw[i] != ',' {
			return
		}
		i = skipWS(raw, i+1)
	}
}

// rawGet is rawMembers specialized (no closure) for the hot path: reading
// one property of a stored document.
func rawGet(raw []byte, key string) Value {
	i := skipWS(raw, 1)
	for i < len(raw) && raw[i] == '"' {
		kEnd := skipString(raw, i)
		if kEnd < 0 {
			return Value{}
		}
		match := keyIs(raw[i+1:kEnd-1], key)
		i = skipWS(raw, kEnd)
		if i >= len(raw) || raw[i] != ':' {
			return Value{}
		}
		i = skipWS(raw, i+1)
		if match {
			v, _ := parseValueAt(raw, i)
			return v
		}
		if i = skipValue(raw, i); i < 0 {
			return Value{}
		}
		i = skipWS(raw, i)
		if i >= len(raw) || raw[i] != ',' {
			return Value{}
		}
		i = skipWS(raw, i+1)
	}
	return Value{}
}

func rawIndex(raw []byte, n int) Value {
	var out Value
	i := 0
	rawElems(raw, func(at int) bool {
		if i == n {
			out, _ = parseValueAt(raw, at)
			return false
		}
		i++
		return true
	})
	return out
}

func rawLen(raw []byte) int {
	n := 0
	if len(raw) > 0 && raw[0] == '{' {
		rawMembers(raw, func([]byte, int) bool { n++; return true })
	} else {
		rawElems(raw, func(int) bool { n++; return true })
	}
	return n
}

// decodeComposite decodes one level of a raw array or object; nested
// composites stay raw. Undefined members (unreadable input) are dropped.
func decodeComposite(raw []byte, k Kind) *list {
	l := &list{}
	if k == KindObject {
		rawMembers(raw, func(body []byte, at int) bool {
			v, _ := parseValueAt(raw, at)
			if v.kind != KindUndefined {
				l.keys = append(l.keys, unescapeKey(body))
				l.items = append(l.items, v)
			}
			return true
		})
		if l.keys == nil {
			l.keys = []string{}
		}
		return l
	}
	rawElems(raw, func(at int) bool {
		v, _ := parseValueAt(raw, at)
		if v.kind != KindUndefined {
			l.items = append(l.items, v)
		}
		return true
	})
	return l
}

func unescapeKey(body []byte) string {
	for _, c := range body {
		if c == '\\' {
			return unescape(body)
		}
	}
	return string(body)
}
