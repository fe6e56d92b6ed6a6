#!/usr/bin/env bash
# Refreshes the screenshots of the web UI in docs/ui/: runs the browser test (tests/ui of
# ralf-server), which saves a PNG of each page it visits when RALF_UI_SCREENSHOTS names a
# directory. Needs chromium, chromium-driver and the Python environment (scripts/test installs
# them).
set -euo pipefail
cd "$(dirname "$0")/.."
export RALF_VENV="${RALF_VENV:-$PWD/.venv}"
RALF_UI_SCREENSHOTS="$PWD/docs/ui" cargo test -p ralf-server --test ui --locked
ls docs/ui
