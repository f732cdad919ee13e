// Package transform computes the new partition key of an item and the item
// to write into the target container. It is pure (no I/O, no clock, no
// randomness), works on raw JSON bytes, and never loses data quietly: an item
// it cannot transform is an *Error with a kind, the item's id, the field and
// a reason, which the pipeline dead-letters.
//
// # Use
//
// The pipeline parses the --key specs once, builds one Transformer and
// calls it for every item, from any number of goroutines:
//
//	spec, err := transform.ParseSpec([]string{"/tenantId", "/pk={createdAt|yyyyMM}"})
//	t, err := transform.New(spec, []string{"/region"}) // the SOURCE key paths
//	t.TargetPaths()                                     // ["/tenantId", "/pk"], a MultiHash key
//	res, err := t.Apply(item)                           // res.ID, res.Key, res.SourceKey, res.Item
//
// ApplyTo does the same into a caller-owned Result, reusing its buffers.
//
// # Key specs
//
// Each spec is PATH (a natural key) or PATH=TEMPLATE (a synthetic key); one
// to three specs make a hierarchical key, in that order.
//
// A PATH is a Cosmos DB partition key path: "/" followed by property names,
// such as /customerId or /address/city. Names are case-sensitive (Id is not
// id). A name with spaces or any of / = * ? [ ] { } is quoted: /"zip code" or
// /'zip code', with \" (or \') and \\ as escapes. JSON-pointer escapes (~0,
// ~1) are not used by Cosmos DB and mean themselves. A key path cannot start
// at a system property, the id is never a synthetic target, and two key
// paths cannot be equal or lie one inside the other.
//
// A natural key is the field's value with its JSON type: string, number
// (float64, with the original text kept in Value.Raw), bool or null. A
// missing field is ErrMissingField; an object or an array is ErrWrongType.
//
// A TEMPLATE is literal text with placeholders, and its value is always a
// string:
//
//	{tenantId}                 a field, by dotted path from the item's root: {address.city}
//	{"zip code"}               a quoted name (needed for names with . | ? { } / or spaces)
//	{createdAt|yyyyMM}         a field piped through functions, left to right
//	{region?unknown}           a default, used when the field is missing or null
//	{{ and }}                  a literal { and }
//
// A placeholder's text is a string's decoded value, or a number's or bool's
// JSON text exactly as the item has it (1.0 stays "1.0"). A missing field
// with no default is ErrMissingField; null with no default, an object or an
// array is ErrWrongType. A default is literal text (no braces) and is the
// placeholder's final text: functions are not applied to it. A template
// needs at least one placeholder, because a constant key would put every
// item in one logical partition.
//
// # Functions
//
//	yyyy, yyyyMM, yyyyMMdd, yyyyMMddHH
//	    The UTC date of an ISO-8601 string (YYYY-MM-DD, optionally followed
//	    by T hh:mm[:ss[.fraction]] and Z or an offset ±hh[:mm]; no offset
//	    means UTC), or of an epoch number (such as _ts): a magnitude below
//	    1e11 is seconds, otherwise milliseconds. Anything else is
//	    ErrInvalidValue.
//	lower, upper
//	    Unicode case mapping (Go's tables, rune by rune).
//	hash:N
//	    A stable bucket 0..N-1 (1 <= N <= 2^32), written in decimal: the
//	    64-bit FNV-1a hash of the text's UTF-8 bytes, modulo N. See HashBucket.
//
// # Items
//
// Keys are evaluated against the SOURCE item, so {_ts|yyyyMM} works although
// _ts is not in the target item. The target item is the source item with the
// system properties (_rid, _self, _etag, _attachments, _ts, _lsn; top level
// only) removed and every other member copied byte for byte, numbers and
// string escapes included, and the synthetic key properties added at the end
// of the object that receives them, creating intermediate objects for nested
// paths. If the property already exists with the same string the item is
// left as it is (transforming a target item again changes nothing); any
// other value, or a non-object on the way, is ErrKeyConflict.
//
// The item must be a JSON object (ErrNotObject otherwise) of well-formed
// UTF-8 JSON (ErrInvalidJSON), with a non-empty string id of at most
// MaxIDBytes bytes (ErrInvalidID). A key value longer than MaxKeyBytes is
// ErrKeyTooLarge. A field the transformer reads or writes that appears twice
// in one object is ErrDuplicateField. The 2 MB item limit is the writer's to
// check, with Result.Size.
package transform
