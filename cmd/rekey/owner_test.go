package main

import (
	"strings"
	"testing"
)

// Each cutover has its own name, so that one started again after a crash
// under the same hostname and pid never takes the crashed one's request
// and fences for its own (it must wait for that one's writes).
func TestEachCutoverHasItsOwnName(t *testing.T) {
	a, b := cutoverOwner(), cutoverOwner()
	if a == b {
		t.Fatalf("two cutovers of one process are both named %q", a)
	}
	for _, name := range []string{a, b} {
		if !strings.HasPrefix(name, owner()+"/") {
			t.Fatalf("cutover name %q does not start with the worker's %q", name, owner())
		}
	}
}
