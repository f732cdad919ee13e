package transform

// insertion is a synthetic key property that the target item gets and the
// source item lacks.
type insertion struct {
	at       int      // offset in the item of the '}' of the object receiving it; -1 for the item itself
	nonEmpty bool     // that object already has members, so a ',' goes first
	segs     []string // the names to create, outermost first; the last one holds the key
	key      span     // the key text in the arena
}

// write appends the target item to out: '{', the runs of kept top-level
// members byte for byte (with the insertions that fall inside them), the
// top-level insertions, '}'.
func (st *state) write(d []byte, out []byte) []byte {
	ins := st.inserts
	for i := range ins {
		if ins[i].at < 0 {
			ins[i].at = st.objEnd
		}
	}
	// Stable insertion sort: at most MaxKeys entries, equal offsets keep
	// the spec's order.
	for i := 1; i < len(ins); i++ {
		for j := i; j > 0 && ins[j].at < ins[j-1].at; j-- {
			ins[j], ins[j-1] = ins[j-1], ins[j]
		}
	}
	out = append(out, '{')
	k := 0
	for ri, run := range st.runs {
		if ri > 0 {
			out = append(out, ',')
		}
		pos := run.start
		for k < len(ins) && ins[k].at < run.end {
			j := k + 1
			for j < len(ins) && ins[j].at == ins[k].at {
				j++
			}
			out = append(out, d[pos:ins[k].at]...)
			if ins[k].nonEmpty {
				out = append(out, ',')
			}
			out = st.writeMembers(out, ins[k:j], 0)
			pos = ins[k].at
			k = j
		}
		out = append(out, d[pos:run.end]...)
	}
	if k < len(ins) {
		if len(st.runs) > 0 {
			out = append(out, ',')
		}
		out = st.writeMembers(out, ins[k:], 0)
	}
	return append(out, '}')
}

// writeMembers writes the insertions of one object as comma-separated
// members, nesting the ones that share an intermediate name:
// /m/a and /m/b become "m":{"a":..,"b":..}. Spec paths never lie inside one
// another, so a shared name is always an intermediate object.
func (st *state) writeMembers(out []byte, group []insertion, depth int) []byte {
	var done uint8 // bit i: group[i] written
	first := true
	for i := range group {
		if done&(1<<i) != 0 {
			continue
		}
		if !first {
			out = append(out, ',')
		}
		first = false
		name := group[i].segs[depth]
		out = appendQuoted(out, name)
		out = append(out, ':')
		if len(group[i].segs) == depth+1 {
			done |= 1 << i
			out = appendQuoted(out, st.arena[group[i].key.start:group[i].key.end])
			continue
		}
		var sub [MaxKeys]insertion
		n := 0
		for j := i; j < len(group); j++ {
			if done&(1<<j) == 0 && len(group[j].segs) > depth+1 && group[j].segs[depth] == name {
				done |= 1 << j
				sub[n] = group[j]
				n++
			}
		}
		out = append(out, '{')
		out = st.writeMembers(out, sub[:n], depth+1)
		out = append(out, '}')
	}
	return out
}
