#!/usr/bin/env bash
# Soak benchmark: the real `ralf server` binary on a fresh SQLite data dir, on loopback only,
# under a steady mix of what users do, for DURATION seconds (default 600):
#   - API reads: the task list (default page and ?limit=100), one task, its output, the
#     projects and templates (READS_PER_SEC a second, default 20);
#   - task starts: a bash task from a local git repository printing 200 lines (one every
#     START_EVERY seconds, default 2);
#   - live-log followers: every started task is followed on its WebSocket stream
#     (`/api/project/1/tasks/{id}/stream`) until it ends.
# The request count is bounded (rate times duration, at most MAX_REQUESTS). Every WINDOW
# seconds (default 60) it prints the server's RSS, its high-water mark, and the p50/p99
# latency of the reads in that window; at the end the RSS growth from the first window to
# the last. The baseline is the server's own RSS at start, measured in the same run.
#
#   bench/soak.sh                          # builds target/release/ralf, 10 minutes
#   DURATION=120 WINDOW=20 bench/soak.sh   # a shorter run
#   RALF=/path/to/ralf bench/soak.sh       # measures another build (no build)
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ -z ${RALF:-} ]]; then
    cargo build --release --quiet -p ralf
    RALF=${CARGO_TARGET_DIR:-target}/release/ralf
fi
work=$(mktemp -d)
pid=
cleanup() {
    [[ -n $pid ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# The repository the tasks run from.
git init -q -b main "$work/repo"
printf 'for i in $(seq 200); do echo "line $i of a soak task"; done\n' >"$work/repo/run.sh"
git -C "$work/repo" add run.sh
git -C "$work/repo" -c user.name=bench -c user.email=bench@localhost commit -qm soak

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
RALF_DATA_DIR="$work/data" RALF_INTERFACE=127.0.0.1 RALF_PORT="$port" \
    RALF_ADMIN_PASSWORD=bench-password RALF_LOG=warn "$RALF" server 2>"$work/server.log" &
pid=$!
for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$port/api/ping" >/dev/null && break
    sleep 0.2
done
echo "soak: ralf ($RALF, $(stat -c %s "$RALF") bytes), $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ)"

DURATION=${DURATION:-600} WINDOW=${WINDOW:-60} READS_PER_SEC=${READS_PER_SEC:-20} \
START_EVERY=${START_EVERY:-2} MAX_REQUESTS=${MAX_REQUESTS:-20000} \
    python3 - "$port" "$pid" "$work/repo" <<'PY'
import base64, http.client, json, os, socket, statistics, sys, threading, time

port, pid, repo = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
duration = float(os.environ["DURATION"])
window = float(os.environ["WINDOW"])
reads_per_sec = float(os.environ["READS_PER_SEC"])
start_every = float(os.environ["START_EVERY"])
max_requests = int(os.environ["MAX_REQUESTS"])

def status_kb(field):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])

def mb(kb):
    return kb / 1024

class Api:
    def __init__(self, token=None):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.token = token

    def call(self, method, path, body=None, cookie=None):
        headers = {"content-type": "application/json"}
        if self.token:
            headers["authorization"] = f"Bearer {self.token}"
        if cookie:
            headers["cookie"] = cookie
        data = json.dumps(body).encode() if body is not None else None
        self.conn.request(method, path, data, headers)
        resp = self.conn.getresponse()
        payload = resp.read()
        if resp.status >= 400:
            raise RuntimeError(f"{method} {path}: {resp.status} {payload[:200]!r}")
        return resp, payload

login = Api()
resp, _ = login.call("POST", "/api/auth/login", {"auth": "admin", "password": "bench-password"})
cookie = resp.getheader("set-cookie").split(";")[0]
_, body = login.call("POST", "/api/user/tokens", cookie=cookie)
token = json.loads(body)["id"]
api = Api(token)
api.call("POST", "/api/projects", {"name": "soak"})
api.call("POST", "/api/project/1/keys", {"name": "none", "type": "none"})
api.call("POST", "/api/project/1/repositories",
         {"name": "r", "git_url": f"file://{repo}", "git_branch": "main", "ssh_key_id": 1})
api.call("POST", "/api/project/1/inventory", {"name": "i", "type": "static", "inventory": "localhost"})
api.call("POST", "/api/project/1/templates",
         {"name": "soak", "app": "bash", "playbook": "run.sh", "repository_id": 1, "inventory_id": 1})

def follow(task_id, results):
    """Reads the task's WebSocket stream until its `end` message (a minimal RFC 6455 client)."""
    key = base64.b64encode(os.urandom(16)).decode()
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    s.sendall((f"GET /api/project/1/tasks/{task_id}/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
               f"Sec-WebSocket-Version: 13\r\nAuthorization: Bearer {token}\r\n\r\n").encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += s.recv(4096)
    head, buf = buf.split(b"\r\n\r\n", 1)
    if b" 101 " not in head.split(b"\r\n")[0]:
        results.append("refused")
        return
    lines = 0
    def need(n):
        nonlocal buf
        while len(buf) < n:
            chunk = s.recv(65536)
            if not chunk:
                raise EOFError
            buf += chunk
    try:
        while True:
            need(2)
            opcode, length = buf[0] & 0x0F, buf[1] & 0x7F
            at = 2
            if length == 126:
                need(4); length = int.from_bytes(buf[2:4], "big"); at = 4
            elif length == 127:
                need(10); length = int.from_bytes(buf[2:10], "big"); at = 10
            need(at + length)
            payload, buf = buf[at:at + length], buf[at + length:]
            if opcode == 8:
                break
            if opcode == 1:
                message = json.loads(payload)
                if message.get("type") == "line":
                    lines += 1
                elif message.get("type") == "end":
                    break
        results.append(lines)
    except (EOFError, OSError):
        results.append("cut")
    finally:
        s.close()

reads = ["/api/project/1/tasks", "/api/project/1/tasks?limit=100", "/api/projects",
         "/api/project/1/templates", None, None]
latencies, rows, followers, follow_results = [], [], [], []
requests = 0
start = time.monotonic()
rss_start = status_kb("VmRSS")
print(f"RSS at start {mb(rss_start):.1f} MB; {duration:.0f} s, {reads_per_sec:g} reads/s, "
      f"a task every {start_every:g} s, at most {max_requests} requests")
print(f"{'time':>6} {'RSS MB':>8} {'peak MB':>8} {'reads':>6} {'p50 ms':>8} {'p99 ms':>8} {'tasks':>6}")
next_read = next_start = start
next_window = start + window
last_task = None
n = 0
while time.monotonic() - start < duration and requests < max_requests:
    now = time.monotonic()
    if now >= next_start:
        _, body = api.call("POST", "/api/project/1/tasks", {"template_id": 1})
        last_task = json.loads(body)["id"]
        requests += 1
        t = threading.Thread(target=follow, args=(last_task, follow_results))
        t.start()
        followers.append(t)
        next_start += start_every
    if now >= next_read:
        path = reads[n % len(reads)]
        n += 1
        if path is None:
            path = (f"/api/project/1/tasks/{last_task}" if n % 2 else
                    f"/api/project/1/tasks/{last_task}/output") if last_task else "/api/projects"
        t0 = time.monotonic()
        api.call("GET", path)
        latencies.append((time.monotonic() - t0) * 1000)
        requests += 1
        next_read += 1 / reads_per_sec
    if now >= next_window:
        lat = sorted(latencies)
        p50 = lat[len(lat) // 2] if lat else 0
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else 0
        rss = status_kb("VmRSS")
        rows.append(rss)
        print(f"{now - start:5.0f}s {mb(rss):8.1f} {mb(status_kb('VmHWM')):8.1f} {len(lat):6d} "
              f"{p50:8.2f} {p99:8.2f} {len(followers):6d}", flush=True)
        latencies = []
        next_window += window
    time.sleep(max(0, min(next_read, next_start, next_window) - time.monotonic()))
for t in followers:
    t.join(timeout=60)
ended = [r for r in follow_results if isinstance(r, int)]
print(f"followers: {len(ended)} of {len(followers)} reached the end of their task "
      f"({min(ended, default=0)} to {max(ended, default=0)} lines each), "
      f"{len(follow_results) - len(ended)} cut or refused")
time.sleep(2)
rss_end = status_kb("VmRSS")
if rows:
    print(f"RSS: start {mb(rss_start):.1f} MB, first window {mb(rows[0]):.1f} MB, last window "
          f"{mb(rows[-1]):.1f} MB, after the followers ended {mb(rss_end):.1f} MB "
          f"(growth first to last window: {mb(rows[-1] - rows[0]):+.1f} MB); {requests} requests")
PY
