#!/usr/bin/env bash
# Benchmark: GET /api/project/{id}/tasks (the default page of up to 1,000 tasks, and
# ?limit=100) with 10,000 tasks stored, 64 concurrent connections, on SQLite and on PostgreSQL,
# next to nginx and a static file server on ralf's own HTTP stack serving the very same response
# bodies from files, all in one run. Prints requests per second and latency percentiles from
# wrk, and the md5 of each answer (every build must answer the same bytes); BENCHMARKS.md
# records the figures.
#
#   bench/api-task-list.sh            # 10,000 tasks, 10 s per measurement
#   TASKS=1000000 DURATION=20 bench/api-task-list.sh
#   RALF=/path/to/ralf bench/api-task-list.sh   # another build of the server (no build)
#   RALF="/path/to/before /path/to/after" bench/api-task-list.sh   # several builds, one run
#
# Needs: wrk (installed from Debian if missing), PostgreSQL on 127.0.0.1:5432 (trust auth),
# python3 (for seeding SQLite).
set -euo pipefail
cd "$(dirname "$0")/.."

TASKS=${TASKS:-10000}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-64}
PG_ADMIN_URL=${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
command -v nginx >/dev/null || { apt-get update -qq && apt-get install -y -qq nginx-light; }
target=${CARGO_TARGET_DIR:-target}
if [[ -z ${RALF:-} ]]; then
    cargo build --release --quiet -p ralf -p ralf-bench
    RALF=$target/release/ralf
fi
STATIC=${STATIC:-$target/release/static-files}

work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    psql -q "$PG_ADMIN_URL" -c "DROP DATABASE IF EXISTS ralf_bench WITH (FORCE)" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_ping() {
    for _ in $(seq 1 100); do curl -sf "$1/api/ping" >/dev/null && return 0; sleep 0.1; done
    echo "server at $1 did not start" >&2; exit 1
}

# Starts ralf on database URL $1; sets URL and TOKEN; makes project 1 with template 1.
start_ralf() {
    local db=$1 port
    port=$(free_port)
    URL="http://127.0.0.1:$port"
    RALF_LOG=warn "$RALF" server --db "$db" --listen "127.0.0.1:$port" \
        --admin-login bench --admin-password bench-password >"$work/server-$port.log" 2>&1 &
    pids+=($!)
    wait_ping "$URL"
    curl -sf -c "$work/cookies" -H 'content-type: application/json' \
        -d '{"auth":"bench","password":"bench-password"}' "$URL/api/auth/login"
    TOKEN=$(curl -sf -b "$work/cookies" -X POST "$URL/api/user/tokens" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
    api POST /api/projects '{"name":"bench"}' >/dev/null
    api POST /api/project/1/keys '{"name":"none","type":"none"}' >/dev/null
    api POST /api/project/1/repositories '{"name":"r","git_url":"file:///tmp/r","git_branch":"main","ssh_key_id":1}' >/dev/null
    api POST /api/project/1/inventory '{"name":"i","type":"static","inventory":"localhost"}' >/dev/null
    api POST /api/project/1/templates '{"name":"deploy","app":"bash","playbook":"run.sh","repository_id":1,"inventory_id":1}' >/dev/null
}

api() {
    curl -sf -X "$1" -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' \
        ${3:+-d "$3"} "$URL$2"
}

# The SQL that stores $TASKS finished tasks of template 1, one statement.
seed_sql() {
    local series=$1
    cat <<SQL
INSERT INTO tasks (project_id, template_id, status, user_id, playbook, environment, message,
                   params, created, start, "end")
SELECT 1, 1, 'success', 1, '', '{}', 'seeded task ' || n, '{}', $2, $2, $2 FROM $series;
SQL
}

# Runs wrk against $1 and prints "label rps p50 p99".
measure() {
    local label=$1 url=$2 out
    out=$(wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --latency -H "authorization: Bearer $TOKEN" "$url")
    local rps p50 p99 errors
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
    p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
    errors=$(awk '/Non-2xx/ {print $5}' <<<"$out")
    printf '%-44s %10s req/s   p50 %8s   p99 %8s %s\n' "$label" "$rps" "$p50" "$p99" "${errors:+  NON-2xx: $errors}"
}

measure_all() {
    local backend=$1
    for query in "" "?limit=100"; do
        local path="/api/project/1/tasks$query" body_file
        body_file="$work/static/$backend${query:+-limit100}.json"
        mkdir -p "$work/static"
        api GET "$path" >"$body_file"
        local size md5
        size=$(stat -c %s "$body_file")
        md5=$(md5sum "$body_file" | cut -c1-8)
        measure "$backend GET /tasks$query (${size} B, md5 $md5)" "$URL$path"
    done
}

echo "ralf $(git rev-parse --short HEAD), $TASKS tasks, $CONNECTIONS connections, ${DURATION}s each, $(nproc) cores"

builds=($RALF)
for n in "${!builds[@]}"; do
RALF=${builds[$n]}
echo "server: $RALF"

# --- SQLite
start_ralf "sqlite://$work/bench-$n.db"
python3 - "$work/bench-$n.db" "$TASKS" <<'PY'
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
measure_all sqlite
kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true

# --- PostgreSQL
psql -q "$PG_ADMIN_URL" -c "DROP DATABASE IF EXISTS ralf_bench WITH (FORCE)" -c "CREATE DATABASE ralf_bench" >/dev/null
PG_URL="${PG_ADMIN_URL%/*}/ralf_bench"
start_ralf "$PG_URL"
seed_sql "generate_series(1, $TASKS) AS n" "'2026-01-01T00:00:00Z'::timestamptz" | psql -q "$PG_URL" >/dev/null
psql -q "$PG_URL" -c "ANALYZE tasks" >/dev/null
measure_all postgres
kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true
done

# --- the same bodies from nginx (the baseline of issue 12), and from a static file server on
# the same HTTP stack as ralf
port=$(free_port)
cat >"$work/nginx.conf" <<NGINX
daemon off;
worker_processes auto;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $work/nginx-body;
    server { listen 127.0.0.1:$port; root $work/static; default_type application/json; }
}
NGINX
chmod o+rx "$work" "$work/static"  # nginx workers read as www-data
nginx -c "$work/nginx.conf" &
pids+=($!)
sleep 0.3
for f in sqlite.json sqlite-limit100.json; do
    measure "nginx $f ($(stat -c %s "$work/static/$f") B)" "http://127.0.0.1:$port/$f"
done
kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true
if [[ ! -x $STATIC ]]; then
    echo "static file server: $STATIC not built (cargo build --release -p ralf-bench), skipped"
    exit 0
fi
port=$(free_port)
"$STATIC" "$work/static" "$port" &
pids+=($!)
sleep 0.3
for f in sqlite.json sqlite-limit100.json; do
    measure "static file $f ($(stat -c %s "$work/static/$f") B)" "http://127.0.0.1:$port/$f"
done
