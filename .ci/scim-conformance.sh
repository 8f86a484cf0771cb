#!/usr/bin/env bash
# Runs scim2-tester (through scim2-cli's `scim test`) against a real onramp
# server on the given database URL. Every check must report SUCCESS.
# Usage: .ci/scim-conformance.sh DATABASE_URL  (sqlite://… or postgres://…)
set -euo pipefail
cd "$(dirname "$0")/.."
db_url="$1"
venv="${SCIM_VENV:-target/scim-venv}"
if [ ! -x "$venv/bin/scim" ]; then
    python3 -m venv "$venv"
    # Every package pinned: a new release of scim2-models once began refusing
    # what an older one accepted, and CI failed on nothing we had changed.
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r .ci/scim-requirements.txt
fi
bin=target/debug/onramp
[ -x "$bin" ] || cargo build --quiet
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export ONRAMP_DATABASE__URL="$db_url" ONRAMP_HTTP__BIND="127.0.0.1:$port" \
       ONRAMP_HTTP__PUBLIC_URL="http://127.0.0.1:$port" ONRAMP_LOG__LEVEL=warn \
       ONRAMP_MAIL__DIR="$work/mail"
org=$("$bin" org create --name "Conformance $(date +%s%N)" | python3 -c 'import sys,json; print(json.load(sys.stdin)["id"])')
token=$("$bin" scim-token create --org "$org" 2>/dev/null)
"$bin" > "$work/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
    sleep 0.1
done
SCIM_CLI_HEADERS="Authorization: Bearer $token" \
    "$venv/bin/scim" --url "http://127.0.0.1:$port/scim/v2" test > "$work/report.txt" 2>&1 || true
passed=$(grep -c '^SUCCESS' "$work/report.txt" || true)
failed=$(grep -cE '^(ERROR|CRITICAL|WARNING)' "$work/report.txt" || true)
if [ "$failed" != "0" ] || [ "$passed" -lt 100 ]; then
    grep -vE '^SUCCESS|^  Success' "$work/report.txt" | head -100
    echo "scim2-tester on ${db_url%%:*}: $passed passed, $failed failed"
    exit 1
fi
echo "scim2-tester on ${db_url%%:*}: $passed passed, $failed failed"
