package cosmos

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/Azure/azure-sdk-for-go/sdk/data/azcosmos"

	"github.com/rekey-dev/rekey/migrate"
	"github.com/rekey-dev/rekey/transform"
)

// ErrUndefinedKey is wrapped by the error of an operation given a key with
// an undefined component (a source item without the key field).
//
// The service keeps such items under the "undefined" key, which the
// x-ms-documentdb-partitionkey header writes as {}; azcosmos v1.5.0's
// PartitionKey cannot express it (it holds only strings, numbers, booleans
// and null), so no point operation can address these items. ReadItem and
// Read find them with a cross-partition query on the id instead; writes and
// key-scoped queries refuse them with this error, which callers should
// answer with an unscoped query (target keys are never undefined).
var ErrUndefinedKey = errors.New("partition key has an undefined component, which azcosmos cannot address")

// partitionKey converts a key to the SDK's, one component per path.
func partitionKey(key migrate.Key) (azcosmos.PartitionKey, error) {
	if len(key) == 0 {
		return azcosmos.PartitionKey{}, errors.New("partition key: no components")
	}
	pk := azcosmos.NewPartitionKey()
	for i, v := range key {
		switch v.Type {
		case transform.TypeString:
			pk = pk.AppendString(v.Str)
		case transform.TypeNumber:
			pk = pk.AppendNumber(v.Num)
		case transform.TypeBool:
			pk = pk.AppendBool(v.Bool)
		case transform.TypeNull:
			pk = pk.AppendNull()
		case transform.TypeUndefined:
			return azcosmos.PartitionKey{}, fmt.Errorf("partition key %s, component %d: %w", key.String(), i+1, ErrUndefinedKey)
		default:
			return azcosmos.PartitionKey{}, fmt.Errorf("partition key %s, component %d: unknown type %v", key.String(), i+1, v.Type)
		}
	}
	return pk, nil
}

// addressable reports whether the gateway can address id in a URL. It
// cannot when the id holds '/', '\' or '#' (the gateway reads them as path
// structure), '%' (it decodes the path twice), a control character, or
// trailing whitespace (it trims path segments): a point operation on such an
// id answers 401 (the signed link no longer matches) or 400, although
// creating it works, because a create carries the id in the body.
// See azcosmos's TestItemIdEncodingRoutingGW.
func addressable(id string) bool {
	if id == "" || strings.ContainsAny(id, `/\#%`) {
		return false
	}
	for _, r := range id {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return false
		}
	}
	last, _ := utf8.DecodeLastRuneInString(id)
	return !unicode.IsSpace(last)
}

// propertyRef is the SQL expression of a partition key path: c["a"]["b"]
// for /a/b or /"a"/b, quoted so that any property name works.
func propertyRef(alias, path string) (string, error) {
	parsed, err := transform.ParsePath(path)
	if err != nil {
		return "", fmt.Errorf("partition key path %q: want /name[/name...]: %w", path, err)
	}
	var b strings.Builder
	b.WriteString(alias)
	for _, n := range parsed.Segments() {
		b.WriteByte('[')
		q, _ := json.Marshal(n) // a JSON string is a SQL string literal
		b.Write(q)
		b.WriteByte(']')
	}
	return b.String(), nil
}

// keyFilter is a WHERE condition that matches key on the container's key
// paths, undefined components included, with one parameter per defined
// component.
func keyFilter(paths []string, key migrate.Key) (string, []azcosmos.QueryParameter, error) {
	if len(paths) != len(key) {
		return "", nil, fmt.Errorf("partition key %s: the container's key has %d path(s)", key.String(), len(paths))
	}
	var conds []string
	var params []azcosmos.QueryParameter
	for i, v := range key {
		ref, err := propertyRef("c", paths[i])
		if err != nil {
			return "", nil, err
		}
		switch v.Type {
		case transform.TypeUndefined:
			conds = append(conds, "NOT IS_DEFINED("+ref+")")
		case transform.TypeNull:
			conds = append(conds, "IS_NULL("+ref+")")
		default:
			name := "@k" + strconv.Itoa(i)
			conds = append(conds, ref+" = "+name)
			params = append(params, azcosmos.QueryParameter{Name: name, Value: v.Any()})
		}
	}
	return strings.Join(conds, " AND "), params, nil
}
