#!/usr/bin/env bash
# Benchmark: what a task page with a long log costs the browser (issue "the web UI": a log of
# 1,000,000 lines stays smooth and the tab under 150 MB). Starts the real binary on a fresh
# SQLite database, runs a bash task printing $LINES lines of 95 characters, opens its page in
# headless chromium (through chromedriver), scrolls to the middle, searches, follows the end
# again, then collects garbage and reports the page's JavaScript heap (Performance.getMetrics)
# and the resident memory of its renderer process, with an empty page of the UI as baseline.
#
#   RALF=/path/to/ralf bench/ui-log-memory.sh      # default: builds and uses the debug binary
#   LINES=100000 bench/ui-log-memory.sh
set -euo pipefail
cd "$(dirname "$0")/.."

LINES=${LINES:-1000000}
if [[ -z ${RALF:-} ]]; then
    cargo build --quiet -p ralf
    RALF=${CARGO_TARGET_DIR:-target}/debug/ralf
fi
work=$(mktemp -d)
repo=$(mktemp -d) # outside the server's directories, which it refuses to clone from
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null || true; done
    rm -rf "$work" "$repo"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

git init -q -b main "$repo"
printf "seq -f '%%095.0f' 1 %s\n" "$LINES" >"$repo/flood.sh"
git -C "$repo" add flood.sh
git -C "$repo" -c user.name=bench -c user.email=bench@localhost commit -qm flood

port=$(free_port)
URL="http://127.0.0.1:$port"
RALF_LOG=warn RALF_DATA_DIR="$work/data" "$RALF" server --db "sqlite://$work/bench.db" --listen "127.0.0.1:$port" \
    --admin-login bench --admin-password bench-password >"$work/server.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do curl -sf "$URL/api/ping" >/dev/null && break; sleep 0.1; done
curl -sf -c "$work/cookies" -H 'content-type: application/json' \
    -d '{"auth":"bench","password":"bench-password"}' "$URL/api/auth/login"
api() {
    curl -sf -b "$work/cookies" -X "$1" -H 'content-type: application/json' ${3:+-d "$3"} "$URL$2"
}
api POST /api/projects '{"name":"bench"}' >/dev/null
api POST /api/project/1/keys '{"name":"none","type":"none"}' >/dev/null
api POST /api/project/1/repositories "{\"name\":\"r\",\"git_url\":\"file://$repo\",\"git_branch\":\"main\",\"ssh_key_id\":1}" >/dev/null
api POST /api/project/1/templates '{"name":"flood","app":"bash","playbook":"flood.sh","repository_id":1}' >/dev/null
task=$(api POST /api/project/1/tasks '{"template_id":1}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
until api GET "/api/project/1/tasks/$task" | grep -q '"status":"success"'; do
    api GET "/api/project/1/tasks/$task" | grep -q '"status":"error"' && { cat "$work/server.log"; exit 1; }
    sleep 1
done
cookie=$(awk '$6 == "semaphore" { print $7 }' "$work/cookies")

driver_port=$(free_port)
chromedriver --port="$driver_port" >/dev/null 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$driver_port/status" >/dev/null && break; sleep 0.1; done

python3 - "http://127.0.0.1:$driver_port" "$URL" "$cookie" "$task" "$LINES" <<'PY'
import json, subprocess, sys, time, urllib.request

driver, url, cookie, task, lines = sys.argv[1:6]

def call(method, path, body=None):
    req = urllib.request.Request(driver + path, method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"content-type": "application/json"})
    value = json.load(urllib.request.urlopen(req, timeout=300))["value"]
    if isinstance(value, dict) and "error" in value:
        raise SystemExit(f"webdriver {path}: {value['error']}: {value.get('message')}")
    return value

caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
    "binary": "/usr/bin/chromium",
    "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--window-size=1280,900", "--lang=en-US"]}}}}
s = "/session/" + call("POST", "/session", caps)["sessionId"]
script = lambda js: call("POST", s + "/execute/sync", {"script": js, "args": []})
cdp = lambda cmd, params={}: call("POST", s + "/goog/cdp/execute", {"cmd": cmd, "params": params})

def wait(what, js, patience=900):
    deadline = time.time() + patience
    while time.time() < deadline:
        if script(js):
            return
        time.sleep(0.2)
    raise SystemExit(f"timed out waiting for {what}")

def renderer_memory():
    """The largest renderer process of this browser (the page's own): resident and private MiB."""
    out = subprocess.run(["ps", "-eo", "pid=,rss=,args="], capture_output=True, text=True).stdout
    pid, rss = max(((int(l.split()[0]), int(l.split()[1])) for l in out.splitlines()
                    if "--type=renderer" in l and "chromium" in l), key=lambda p: p[1])
    private = 0
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith(("Private_Clean:", "Private_Dirty:")):
                private += int(line.split()[1])
    return rss / 1024, private / 1024

def measure(label):
    cdp("HeapProfiler.collectGarbage")
    time.sleep(1)
    cdp("HeapProfiler.collectGarbage")
    metrics = {m["name"]: m["value"] for m in cdp("Performance.getMetrics")["metrics"]}
    rss, private = renderer_memory()
    print(f"  {label:<50} JS heap {metrics['JSHeapUsedSize'] / 2**20:6.1f} MiB   renderer: resident {rss:6.1f} MiB, private {private:6.1f} MiB   DOM nodes {int(metrics['Nodes'])}")

call("POST", s + "/url", {"url": url + "/ui/favicon.svg"})
call("POST", s + "/cookie", {"cookie": {"name": "semaphore", "value": cookie, "path": "/"}})
cdp("Performance.enable")
call("POST", s + "/url", {"url": url + "/tokens"})
wait("the tokens page", "return !!document.querySelector('main h1')")
print(f"ui log memory: task of {int(lines):,} lines of 95 characters, headless chromium")
measure("baseline: the API tokens page")
call("POST", s + "/url", {"url": f"{url}/project/1/tasks/{task}"})
t0 = time.time()
wait("the end of the log", "return [...document.querySelectorAll('.log .line:not(.pending)')].some(l => l.textContent.endsWith('%095d'))" % int(lines))
print(f"  {'task page opened, the end of the log in view after':<50} {time.time() - t0:6.2f} s")
measure("task page at the end of the log")
script("const l = document.querySelector('.log'); l.scrollTop = l.scrollHeight / 2; return true")
t0 = time.time()
wait("the middle", "return document.querySelectorAll('.log .line').length > 0 && !document.querySelector('.log .line.pending')")
print(f"  {'scrolled to the middle, its lines in view after':<50} {time.time() - t0:6.2f} s")
needle = "%095d" % (int(lines) // 4)
script(f"const i = document.querySelector('.log-search input'); i.value = '{needle}'; i.form.requestSubmit(); return true")
t0 = time.time()
wait("the search", "return !!document.querySelector('.log .line.current')")
print(f"  {f'search found line {int(lines) // 4:,} after':<50} {time.time() - t0:6.2f} s")
script("[...document.querySelectorAll('button')].find(b => b.textContent === 'Follow').click(); return true")
wait("the end again", "return [...document.querySelectorAll('.log .line:not(.pending)')].some(l => l.textContent.endsWith('%095d'))" % int(lines))
measure("after scrolling, searching and following the end")
call("DELETE", s)
PY
