#!/usr/bin/env bash
# Benchmark: downloading a long task log. The real `ralf server` binary on a fresh SQLite data
# dir runs one bash task printing LINES lines (default 1,000,000) of 100 bytes; then
# `GET …/tasks/{id}/output` (JSON) and `GET …/tasks/{id}/raw_output` (text) are each downloaded
# RUNS times (default 3) with curl, next to nginx serving the very same bytes from files, in the
# same run. Prints the median time of each, the ratio to nginx, and the server's peak RSS while
# serving (its high-water mark, reset through /proc/PID/clear_refs before each download).
#
#   bench/output.sh                        # builds target/release/ralf
#   LINES=100000 RUNS=5 bench/output.sh
#   RALF=/path/to/ralf bench/output.sh     # another build (no build)
set -euo pipefail
cd "$(dirname "$0")/.."

LINES=${LINES:-1000000}
RUNS=${RUNS:-3}
command -v nginx >/dev/null || { apt-get update -qq && apt-get install -y -qq nginx-light; }
if [[ -z ${RALF:-} ]]; then
    cargo build --release --quiet -p ralf
    RALF=${CARGO_TARGET_DIR:-target}/release/ralf
fi
work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

git init -q -b main "$work/repo"
# 99 characters and the newline: 100 bytes a line.
printf 'yes "%s" | head -n %d\n' "$(printf 'x%.0s' $(seq 99))" "$LINES" >"$work/repo/run.sh"
git -C "$work/repo" add run.sh
git -C "$work/repo" -c user.name=bench -c user.email=bench@localhost commit -qm output

port=$(free_port)
URL="http://127.0.0.1:$port"
RALF_DATA_DIR="$work/data" RALF_INTERFACE=127.0.0.1 RALF_PORT="$port" \
    RALF_ADMIN_PASSWORD=bench-password RALF_LOG=warn "$RALF" server 2>"$work/server.log" &
server=$!
pids+=("$server")
for _ in $(seq 100); do curl -sf "$URL/api/ping" >/dev/null && break; sleep 0.2; done
curl -sf -c "$work/cookies" -H 'content-type: application/json' \
    -d '{"auth":"admin","password":"bench-password"}' "$URL/api/auth/login"
TOKEN=$(curl -sf -b "$work/cookies" -X POST "$URL/api/user/tokens" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
api() {
    curl -sf -X "$1" -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' \
        ${3:+-d "$3"} "$URL$2"
}
api POST /api/projects '{"name":"bench"}' >/dev/null
api POST /api/project/1/keys '{"name":"none","type":"none"}' >/dev/null
api POST /api/project/1/repositories "{\"name\":\"r\",\"git_url\":\"file://$work/repo\",\"git_branch\":\"main\",\"ssh_key_id\":1}" >/dev/null
api POST /api/project/1/inventory '{"name":"i","type":"static","inventory":"localhost"}' >/dev/null
api POST /api/project/1/templates '{"name":"long","app":"bash","playbook":"run.sh","repository_id":1,"inventory_id":1}' >/dev/null
task=$(api POST /api/project/1/tasks '{"template_id":1}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
while :; do
    status=$(api GET "/api/project/1/tasks/$task" | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])')
    [[ $status == success ]] && break
    [[ $status == error || $status == stopped ]] && { echo "the task ended $status" >&2; exit 1; }
    sleep 0.5
done

hwm() { awk '/VmHWM/ {printf "%.0f", $2 / 1024}' "/proc/$1/status"; }
# Prints the median of RUNS downloads of $1 (seconds) and saves the body to $2.
timed() {
    local url=$1 out=$2 times=()
    for _ in $(seq "$RUNS"); do
        times+=("$(curl -sf -H "authorization: Bearer $TOKEN" -o "$out" -w '%{time_total}' "$url")")
    done
    printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}

mkdir -p "$work/static"
echo "output download: a task of $LINES lines of 100 bytes, SQLite, $RUNS runs each (median), $(nproc) cores"
echo "ralf $(git rev-parse --short HEAD) ($RALF), $(date -u +%Y-%m-%dT%H:%MZ); server RSS before: $(awk '/VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/$server/status") MiB"
declare -A ralf_time peak
for what in output raw_output; do
    echo 5 >"/proc/$server/clear_refs"
    ralf_time[$what]=$(timed "$URL/api/project/1/tasks/$task/$what" "$work/static/$what")
    peak[$what]=$(hwm "$server")
done

nport=$(free_port)
cat >"$work/nginx.conf" <<NGINX
daemon off;
worker_processes auto;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $work/nginx-body;
    server { listen 127.0.0.1:$nport; root $work/static; default_type application/octet-stream; }
}
NGINX
chmod o+rx "$work" "$work/static"  # nginx workers read as www-data
nginx -c "$work/nginx.conf" &
pids+=($!)
sleep 0.3
for what in output raw_output; do
    size=$(stat -c %s "$work/static/$what")
    nginx_time=$(timed "http://127.0.0.1:$nport/$what" "$work/nginx-copy")
    cmp "$work/static/$what" "$work/nginx-copy" || { echo "nginx served other bytes" >&2; tail "$work/nginx-error.log" >&2; exit 1; }
    printf '%-11s %6.1f MiB   ralf %6.3f s   nginx %6.3f s   (%5.2fx)   server peak RSS while serving %4s MiB\n' \
        "$what" "$(echo "$size / 1048576" | bc -l)" "${ralf_time[$what]}" "$nginx_time" \
        "$(echo "${ralf_time[$what]} / $nginx_time" | bc -l)" "${peak[$what]}"
done
