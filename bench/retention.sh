#!/usr/bin/env bash
# Benchmark: the retention sweep and `ralf admin vacuum` with 1,000,000 finished tasks stored
# (each with one chunk of 10 output lines), on SQLite and on PostgreSQL. The template keeps its
# newest 1,000 tasks, so the sweep deletes 999,000 tasks with their output, 200 a statement.
# Prints the database's size before, after the sweep and after the vacuum, and the time of
# each. The baseline, in the same run on a copy of the same database: one `DELETE` statement
# removing the same tasks (what a sweep without batches would do; it holds the writer for its
# whole time, while the sweep holds it for one batch at a time).
#
#   bench/retention.sh                      # builds and measures target/release/ralf
#   RALF=/path/to/ralf bench/retention.sh   # measures another build (no build)
#   TASKS=100000 bench/retention.sh
#
# Needs: PostgreSQL on 127.0.0.1:5432 (trust auth), python3, psql.
set -euo pipefail
cd "$(dirname "$0")/.."

TASKS=${TASKS:-1000000}
KEEP=${KEEP:-1000}
PG_ADMIN_URL=${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
if [[ -z "${RALF:-}" ]]; then
    cargo build --release --quiet -p ralf
    RALF=target/release/ralf
fi

work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    for db in ralf_retention ralf_retention_base; do
        psql -q "$PG_ADMIN_URL" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
    done
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_ping() {
    for _ in $(seq 1 100); do curl -sf "$1/api/ping" >/dev/null && return 0; sleep 0.1; done
    echo "server at $1 did not start" >&2; exit 1
}

api() {
    curl -sf -X "$1" -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' \
        ${3:+-d "$3"} "$URL$2"
}

# Makes project 1 with template 1 keeping its newest $KEEP tasks on database $1, then stops.
prepare() {
    local db=$1 port
    port=$(free_port)
    URL="http://127.0.0.1:$port"
    RALF_LOG=warn "$RALF" server --db "$db" --data-dir "$work/data" --listen "127.0.0.1:$port" \
        --admin-login bench --admin-password bench-password >"$work/server.log" 2>&1 &
    local pid=$!
    wait_ping "$URL"
    curl -sf -c "$work/cookies" -H 'content-type: application/json' \
        -d '{"auth":"bench","password":"bench-password"}' "$URL/api/auth/login"
    TOKEN=$(curl -sf -b "$work/cookies" -X POST "$URL/api/user/tokens" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
    api POST /api/projects '{"name":"bench"}' >/dev/null
    api POST /api/project/1/keys '{"name":"none","type":"none"}' >/dev/null
    api POST /api/project/1/repositories '{"name":"r","git_url":"file:///tmp/r","git_branch":"main","ssh_key_id":1}' >/dev/null
    api POST /api/project/1/inventory '{"name":"i","type":"static","inventory":"localhost"}' >/dev/null
    api POST /api/project/1/templates '{"name":"deploy","app":"bash","playbook":"run.sh","repository_id":1,"inventory_id":1}' >/dev/null
    api PUT /api/project/1/templates/1/retention "{\"keep_tasks\":$KEEP}" >/dev/null
    kill "$pid"; wait "$pid" 2>/dev/null || true
}

# Seconds taken by the command "$@".
timed() {
    local start end
    start=$(date +%s.%N)
    "$@" >"$work/timed.out"
    end=$(date +%s.%N)
    python3 -c "print(f'{$end - $start:.1f}')"
}

mib() { python3 -c "print(f'{$1 / 1048576:.0f} MiB')"; }

LINES="'ok: [host-01] => changed' || char(10) || 'TASK [deploy : copy files] ******************' || char(10) || 'ok: [host-02]' || char(10) || 'changed: [host-03]' || char(10) || 'PLAY RECAP *********************************' || char(10) || 'host-01 : ok=12 changed=3 unreachable=0 failed=0' || char(10) || 'host-02 : ok=12 changed=0 unreachable=0 failed=0' || char(10) || 'host-03 : ok=12 changed=1 unreachable=0 failed=0' || char(10) || 'finished in 42 s' || char(10) || 'done'"

echo "ralf $(git rev-parse --short HEAD) ($RALF), $TASKS finished tasks with 10 output lines each, keep $KEEP, $(nproc) cores"

# --- SQLite
db="$work/sqlite/ralf.db"
prepare "sqlite://$db"
python3 - "$db" "$TASKS" "$LINES" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], timeout=30)
n, lines = int(sys.argv[2]), sys.argv[3]
db.execute(f"""INSERT INTO tasks (project_id, template_id, status, user_id, playbook, environment,
              message, params, created, start, "end")
              WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
              SELECT 1, 1, 'success', 1, '', '{{}}', 'seeded task ' || i, '{{}}',
                     '2026-01-01T00:00:00+00:00', '2026-01-01T00:00:00+00:00', '2026-01-01T00:00:01+00:00' FROM n""", (n,))
db.execute(f"""INSERT INTO task_output (task_id, first_line, line_count, time, offsets, output)
              SELECT id, 0, 10, '2026-01-01T00:00:00+00:00', '0,1,2,3,4,5,6,7,8,9', {lines} FROM tasks""")
db.commit()
db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
PY
cp "$db" "$work/baseline.db"
size_before=$(stat -c %s "$db")
seconds=$(timed "$RALF" admin vacuum --db "sqlite://$db")
echo "sqlite:   $(cat "$work/timed.out")"
echo "sqlite:   file $(mib "$size_before") before, $(mib "$(stat -c %s "$db")") after ralf admin vacuum; whole command ${seconds} s"
base=$(timed python3 - "$work/baseline.db" "$KEEP" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], timeout=30)
db.execute("PRAGMA foreign_keys = ON")
db.execute("""DELETE FROM tasks WHERE id IN (SELECT id FROM tasks WHERE template_id = 1
              ORDER BY id DESC LIMIT -1 OFFSET ?)""", (int(sys.argv[2]),))
db.commit()
PY
)
echo "sqlite:   baseline, one DELETE of the same tasks (writer held throughout): ${base} s"

# --- PostgreSQL
psql -q "$PG_ADMIN_URL" -c "DROP DATABASE IF EXISTS ralf_retention WITH (FORCE)" -c "CREATE DATABASE ralf_retention" >/dev/null
PG_URL="${PG_ADMIN_URL%/*}/ralf_retention"
prepare "$PG_URL"
PG_LINES=${LINES//char(10)/chr(10)}
psql -q "$PG_URL" >/dev/null <<SQL
INSERT INTO tasks (project_id, template_id, status, user_id, playbook, environment, message,
                   params, created, start, "end")
SELECT 1, 1, 'success', 1, '', '{}', 'seeded task ' || n, '{}', '2026-01-01T00:00:00Z',
       '2026-01-01T00:00:00Z', '2026-01-01T00:00:01Z' FROM generate_series(1, $TASKS) AS n;
INSERT INTO task_output (task_id, first_line, line_count, time, offsets, output)
SELECT id, 0, 10, '2026-01-01T00:00:00Z', '0,1,2,3,4,5,6,7,8,9', $PG_LINES FROM tasks;
VACUUM ANALYZE;
SQL
psql -q "$PG_ADMIN_URL" -c "DROP DATABASE IF EXISTS ralf_retention_base WITH (FORCE)" \
    -c "CREATE DATABASE ralf_retention_base TEMPLATE ralf_retention" >/dev/null
pg_size() { psql -tAq "$PG_ADMIN_URL" -c "SELECT pg_database_size('$1')"; }
size_before=$(pg_size ralf_retention)
seconds=$(timed "$RALF" admin vacuum --full --db "$PG_URL")
echo "postgres: $(cat "$work/timed.out")"
echo "postgres: database $(mib "$size_before") before, $(mib "$(pg_size ralf_retention)") after ralf admin vacuum --full; whole command ${seconds} s"
base=$(timed psql -q "${PG_ADMIN_URL%/*}/ralf_retention_base" -c \
    "DELETE FROM tasks WHERE id IN (SELECT id FROM tasks WHERE template_id = 1 ORDER BY id DESC OFFSET $KEEP)")
echo "postgres: baseline, one DELETE of the same tasks (writer held throughout): ${base} s"
