package main

import (
	"context"
	"encoding/json"
	"runtime"
	"strings"
	"testing"
)

// `rekey version`, `--version` and `version -o json` agree on the version,
// and name the Go and SDK versions.
func TestVersion(t *testing.T) {
	text, _, code := cli(t, context.Background(), "version")
	if code != 0 || !strings.HasPrefix(text, "rekey ") || !strings.Contains(text, runtime.Version()) || !strings.Contains(text, "azcosmos v1.5.0") {
		t.Fatalf("rekey version: exit %d %q", code, text)
	}
	flag, _, code := cli(t, context.Background(), "--version")
	if code != 0 || flag != text {
		t.Fatalf("rekey --version = %q (exit %d), want %q", flag, code, text)
	}
	out, _, code := cli(t, context.Background(), "version", "-o", "json")
	var b buildInfo
	if err := json.Unmarshal([]byte(out), &b); code != 0 || err != nil || b.Version == "" || b.AzCosmos != "v1.5.0" || b.Go != runtime.Version() {
		t.Fatalf("version -o json: exit %d %v %+v\n%s", code, err, b, out)
	}
	if !strings.Contains(text, b.Version) {
		t.Fatalf("text %q and json %q disagree on the version", text, b.Version)
	}
	if _, errOut, code := cli(t, context.Background(), "version", "-o", "yaml"); code != ExitError || !strings.Contains(errOut, "-o") {
		t.Fatalf("version -o yaml: exit %d %s", code, errOut)
	}
}
