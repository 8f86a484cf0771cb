#!/usr/bin/env bash
# End-to-end tests in headless Chromium against the real onramp binary: the
# test OpenID provider itself (idp.test.mjs), the invitation pages
# (pages.test.mjs), registration and sign-in through the provider
# (sso.test.mjs), and the paths for an email that already has an account:
# migrate, separate, blocked (paths.test.mjs). Needs Node 20+ and Chromium
# at /usr/bin/chromium (apt-get install chromium); a missing browser is a
# failure, never a skip.
#   ONRAMP_BIN                 the binary (default target/debug/onramp, built if missing)
#   ONRAMP_CHROMIUM            the browser (default /usr/bin/chromium)
#   ONRAMP_BROWSER_ARTIFACTS   where screenshots and server logs go (default
#                              target/browser-artifacts, kept by CI)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"

chromium="${ONRAMP_CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$chromium" ]; then
    echo "error: Chromium not found at $chromium; install it (apt-get install -y chromium) or set ONRAMP_CHROMIUM" >&2
    exit 1
fi
if ! command -v node >/dev/null || ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)'; then
    echo "error: Node.js 20 or newer is required" >&2
    exit 1
fi

bin="${ONRAMP_BIN:-target/debug/onramp}"
if [ ! -x "$bin" ]; then
    if [ -n "${ONRAMP_BIN:-}" ]; then
        echo "error: ONRAMP_BIN=$ONRAMP_BIN is not an executable file" >&2
        exit 1
    fi
    cargo build --quiet --bin onramp
fi
export ONRAMP_BIN="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"
export ONRAMP_CHROMIUM="$chromium"
export ONRAMP_BROWSER_ARTIFACTS="${ONRAMP_BROWSER_ARTIFACTS:-$root/target/browser-artifacts}"
mkdir -p "$ONRAMP_BROWSER_ARTIFACTS"
export ONRAMP_BROWSER_ARTIFACTS="$(cd "$ONRAMP_BROWSER_ARTIFACTS" && pwd)"

cd tests/browser
[ -d node_modules ] || npm ci --no-audit --no-fund
exec node --test --test-reporter=spec idp.test.mjs pages.test.mjs sso.test.mjs paths.test.mjs
