#!/usr/bin/env bash
# Runs the official Go SDK's own emulator tests (azcosmos v1.5.0,
# emulator_*_test.go, EMULATOR=1 against https://localhost:8081/) against
# `rekey emulator`, and prints "N passed, M failed" with the failing names.
#
# In scope: every test of emulator_cosmos_item_test.go (TestItemIdEncodingComputeGW
# against the compute gateway on localhost:8903, the rest against the routing
# gateway on localhost:8081, as with the official emulator), and of
# emulator_cosmos_{batch,change_feed_split,database,query,read_many_items}_test.go,
# and emulator_cosmos_container_test.go except the vector-search and
# full-text-search tests. Out of scope: AAD, global endpoint manager and
# logging tests.
#
# Usage: scripts/conformance.sh [-v]     (-v shows the go test output)
set -euo pipefail

verbose=0
[[ "${1:-}" == "-v" ]] && verbose=1

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

module=github.com/Azure/azure-sdk-for-go/sdk/data/azcosmos
version=$(go list -m -f '{{.Version}}' "$module")
go mod download "$module@$version"
src=$(go list -m -f '{{.Dir}}' "$module")

work=$(mktemp -d)
emu_pid=""
cleanup() {
  [[ -n "$emu_pid" ]] && kill "$emu_pid" 2>/dev/null && wait "$emu_pid" 2>/dev/null
  chmod -R u+w "$work" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

cp -r "$src" "$work/azcosmos"
chmod -R u+w "$work/azcosmos"

# The in-scope tests, by name.
tests=()
for f in item batch change_feed_split database query read_many_items container; do
  while read -r name; do
    case "$name" in
      TestContainerVectorSearch|TestContainerFullTextSearch) ;;
      *) tests+=("$name") ;;
    esac
  done < <(grep -oE '^func (Test[A-Za-z0-9_]+)' "$work/azcosmos/emulator_cosmos_${f}_test.go" | awk '{print $2}')
done
pattern="^($(IFS='|'; echo "${tests[*]}"))\$"

go build -o "$work/rekey" ./cmd/rekey
"$work/rekey" emulator --addr localhost:8081 --compute-addr localhost:8903 --log-level warn >"$work/emulator.log" 2>&1 &
emu_pid=$!
for _ in $(seq 1 100); do
  if (exec 3<>/dev/tcp/127.0.0.1/8081) 2>/dev/null && (exec 3<>/dev/tcp/127.0.0.1/8903) 2>/dev/null; then break; fi
  sleep 0.1
done

cd "$work/azcosmos"
set +e
EMULATOR=1 GOFLAGS=-mod=mod go test -count=1 -json -timeout 10m -run "$pattern" . >"$work/results.json" 2>"$work/build.log"
set -e

if [[ $verbose == 1 ]]; then
  grep -h '"Action":"output"' "$work/results.json" | sed -E 's/.*"Output":"(.*)"}$/\1/' | sed 's/\\n$//; s/\\t/\t/g; s/\\"/"/g'
fi

passed=$(grep -cE '"Action":"pass","Package":"[^"]*","Test":"Test[^/"]*"' "$work/results.json" || true)
failed_names=$(grep -oE '"Action":"fail","Package":"[^"]*","Test":"Test[^/"]*"' "$work/results.json" | sed -E 's/.*"Test":"([^"]*)"/\1/' | sort -u || true)
failed=$(printf '%s' "$failed_names" | grep -c . || true)
skipped=$(grep -cE '"Action":"skip","Package":"[^"]*","Test":"Test[^/"]*"' "$work/results.json" || true)

echo "conformance (azcosmos $version, ${#tests[@]} tests in scope): $passed passed, $failed failed, $skipped skipped"
if [[ -n "$failed_names" ]]; then
  echo "failing:"
  printf '  %s\n' $failed_names
fi
if [[ $((passed + failed)) -eq 0 ]]; then
  echo "no test ran; go test said:" >&2
  cat "$work/build.log" >&2
  exit 1
fi
if [[ $failed -gt 0 || $passed -ne ${#tests[@]} ]]; then
  echo "emulator log tail:" >&2
  tail -20 "$work/emulator.log" >&2
  exit 1
fi
