package query

// Index helpers: they read the WHERE clause so that the emulator can route
// a query to one logical partition, or look documents up by id, instead of
// scanning. They only narrow the set of documents to examine; the emulator
// still evaluates the query (Match or Run) on the documents it finds.

// Candidate is a document the filter may match: its id and, when the same
// conjunction pins every partition key path, its partition key values.
type Candidate struct {
	ID           string
	PartitionKey []Value // nil when not pinned
}

// PartitionKeyValues reports which partition key values the top-level
// conjunction of the WHERE clause pins. paths are the container's key paths
// split into property names ([["pk"]], [["tenant"],["user"]],
// [["address","zip"]]). A path is pinned by a conjunct path = constant
// (either side; the constant a literal or a parameter), path IN (constant),
// or IS_NULL(path); c.pk and c["pk"] are the same path. The result holds
// the values of the leading pinned paths: all of them when its length is
// len(paths), so the query needs one logical partition (or, for a
// hierarchical key, a prefix of one). Values are primitives (string,
// number, boolean, null). Queries whose FROM is not the document itself
// (FROM x IN c.arr, FROM c.sub) pin nothing.
func (b *Bound) PartitionKeyValues(paths [][]string) []Value {
	if !b.q.rootDoc || b.q.where == nil {
		return nil
	}
	return b.pins(flattenAnd(b.q.where, nil), paths)
}

func (b *Bound) pins(conj []expr, paths [][]string) []Value {
	var out []Value
	for _, p := range paths {
		v, ok := b.pinned(conj, p)
		if !ok {
			break
		}
		out = append(out, v)
	}
	return out
}

// pinned finds a conjunct that fixes path to one primitive value.
func (b *Bound) pinned(conj []expr, path []string) (Value, bool) {
	for _, c := range conj {
		var v Value
		found := false
		switch e := c.(type) {
		case *binaryExpr:
			if e.op != "=" {
				continue
			}
			if isDocPath(e.l, path) {
				v, found = b.constant(e.r)
			} else if isDocPath(e.r, path) {
				v, found = b.constant(e.l)
			}
		case *inExpr:
			if !e.not && len(e.list) == 1 && isDocPath(e.x, path) {
				v, found = b.constant(e.list[0])
			}
		case *callExpr:
			if e.fn.name == "IS_NULL" && isDocPath(e.args[0], path) {
				v, found = Null(), true
			}
		}
		if found && isPrimitive(v) {
			return v, true
		}
	}
	return Value{}, false
}

func isPrimitive(v Value) bool {
	return v.kind == KindNull || v.kind == KindBool || v.kind == KindNumber || v.kind == KindString
}

// constant evaluates a literal or parameter.
func (b *Bound) constant(e expr) (Value, bool) {
	switch x := e.(type) {
	case *litExpr:
		return x.v, true
	case *paramExpr:
		return b.params[x.slot], true
	}
	return Value{}, false
}

// flattenAnd appends the conjuncts of e to dst.
func flattenAnd(e expr, dst []expr) []expr {
	if x, ok := e.(*binaryExpr); ok && x.op == "AND" {
		return flattenAnd(x.r, flattenAnd(x.l, dst))
	}
	return append(dst, e)
}

// isDocPath reports whether e is the alias of the document (slot 0)
// followed by exactly the property names of path.
func isDocPath(e expr, path []string) bool {
	for i := len(path) - 1; i >= 0; i-- {
		p, ok := e.(*propExpr)
		if !ok || p.name != path[i] {
			return false
		}
		e = p.x
	}
	id, ok := e.(*identExpr)
	return ok && id.slot == 0
}

var idPath = []string{"id"}

// IDCandidates reports whether the WHERE clause can only match documents
// whose id is in a finite set, and returns that set: c.id = constant,
// c.id IN (constants), conjunctions containing one of these, and
// disjunctions of such conjunctions, which covers the queries ReadMany
// sends:
//
//	SELECT * FROM c WHERE c.id IN (@param_id0, @param_id1)
//	SELECT * FROM c WHERE c.pk = @pk0 AND c.id IN (@param_id0, ...)
//	SELECT * FROM c WHERE (c.id = @param_id0 AND c.pk = @param_pk00) OR (...)
//
// pkPaths are the container's key paths, as for PartitionKeyValues; a
// candidate carries its partition key when its conjunction pins all of
// them. ok is false when the filter does not restrict ids (the emulator
// must scan); ok with no candidates means nothing can match (an id
// compared with a non-string).
func (b *Bound) IDCandidates(pkPaths [][]string) (cands []Candidate, ok bool) {
	if !b.q.rootDoc || b.q.where == nil {
		return nil, false
	}
	return b.idsOfConj(flattenAnd(b.q.where, nil), pkPaths)
}

func (b *Bound) idsOf(e expr, pkPaths [][]string) ([]Candidate, bool) {
	switch x := e.(type) {
	case *binaryExpr:
		switch x.op {
		case "AND":
			return b.idsOfConj(flattenAnd(x, nil), pkPaths)
		case "OR":
			l, ok := b.idsOf(x.l, pkPaths)
			if !ok {
				return nil, false
			}
			r, ok := b.idsOf(x.r, pkPaths)
			if !ok {
				return nil, false
			}
			return union(l, r), true
		case "=":
			if isDocPath(x.l, idPath) {
				return b.idConstants([]expr{x.r})
			}
			if isDocPath(x.r, idPath) {
				return b.idConstants([]expr{x.l})
			}
		}
	case *inExpr:
		if !x.not && isDocPath(x.x, idPath) {
			return b.idConstants(x.list)
		}
	}
	return nil, false
}

// idsOfConj intersects the id sets of the conjuncts that restrict ids and
// attaches the partition key the conjunction pins.
func (b *Bound) idsOfConj(conj []expr, pkPaths [][]string) ([]Candidate, bool) {
	var cands []Candidate
	have := false
	for _, c := range conj {
		cs, ok := b.idsOf(c, pkPaths)
		if !ok {
			continue
		}
		if !have {
			cands, have = cs, true
		} else {
			cands = intersect(cands, cs)
		}
	}
	if !have {
		return nil, false
	}
	if len(pkPaths) > 0 {
		if pk := b.pins(conj, pkPaths); len(pk) == len(pkPaths) {
			for i := range cands {
				if cands[i].PartitionKey == nil {
					cands[i].PartitionKey = pk
				}
			}
		}
	}
	return cands, true
}

// idConstants turns constant id values into candidates; values that are
// not strings cannot equal an id and are dropped. A non-constant makes the
// set unknown.
func (b *Bound) idConstants(list []expr) ([]Candidate, bool) {
	cands := []Candidate{}
	for _, e := range list {
		v, ok := b.constant(e)
		if !ok {
			return nil, false
		}
		if s, isStr := v.AsString(); isStr {
			cands = append(cands, Candidate{ID: s})
		}
	}
	return union(cands, nil), true
}

func candKey(c Candidate) string {
	k := c.ID + "\x00"
	for _, v := range c.PartitionKey {
		k += canonicalKey(v) + "\x00"
	}
	return k
}

// union concatenates two candidate lists without duplicates.
func union(a, b []Candidate) []Candidate {
	out := []Candidate{}
	seen := map[string]bool{}
	for _, list := range [][]Candidate{a, b} {
		for _, c := range list {
			if k := candKey(c); !seen[k] {
				seen[k] = true
				out = append(out, c)
			}
		}
	}
	return out
}

// intersect keeps the candidates of a whose id is in b; a partition key
// known on either side is kept.
func intersect(a, b []Candidate) []Candidate {
	out := []Candidate{}
	for _, x := range a {
		for _, y := range b {
			if x.ID == y.ID {
				if x.PartitionKey == nil {
					x.PartitionKey = y.PartitionKey
				}
				out = append(out, x)
				break
			}
		}
	}
	return out
}
