#!/usr/bin/env bash
# Benchmark: what an anonymous client costs the server (issue "hardened front door"). Starts the
# real binary on a fresh SQLite data dir and prints:
#   - its resident memory (RSS) at start and after 100 failed logins with 1.9 MB names, and the
#     size of the log they left;
#   - how long a failed login takes for a known account and for an unknown name, and the RSS
#     after 50 concurrent failed logins (each password check holds ~19 MiB while it runs);
#   - how long 50 connections that send nothing, and 50 that never finish their headers, stay
#     open (the idle timeout closes them; the default is 30 s);
#   - its open files limit.
#
#   bench/front-door.sh                       # builds and measures target/release/ralf
#   RALF=/path/to/an/older/ralf bench/front-door.sh   # measures another build (no build)
#   IDLE_TIMEOUT=5 bench/front-door.sh        # sets RALF_HTTP_IDLE_TIMEOUT
#   HOLD_LIMIT=40 bench/front-door.sh         # stop watching connections after 40 s (default 120)
set -euo pipefail
cd "$(dirname "$0")/.."

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
env_args=(RALF_DATA_DIR="$work/data" RALF_PORT="$port" RALF_ADMIN_PASSWORD=bench-password RALF_LOG=info)
[[ -n ${IDLE_TIMEOUT:-} ]] && env_args+=(RALF_HTTP_IDLE_TIMEOUT="$IDLE_TIMEOUT")
env "${env_args[@]}" "$RALF" server 2>"$work/server.log" &
pid=$!
for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$port/api/ping" >/dev/null && break
    sleep 0.2
done
echo "ralf $("$RALF" --version 2>/dev/null | head -1) ($RALF), $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ)"
echo "open files limit (soft/hard): $(awk '/Max open files/ {print $4 "/" $5}' /proc/$pid/limits)"

HOLD_LIMIT=${HOLD_LIMIT:-120} python3 - "$port" "$pid" "$work/server.log" <<'PY'
import json, os, socket, sys, time, urllib.request, urllib.error

port, pid, log = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
base = f"http://127.0.0.1:{port}"
limit = float(os.environ.get("HOLD_LIMIT", "120"))

def rss_mb():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024

def login(name):
    body = json.dumps({"auth": name, "password": "wrong"}).encode()
    req = urllib.request.Request(f"{base}/api/auth/login", body, {"content-type": "application/json"})
    try:
        urllib.request.urlopen(req).close()
        return 204
    except urllib.error.HTTPError as e:
        return e.code

def timed(name):
    start = time.monotonic()
    code = login(name)
    return (time.monotonic() - start) * 1000, code

print(f"RSS at start:                          {rss_mb():7.1f} MB")
statuses = {}
for n in range(100):
    name = f"{n:03d}" + "x" * 1_900_000
    code = login(name)
    statuses[code] = statuses.get(code, 0) + 1
time.sleep(1)
print(f"RSS after 100 logins with 1.9 MB names: {rss_mb():7.1f} MB  (answers: {statuses})")
print(f"log size after them:                   {os.path.getsize(log) / 1e6:7.2f} MB")
# Five wrong passwords for a real account (a sixth would be throttled), five unknown names.
known, unknown = [], []
for n in range(5):
    known.append(timed("admin")[0])
    unknown.append(timed(f"nobody-{n}")[0])
known.sort()
unknown.sort()
print(f"failed login, known account (median):  {known[2]:7.1f} ms")
print(f"failed login, unknown name (median):   {unknown[2]:7.1f} ms")
print(f"RSS after these 10 failed logins:      {rss_mb():7.1f} MB")
import threading
burst = [threading.Thread(target=login, args=(f"burst-{n}",)) for n in range(50)]
for t in burst:
    t.start()
for t in burst:
    t.join()
print(f"RSS after 50 concurrent failed logins:  {rss_mb():7.1f} MB")

def held(partial):
    conns = []
    for _ in range(50):
        s = socket.create_connection(("127.0.0.1", port))
        if partial:
            s.sendall(b"GET /api/ping HTTP/1.1\r\nHost: x\r\n")
        s.setblocking(False)
        conns.append(s)
    start, open_ = time.monotonic(), set(range(50))
    while open_ and time.monotonic() - start < limit:
        for i in list(open_):
            try:
                if conns[i].recv(4096) == b"":
                    open_.discard(i)
            except BlockingIOError:
                pass
            except OSError:
                open_.discard(i)
        time.sleep(0.1)
    took = time.monotonic() - start
    for s in conns:
        s.close()
    if open_:
        return f"{len(open_)} of 50 still open after {took:.0f} s"
    return f"all 50 closed after {took:.1f} s"

print(f"50 idle connections (no bytes):        {held(False)}")
print(f"50 slow connections (partial headers): {held(True)}")
PY
