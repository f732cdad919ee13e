package transform

// Placeholder describes one {field|fn?default} of a spec's templates.
type Placeholder struct {
	// Key is the index of the key (the --key, in order) whose template
	// holds the placeholder; Index its position among that template's
	// placeholders, from 0.
	Key, Index int
	// Field is the dotted field name, as the spec writes it canonically.
	Field string
	// Default is the text used when the field is missing or null, when
	// HasDefault.
	Default    string
	HasDefault bool
}

// Placeholders returns the spec's placeholders in order: key by key, left
// to right in each template. Result.DefaultsUsed numbers them this way. Two
// specs that differ only in defaults have the same placeholders at the same
// positions.
func (s *Spec) Placeholders() []Placeholder {
	var out []Placeholder
	for k, key := range s.keys {
		if key.Template == nil {
			continue
		}
		i := 0
		for _, p := range key.Template.parts {
			if p.ph == nil {
				continue
			}
			out = append(out, Placeholder{Key: k, Index: i, Field: p.ph.fieldName(), Default: p.ph.def, HasDefault: p.ph.hasDef})
			i++
		}
	}
	return out
}

// DefaultSet is a set of placeholders by their position in
// Spec.Placeholders: bit i is placeholder i. A spec's 64th and later
// placeholders share bit 63, so a set that holds 63 holds "one of them".
type DefaultSet uint64

// defaultBit is the bit of placeholder i.
func defaultBit(i int) DefaultSet { return 1 << min(i, 63) }

// Has reports whether placeholder i is in the set (for i >= 63: whether
// one of the placeholders from the 64th on is).
func (s DefaultSet) Has(i int) bool { return s&defaultBit(i) != 0 }
