#!/usr/bin/env bash
# Runs the JavaScript conformance suite (scripts/conformance-js/: Microsoft's
# @azure/cosmos, pinned in its package.json, through its public API) against
# `rekey emulator` on two free loopback ports (routing and compute gateway)
# with the admin API, and prints "conformance-js: N passed, M failed".
# Needs Go, node 20 or later and npm; installs the SDK with npm into
# scripts/conformance-js/node_modules (ignored by git).
#
# Usage: scripts/conformance-js.sh [name-filter]
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
suite="$root/scripts/conformance-js"

work=$(mktemp -d)
emu_pid=""
cleanup() {
  if [[ -n "$emu_pid" ]]; then
    kill "$emu_pid" 2>/dev/null || true
    wait "$emu_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

echo "installing @azure/cosmos $(node -p "require('$suite/package.json').dependencies['@azure/cosmos']") with npm"
(cd "$suite" && npm install --no-audit --no-fund --loglevel=error >"$work/npm.log" 2>&1) || { cat "$work/npm.log" >&2; exit 1; }

echo "re-capturing the SDK's bulk request (internal/emulator/testdata/bulk-request-js.golden.json)"
go test -count=1 -run 'TestBulkRequestGoldenJS' ./internal/emulator/ >"$work/golden.log" 2>&1 || { cat "$work/golden.log" >&2; exit 1; }

go build -o "$work/rekey" ./cmd/rekey

free_port() {
  node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}
main_port=$(free_port)
compute_port=$(free_port)
while [[ "$compute_port" == "$main_port" ]]; do compute_port=$(free_port); done

"$work/rekey" emulator --addr "127.0.0.1:$main_port" --compute-addr "127.0.0.1:$compute_port" \
  --admin --split-delay 100ms --log-level warn >"$work/emulator.log" 2>&1 &
emu_pid=$!
ready=0
for _ in $(seq 1 100); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$main_port") 2>/dev/null && (exec 3<>"/dev/tcp/127.0.0.1/$compute_port") 2>/dev/null; then
    ready=1; break
  fi
  sleep 0.1
done
if [[ $ready == 0 ]]; then
  echo "rekey emulator did not start:" >&2; cat "$work/emulator.log" >&2; exit 1
fi

set +e
REKEY_ENDPOINT="https://127.0.0.1:$main_port/" REKEY_COMPUTE_ENDPOINT="https://127.0.0.1:$compute_port/" \
  NODE_TLS_REJECT_UNAUTHORIZED=0 NODE_NO_WARNINGS=1 node "$suite/suite.js" "$@"
status=$?
set -e
if [[ $status -ne 0 ]]; then
  echo "emulator log tail:" >&2
  tail -20 "$work/emulator.log" >&2
fi
exit $status
