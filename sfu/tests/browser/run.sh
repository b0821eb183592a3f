#!/bin/sh
# Browser end-to-end test of the SFU: builds the meeting example, installs the test's npm
# modules, and has two, then five, headless Chromium pages meet through it on loopback,
# then a headless Firefox page with a Chromium page.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
target=${CARGO_TARGET_DIR:-$here/../../../target}

cargo build --quiet -p sfu --example meeting
cd "$here"
npm ci --no-audit --no-fund --silent
SFU_MEETING_BIN="$target/debug/examples/meeting" node meeting.test.mjs "$@"
