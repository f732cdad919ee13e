package migrate

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"

	"github.com/rekey-dev/rekey/transform"
)

// Digest is a content hash of an item.
type Digest [16]byte

func (d Digest) String() string { return fmt.Sprintf("%x", d[:]) }

// ContentDigest hashes an item's content canonically: top-level system
// properties and the names in skip are ignored, object keys are sorted, and
// numbers are compared as the float64 the service stores (1.0, 1 and 1e0
// are one number). Two items have the same digest exactly when a client
// reading them sees the same data.
func ContentDigest(body []byte, skip map[string]bool) (Digest, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return Digest{}, fmt.Errorf("canonical form: %w", err)
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return Digest{}, fmt.Errorf("canonical form: not a JSON object")
	}
	for k := range obj {
		if transform.IsSystemProperty(k) || skip[k] {
			delete(obj, k)
		}
	}
	var buf bytes.Buffer
	writeCanonical(&buf, obj)
	sum := sha256.Sum256(buf.Bytes())
	var d Digest
	copy(d[:], sum[:])
	return d, nil
}

// SameContent reports whether two item bodies hold the same content.
func SameContent(a, b []byte) bool {
	da, err := ContentDigest(a, nil)
	if err != nil {
		return false
	}
	db, err := ContentDigest(b, nil)
	return err == nil && da == db
}

func writeCanonical(buf *bytes.Buffer, v any) {
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		buf.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				buf.WriteByte(',')
			}
			writeString(buf, k)
			buf.WriteByte(':')
			writeCanonical(buf, x[k])
		}
		buf.WriteByte('}')
	case []any:
		buf.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				buf.WriteByte(',')
			}
			writeCanonical(buf, e)
		}
		buf.WriteByte(']')
	case json.Number:
		f, err := strconv.ParseFloat(string(x), 64)
		if err != nil || math.IsInf(f, 0) {
			buf.WriteString(string(x))
			return
		}
		if f == 0 {
			f = 0 // -0 reads as 0
		}
		buf.WriteString(strconv.FormatFloat(f, 'g', -1, 64))
	case string:
		writeString(buf, x)
	case bool:
		buf.WriteString(strconv.FormatBool(x))
	case nil:
		buf.WriteString("null")
	}
}

func writeString(buf *bytes.Buffer, s string) {
	b, _ := json.Marshal(s)
	buf.Write(b)
}

// LastTS reads an item's top-level "_ts" (seconds since the Unix epoch),
// which the service writes last; 0 when it has none.
func LastTS(item []byte) int64 {
	i := bytes.LastIndex(item, []byte(`"_ts":`))
	if i < 0 {
		return 0
	}
	rest := item[i+len(`"_ts":`):]
	j := 0
	for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
		j++
	}
	ts, _ := strconv.ParseInt(string(rest[:j]), 10, 64)
	return ts
}
