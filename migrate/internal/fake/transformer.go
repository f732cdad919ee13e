package fake

import (
	"testing"

	"github.com/rekey-dev/rekey/transform"
)

// Transformer compiles the key spec key for a source keyed on /region, the
// source of every fake migration.
func Transformer(t testing.TB, key string) *transform.Transformer {
	t.Helper()
	spec, err := transform.ParseSpec([]string{key})
	if err != nil {
		t.Fatal(err)
	}
	tr, err := transform.New(spec, []string{"/region"})
	if err != nil {
		t.Fatal(err)
	}
	return tr
}
