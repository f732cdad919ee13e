// Package plan is rekey plan: it samples the source and estimates what a
// key spec would do before anything is copied: the items it cannot
// transform, the new key's cardinality and largest values against the
// logical partition limit, the spread over the target's physical
// partitions, and the copy's RU and duration (Estimate).
package plan
