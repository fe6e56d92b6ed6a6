#!/usr/bin/env bash
# Fuzzes the whole API from its own /api/openapi.json: a real `ralf server` (the built binary)
# on a throwaway data directory, on SQLite and then on PostgreSQL, is sent generated requests,
# valid and invalid, as the admin (API token); any 5xx answer fails the run.
#
#   tests/fuzz/run.sh                      # both databases, FUZZ_EXAMPLES examples per operation
#   FUZZ_EXAMPLES=50 tests/fuzz/run.sh sqlite
#
# The server runs with use_remote_runner, and no runner is registered: tasks the fuzzer creates
# are stored and queued but never run, so no generated repository, playbook or script ever
# reaches git or a shell on this machine. Left out: only the five operations that would log the
# fuzzer out or take its admin rights (see below).
# Needs: python3 (venv), curl; PostgreSQL at RALF_TEST_PG_URL (default
# postgres://postgres@127.0.0.1:5432/postgres) for the PostgreSQL run.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"

examples="${FUZZ_EXAMPLES:-10}"
backends=("$@")
[[ ${#backends[@]} -gt 0 ]] || backends=(sqlite postgres)
pg_url="${RALF_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}"

scripts/python-env.sh
venv="$root/.venv"
req="$root/tests/fuzz/requirements.txt"
stamp="$venv/.ralf-fuzz-requirements.sha256"
want="$(sha256sum "$req" | cut -d' ' -f1)"
if [[ "$(cat "$stamp" 2>/dev/null || true)" != "$want" || ! -x "$venv/bin/schemathesis" ]]; then
    "$venv/bin/python" -m pip install --disable-pip-version-check --no-input -q -r "$req"
    echo "$want" >"$stamp"
fi

cargo build --locked -q -p ralf --bin ralf
target="${CARGO_TARGET_DIR:-$root/target}"
ralf="$target/debug/ralf"

work="$(mktemp -d)"
server_pid=""
database=""
cleanup() {
    [[ -n "$server_pid" ]] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    [[ -n "$database" ]] && psql -q "$pg_url" -c "DROP DATABASE IF EXISTS $database" >/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

free_port() {
    "$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

fuzz() {
    local backend="$1" data="$work/$1" port db_env=()
    port="$(free_port)"
    if [[ "$backend" == postgres ]]; then
        database="ralf_fuzz_$$"
        psql -q "$pg_url" -c "CREATE DATABASE $database" >/dev/null
        db_env=(RALF_DB="${pg_url%/*}/$database")
    fi
    env -i PATH="$PATH" HOME="${HOME:-/tmp}" RALF_LOG=warn "${db_env[@]}" \
        RALF_DATA_DIR="$data" RALF_PORT="$port" \
        SEMAPHORE_ADMIN=fuzz SEMAPHORE_ADMIN_PASSWORD=fuzz-password \
        SEMAPHORE_ADMIN_NAME=Fuzz SEMAPHORE_ADMIN_EMAIL=fuzz@example.test \
        SEMAPHORE_USE_REMOTE_RUNNER=true \
        "$ralf" server 2>"$work/$backend-server.log" &
    server_pid=$!
    local url="http://127.0.0.1:$port"
    for _ in $(seq 1 100); do
        curl -fs "$url/api/ping" >/dev/null && break
        sleep 0.1
    done
    curl -fs -c "$work/cookies" -H 'Content-Type: application/json' \
        -d '{"auth": "fuzz", "password": "fuzz-password"}' "$url/api/auth/login"
    local token
    token="$(curl -fs -b "$work/cookies" -X POST "$url/api/user/tokens" |
        "$venv/bin/python" -c 'import json, sys; print(json.load(sys.stdin)["id"])')"
    # One of each object, with id 1, for the routes of project 1 to find (see schemathesis.toml).
    seed() {
        curl -fsS -o /dev/null -H "Authorization: Bearer $token" \
            -H 'Content-Type: application/json' -d "$2" "$url/api$1"
    }
    local p=/project/1
    seed /projects '{"name": "fuzz"}'
    seed $p/keys '{"name": "none", "type": "none", "project_id": 1}'
    seed $p/repositories '{"name": "repo", "project_id": 1, "git_url": "https://example.invalid/r.git", "git_branch": "main", "ssh_key_id": 1}'
    seed $p/inventory '{"name": "inv", "project_id": 1, "type": "static", "inventory": "localhost"}'
    seed $p/environment '{"name": "env", "project_id": 1, "json": "{}", "env": "{}"}'
    seed $p/views '{"title": "view", "project_id": 1, "position": 0}'
    seed $p/templates '{"name": "tpl", "project_id": 1, "app": "bash", "playbook": "run.sh", "repository_id": 1, "inventory_id": 1, "environment_id": 1}'
    seed $p/schedules '{"name": "sch", "project_id": 1, "template_id": 1, "cron_format": "0 0 1 1 *", "active": false}'
    seed $p/tasks '{"template_id": 1}'
    seed $p/integrations '{"name": "hook", "project_id": 1, "template_id": 1}'
    seed $p/integrations/1/matchers '{"name": "m", "match_type": "header", "method": "equals", "key": "X-Event", "value": "push"}'
    seed $p/integrations/1/values '{"name": "v", "value_source": "header", "key": "X-Event", "variable": "EVENT"}'
    seed $p/integrations/1/aliases '{}'
    seed /runners '{"name": "runner"}'
    seed $p/runners '{"name": "project runner"}'

    echo "fuzz-api: $backend, $examples examples per operation"
    local status=0
    # Expiring the token, deleting the admin or changing its password would only log the
    # fuzzer out for the rest of the run (401s), not find anything.
    # Run from the throwaway directory: the tool keeps a cache where it runs.
    (cd "$work" && "$venv/bin/schemathesis" --config-file "$root/tests/fuzz/schemathesis.toml" \
        run "$url/api/openapi.json" \
        --checks not_a_server_error \
        --header "Authorization: Bearer $token" \
        --max-examples "$examples" --workers 1 --seed 1 \
        --phases examples,coverage,fuzzing \
        --generation-database none \
        --exclude-name 'DELETE /api/user/tokens/{api_token_id}' \
        --exclude-name 'DELETE /api/users/{user_id}' \
        --exclude-name 'POST /api/auth/logout' \
        --exclude-name 'POST /api/users/{user_id}/password' \
        --exclude-name 'PUT /api/users/{user_id}' \
        --suppress-health-check all --no-color \
        --report junit --report-dir "$work/report") || status=$?
    if grep -q "request failed" "$work/$backend-server.log"; then
        echo "fuzz-api: the server logged internal errors:" >&2
        grep "request failed" "$work/$backend-server.log" | sort | uniq -c | sort -rn | head -20 >&2
        status=1
    fi
    kill "$server_pid" && wait "$server_pid" || true
    server_pid=""
    if [[ -n "$database" ]]; then
        psql -q "$pg_url" -c "DROP DATABASE IF EXISTS $database" >/dev/null
        database=""
    fi
    return "$status"
}

failed=0
for backend in "${backends[@]}"; do
    fuzz "$backend" || failed=1
done
exit "$failed"
