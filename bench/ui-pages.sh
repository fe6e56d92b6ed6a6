#!/usr/bin/env bash
# Benchmark: how fast the web UI's pages answer at the server with 10,000 tasks stored (issue
# "the web UI": each HTML page in < 20 ms). Starts the real binary on a fresh SQLite database,
# stores $TASKS finished tasks, then times (curl, $REQUESTS sequential requests each, median and
# slowest) the HTML page of the task history, one client module, the API call the history page
# makes for its first page of 50 tasks, and /api/ping as the baseline of the same HTTP stack.
#
#   bench/ui-pages.sh                                  # builds and measures target/release/ralf
#   RALF=/path/to/ralf TASKS=100000 bench/ui-pages.sh  # another build, more tasks
set -euo pipefail
cd "$(dirname "$0")/.."

TASKS=${TASKS:-10000}
REQUESTS=${REQUESTS:-200}
if [[ -z ${RALF:-} ]]; then
    cargo build --release --quiet -p ralf
    RALF=target/release/ralf
fi
work=$(mktemp -d)
pid=
cleanup() {
    [[ -n $pid ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
URL="http://127.0.0.1:$port"
RALF_LOG=warn RALF_DATA_DIR="$work/data" "$RALF" server --db "sqlite://$work/bench.db" --listen "127.0.0.1:$port" \
    --admin-login bench --admin-password bench-password >"$work/server.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do curl -sf "$URL/api/ping" >/dev/null && break; sleep 0.1; done
curl -sf -c "$work/cookies" -H 'content-type: application/json' \
    -d '{"auth":"bench","password":"bench-password"}' "$URL/api/auth/login"
api() {
    curl -sf -b "$work/cookies" -X "$1" -H 'content-type: application/json' ${3:+-d "$3"} "$URL$2"
}
api POST /api/projects '{"name":"bench"}' >/dev/null
api POST /api/project/1/keys '{"name":"none","type":"none"}' >/dev/null
api POST /api/project/1/repositories '{"name":"r","git_url":"file:///tmp/r","git_branch":"main","ssh_key_id":1}' >/dev/null
api POST /api/project/1/templates '{"name":"deploy","app":"bash","playbook":"run.sh","repository_id":1}' >/dev/null
python3 - "$work/bench.db" "$TASKS" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], timeout=30)
db.execute("""INSERT INTO tasks (project_id, template_id, status, user_id, playbook, environment,
              message, params, created, start, "end")
              WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
              SELECT 1, 1, 'success', 1, '', '{}', 'seeded task ' || i, '{}',
                     '2026-01-01T00:00:00+00:00', '2026-01-01T00:00:00+00:00', '2026-01-01T00:00:01+00:00' FROM n""",
           (int(sys.argv[2]),))
db.commit()
PY

# Prints "label  median  slowest" of $REQUESTS sequential GETs of $2 (with the session cookie).
timed() {
    local label=$1 path=$2
    for _ in $(seq 1 "$REQUESTS"); do
        curl -s -o /dev/null -b "$work/cookies" -w '%{time_total}\n' "$URL$path"
    done | sort -n | awk -v label="$label" '{ t[NR] = $1 } END {
        printf "%-48s median %7.2f ms   slowest %7.2f ms\n", label, t[int((NR + 1) / 2)] * 1000, t[NR] * 1000 }'
}

echo "ralf $(git rev-parse --short HEAD), $TASKS tasks, $REQUESTS requests each, $(nproc) cores"
timed "GET /api/ping (baseline)" /api/ping
timed "GET /project/1/history (the HTML page)" /project/1/history
timed "GET /ui/app.js (a client module)" /ui/app.js
curl -sf -b "$work/cookies" "$URL/api/project/1/tasks?limit=50" | python3 -c "import json,sys; n=len(json.load(sys.stdin)); assert n == 50, n"
timed "GET /api/project/1/tasks?limit=50 (its data)" '/api/project/1/tasks?limit=50'
