#!/usr/bin/env bash
# Builds the release binary to ship and splits its symbols off: `ralf` (stripped of its symbol
# table and debug sections; it says so if that is not under 40 MB) and `ralf.debug` (the symbol
# table and the file and line tables; the binary names it in its `.gnu_debuglink`, so Rust's
# own panic backtraces, gdb, perf and addr2line find it beside the binary). See
# docs/operations.md, "Symbols".
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
(cd "$out" && objcopy --strip-all --add-gnu-debuglink=ralf.debug ralf)
ls -l "$out/ralf" "$out/ralf.debug"
size=$(stat -c %s "$out/ralf")
if ((size >= 40 * 1000 * 1000)); then
    echo "warning: $out/ralf is $size bytes; the shipped binary is meant to stay under 40 MB" >&2
fi
