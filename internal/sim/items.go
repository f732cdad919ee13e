package sim

import (
	"encoding/json"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/rekey-dev/rekey/migrate"
)

// itemAddr is an item's address in a container: its key and id.
func itemAddr(key migrate.Key, id string) string { return keyText(key) + "/" + id }

// keyText renders a key as JSON.
func keyText(key migrate.Key) string {
	parts := make([]string, len(key))
	for i, v := range key {
		parts[i] = v.String()
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// itemFields are the fields of an item body the simulation reads.
type itemFields struct {
	ID     string          `json:"id"`
	Tenant json.RawMessage `json:"tenant"`
	V      int64           `json:"v"`
	App    bool            `json:"app"`
}

func fieldsOf(body []byte) itemFields {
	fieldsMemo.Lock()
	defer fieldsMemo.Unlock()
	if f, ok := fieldsMemo.m[string(body)]; ok {
		return f
	}
	var f itemFields
	_ = json.Unmarshal(body, &f)
	if len(fieldsMemo.m) >= maxFieldsMemo {
		clear(fieldsMemo.m)
	}
	fieldsMemo.m[string(body)] = f
	return f
}

// fieldsMemo remembers the fields of the bodies fieldsOf decoded: the
// checks read the same bodies again and again (a tenth of a simulation's
// time went to decoding them). Results do not depend on it.
var fieldsMemo = struct {
	sync.Mutex
	m map[string]itemFields
}{m: map[string]itemFields{}}

const maxFieldsMemo = 1 << 16

// idOf reads an item's id.
func idOf(body []byte) string { return fieldsOf(body).ID }

// identityOf is the source identity an item (in the source, or copied
// into the target) belongs to: its id and source key (the tenant).
func identityOf(body []byte) string {
	f := fieldsOf(body)
	return f.ID + "|" + string(f.Tenant)
}

// versionOf is an item's application version, for the trace.
func versionOf(body []byte) string {
	if len(body) == 0 {
		return "-"
	}
	return "v" + strconv.FormatInt(fieldsOf(body).V, 10)
}

// deadIdentity is the source identity of a dead letter.
func deadIdentity(dl migrate.DeadLetter) string {
	var key []json.RawMessage
	tenant := ""
	if json.Unmarshal(dl.SourceKey, &key) == nil && len(key) == 1 {
		tenant = string(key[0])
	}
	return dl.SourceID + "|" + tenant
}

// sortItems orders items by address, for deterministic choices.
func sortItems(items []migrate.Item) {
	sort.Slice(items, func(i, j int) bool { return itemAddr(items[i].Key, items[i].ID) < itemAddr(items[j].Key, items[j].ID) })
}
