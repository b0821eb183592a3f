#!/usr/bin/env bash
# Runs the browser end-to-end tests: installs playwright-core from the lock
# file, then runs every test file under tests/ with Node's test runner.
# Each test starts its own `dangwu serve --demo` and headless Chromium.
#
# Environment:
#   DANGWU_BIN     server binary, relative to the repository root
#                  [default: target/debug/dangwu]
#   CHROMIUM_PATH  Chromium executable [default: /usr/bin/chromium]
set -euo pipefail
cd "$(dirname "$0")"

export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
if [[ -f package-lock.json ]]; then
    npm ci --no-audit --no-fund --loglevel=error
else
    npm install --no-audit --no-fund --loglevel=error
fi

binary="${DANGWU_BIN:-target/debug/dangwu}"
[[ "$binary" = /* ]] || binary="../../$binary"
if [[ ! -x "$binary" ]]; then
    echo "dangwu binary not found at $binary; run cargo build first or set DANGWU_BIN" >&2
    exit 1
fi

exec node --test --test-concurrency=1 --test-reporter=spec tests/
