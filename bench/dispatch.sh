#!/usr/bin/env bash
# Dispatch latency and throughput as the user waits (issue 12, rows 4 and 5), from outside the
# process: the real `ralf server` binary on a fresh SQLite data dir with the tasks' sandbox as
# by default, the repository served by `git daemon` at a git:// URL, tasks created with POST
# and their final status awaited on /api/ws (driver: crates/ralf-bench/src/bin/dispatch-bench.rs).
# Prints p50/p99 of POST -> final status with a per-phase breakdown, and tasks/s of 1,000 tasks
# 8 at a time, each next to its baselines (bash echo.sh forked directly, and the same in a
# bubblewrap sandbox like a task's; 8 of them in parallel), with the CPU a task takes on the whole
# machine and whose it is (the server's threads, git daemon, the bench's client, the rest), and
# the CPU of one sandboxed run: the machine's cores over it bound the throughput.
#
#   bench/dispatch.sh                          # builds target/release/ralf and the driver
#   RALF=/path/to/ralf bench/dispatch.sh       # another build of ralf (main's, for a before)
#   PROFILE=debug bench/dispatch.sh            # debug builds (quicker to build)
#   N=200 TASKS=1000 PARALLEL=8 bench/dispatch.sh
set -euo pipefail
cd "$(dirname "$0")/.."
profile=${PROFILE:-release}
flag=--release
[[ $profile == debug ]] && flag=
target=${CARGO_TARGET_DIR:-target}
cargo build $flag --quiet -p ralf -p ralf-bench --bin ralf --bin dispatch-bench
RALF=${RALF:-$target/$profile/ralf}
echo "ralf $(git rev-parse --short HEAD), binary $RALF, $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ)"
"$target/$profile/dispatch-bench" "$RALF" "${N:-200}" "${TASKS:-1000}" "${PARALLEL:-8}"
