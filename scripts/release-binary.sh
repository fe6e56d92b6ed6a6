#!/usr/bin/env bash
# Builds the release binary to ship and splits its debug information off: `ralf` (stripped of
# debug sections, under 40 MB, still with its symbol table, so a panic's backtrace names
# functions) and `ralf.debug` (the file and line tables; the binary names it in its
# `.gnu_debuglink`, so gdb, perf, addr2line and Rust's own backtraces find it beside the
# binary). See docs/operations.md, "Symbols".
#
#   scripts/release-binary.sh            # writes dist/ralf and dist/ralf.debug
#   scripts/release-binary.sh /some/dir  # writes them there
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-dist}
cargo build --release --locked -p ralf
mkdir -p "$out"
built=${CARGO_TARGET_DIR:-target}/release/ralf
objcopy --only-keep-debug "$built" "$out/ralf.debug"
# The link names the file only; tools look for it in the binary's directory.
cp "$built" "$out/ralf"
(cd "$out" && objcopy --strip-debug --add-gnu-debuglink=ralf.debug ralf)
ls -l "$out/ralf" "$out/ralf.debug"
