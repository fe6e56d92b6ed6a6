#!/usr/bin/env bash
# Task benchmarks of issue "task execution", each next to its baseline measured in the same run:
# dispatch latency, throughput, log ingest (with peak memory), live latency, ansible.
#
#   bench/tasks.sh              # everything, default sizes
#   bench/tasks.sh dispatch     # one of: dispatch throughput ingest live ansible runners sandbox
#   bench/tasks.sh sandbox      # dispatch and ansible with the tasks' sandbox off, then on
#
# Needs the Python environment of scripts/python-env.sh (ansible-playbook) for `ansible`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/python-env.sh >/dev/null
cargo build --release --quiet -p ralf -p ralf-bench
BENCH=target/release/task-bench
which=${1:-all}
echo "ralf $(git rev-parse --short HEAD), $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ)"
run() { [[ $which == all || $which == "$1" ]]; }
run dispatch && $BENCH dispatch 200
run throughput && $BENCH throughput 1000 8
run ingest && $BENCH ingest target/release/ralf 1000000
run live && $BENCH live 500
run ansible && PATH="$PWD/.venv/bin:$PATH" ANSIBLE_PYTHON_INTERPRETER="$PWD/.venv/bin/python" $BENCH ansible 5
run runners && $BENCH runners target/release/ralf 500 8
if [[ $which == sandbox ]]; then
    for mode in off on; do
        RALF_BENCH_SANDBOX=$mode $BENCH dispatch 100
        RALF_BENCH_SANDBOX=$mode PATH="$PWD/.venv/bin:$PATH" \
            ANSIBLE_PYTHON_INTERPRETER="$PWD/.venv/bin/python" $BENCH ansible 5
    done
fi
