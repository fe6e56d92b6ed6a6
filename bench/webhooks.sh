#!/usr/bin/env bash
# Benchmark: webhook receipt -> task `waiting` (issue "triggers and news"). Starts the real
# binary on a fresh SQLite data dir (or PostgreSQL with `postgres`), makes a project whose
# integration checks GitHub's signature, has two matchers and three extract values, and sends
# it signed push deliveries one after the other over one keep-alive connection. The delivery's
# 204 comes once the task is stored as `waiting`, so its latency, seen by the sender, is
# receipt -> waiting. Baselines in the same run: `POST /tasks` (the same insert, with a session
# token) and `GET /api/ping` (the HTTP floor). The server runs with use_remote_runner and no
# runner, so the tasks stay queued and nothing else competes for the two cores.
#
#   bench/webhooks.sh                    # builds target/release/ralf, SQLite, 1000 deliveries
#   bench/webhooks.sh postgres           # the same on PostgreSQL (RALF_TEST_PG_URL)
#   RALF=/path/to/ralf N=300 bench/webhooks.sh   # another build (no build), 300 deliveries
set -euo pipefail
cd "$(dirname "$0")/.."

backend=${1:-sqlite}
if [[ -z ${RALF:-} ]]; then
    cargo build --release --quiet -p ralf
    RALF=${CARGO_TARGET_DIR:-target}/release/ralf
fi
work=$(mktemp -d)
pid=
database=
pg_url=${RALF_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}
cleanup() {
    [[ -n $pid ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
    [[ -n $database ]] && psql -q "$pg_url" -c "DROP DATABASE IF EXISTS $database" >/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
db_env=()
if [[ $backend == postgres ]]; then
    database="ralf_bench_$$"
    psql -q "$pg_url" -c "CREATE DATABASE $database" >/dev/null
    db_env=(RALF_DB="${pg_url%/*}/$database")
fi
env -i PATH="$PATH" HOME="${HOME:-/tmp}" RALF_LOG=warn "${db_env[@]}" \
    RALF_DATA_DIR="$work/data" RALF_PORT="$port" \
    SEMAPHORE_ADMIN=bench SEMAPHORE_ADMIN_PASSWORD=bench-password \
    SEMAPHORE_ADMIN_NAME=Bench SEMAPHORE_ADMIN_EMAIL=bench@example.test \
    SEMAPHORE_USE_REMOTE_RUNNER=true \
    "$RALF" server 2>"$work/server.log" &
pid=$!
for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$port/api/ping" >/dev/null && break
    sleep 0.2
done
echo "ralf $(git rev-parse --short HEAD) ($RALF), $backend, $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ)"

N=${N:-1000} python3 - "$port" <<'PY'
import hashlib, hmac, http.client, json, os, sys, time, uuid

port, n = int(sys.argv[1]), int(os.environ["N"])
conn = http.client.HTTPConnection("127.0.0.1", port)

def call(method, path, body=None, headers=None):
    data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
    conn.request(method, path, body=data, headers=headers or {})
    r = conn.getresponse()
    text = r.read()
    is_json = r.headers.get("Content-Type", "").startswith("application/json")
    return r.status, r.headers, (json.loads(text) if is_json and text.strip() else None)

status, headers, _ = call("POST", "/api/auth/login", {"auth": "bench", "password": "bench-password"},
                          {"Content-Type": "application/json"})
cookie = headers["Set-Cookie"].split(";")[0]
_, _, token = call("POST", "/api/user/tokens", None, {"Cookie": cookie})
auth = {"Authorization": f"Bearer {token['id']}", "Content-Type": "application/json"}
def create(path, body):
    status, _, obj = call("POST", path, body, auth)
    assert status in (200, 201), (path, status, obj)
    return obj["id"] if obj else None

p = create("/api/projects", {"name": "bench"})
base = f"/api/project/{p}"
create(f"{base}/keys", {"name": "none", "type": "none"})
keys = call("GET", f"{base}/keys", None, auth)[2]
none_key = keys[0]["id"]
repo = create(f"{base}/repositories", {"name": "r", "git_url": "https://example.invalid/r.git",
                                        "git_branch": "main", "ssh_key_id": none_key})
inv = create(f"{base}/inventory", {"name": "i", "type": "static", "inventory": "localhost"})
tpl = create(f"{base}/templates", {"name": "deploy", "app": "bash", "playbook": "deploy.sh",
                                   "repository_id": repo, "inventory_id": inv})
secret = "bench webhook secret"
key = create(f"{base}/keys", {"name": "hook", "type": "login_password",
                              "login_password": {"password": secret}})
i = create(f"{base}/integrations", {"name": "push", "template_id": tpl, "auth_method": "github",
                                    "auth_secret_id": key})
for m in [{"match_type": "header", "method": "equals", "key": "X-GitHub-Event", "value": "push"},
          {"match_type": "body", "method": "equals", "key": "ref", "value": "refs/heads/main"}]:
    create(f"{base}/integrations/{i}/matchers", m)
for v in [{"key": "ref", "variable": "REF"}, {"key": "pusher.name", "variable": "PUSHER"},
          {"key": "repository.full_name", "variable": "REPOSITORY"}]:
    create(f"{base}/integrations/{i}/values", v)
_, _, alias = call("POST", f"{base}/integrations/{i}/aliases", None, auth)
hook = f"/api/integrations/{alias['alias']}"

body = json.dumps({"ref": "refs/heads/main", "after": "9fceb02d0ae598e95dc970b74767f19372d61af8",
                   "pusher": {"name": "octocat"}, "repository": {"full_name": "acme/site"},
                   "commits": [{"id": "9fceb02", "message": "x" * 2000}]}).encode()
signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()

def timed(send, count):
    times = []
    for k in range(count):
        t0 = time.perf_counter()
        send(k)
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    q = lambda f: times[min(len(times) - 1, int(f * len(times)))]
    return q(0.5), q(0.9), q(0.99), times[-1]

def delivery(k):
    status, headers, _ = call("POST", hook, body, {
        "Content-Type": "application/json", "X-GitHub-Event": "push",
        "X-GitHub-Delivery": str(uuid.uuid4()), "X-Hub-Signature-256": signature})
    assert status == 204 and headers["X-Semaphore-Task-ID"], (status, headers)

def post_task(k):
    status, _, _ = call("POST", f"{base}/tasks", {"template_id": tpl, "environment": {"REF": "refs/heads/main"}}, auth)
    assert status == 201, status

def ping(k):
    status, _, _ = call("GET", "/api/ping")
    assert status == 200

timed(delivery, 20); timed(post_task, 20); timed(ping, 20)  # warm up
print(f"{n} signed deliveries (GitHub HMAC, 2 matchers, 3 extract values, {len(body)} B body), one at a time")
for label, send in [("webhook receipt -> task waiting (204)", delivery),
                    ("baseline: POST /tasks (201)", post_task),
                    ("baseline: GET /api/ping", ping)]:
    p50, p90, p99, worst = timed(send, n)
    print(f"  {label:40} p50 {p50:6.2f} ms  p90 {p90:6.2f} ms  p99 {p99:6.2f} ms  max {worst:6.2f} ms")
PY
