#!/usr/bin/env bash
# Catalog benchmarks of issue "service catalog", measured from outside: a `ralf server` process
# on a fresh SQLite database, the project's repository served by `git daemon` (git://), every
# figure taken over the HTTP API with curl, next to its baseline from the same run.
#
#   bench/catalog.sh                 # both, default sizes
#   bench/catalog.sh overhead [N]    # N services (apply + smoke) by one rollout, parallelism 1,
#                                    # against a script starting the same 2N tasks back to back
#   bench/catalog.sh depth [N] [LEVELS]  # N services in LEVELS levels (each on two of the level
#                                    # above), rollouts at parallelism 1 and 4
#
# Uses $RALF when set (to compare two builds in one run), else the release build of `ralf` in
# the cargo target directory when there is one, else the debug build (building it when
# missing), and says which. Both sides poll every 20 ms.
set -euo pipefail
cd "$(dirname "$0")/.."
which=${1:-all}
target=${CARGO_TARGET_DIR:-target}
if [[ -n ${RALF:-} ]]; then
    ralf=$RALF build="$RALF"
elif [[ -x $target/release/ralf ]]; then
    ralf=$target/release/ralf build=release
else
    [[ -x $target/debug/ralf ]] || cargo build --quiet -p ralf
    ralf=$target/debug/ralf build=debug
fi
echo "ralf $(git rev-parse --short HEAD) ($build build), $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg), $(date -u +%Y-%m-%dT%H:%MZ)"

work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }
elapsed() { echo "$(now) - $1" | bc; }

# The server.
port=$(free_port)
mkdir -p "$work/data"
RALF_DATA_DIR="$work/data" RALF_ADMIN_LOGIN=bench RALF_ADMIN_PASSWORD=bench-password \
    SEMAPHORE_PORT=$port RALF_LOG=warn "$ralf" server >"$work/server.log" 2>&1 &
pids+=($!)
server_pid=$!
# The server process's own CPU time so far (user + system, in seconds; its tasks' processes
# not counted): steadier than wall time on a loaded machine.
ticks=$(getconf CLK_TCK)
server_cpu() { awk -v t="$ticks" '{printf "%.2f", ($14 + $15) / t}' "/proc/$server_pid/stat"; }
base=http://127.0.0.1:$port
for _ in $(seq 200); do curl -sf "$base/api/ping" >/dev/null && break; sleep 0.05; done
curl -sf -c "$work/cookies" -H 'Content-Type: application/json' \
    -d '{"auth":"bench","password":"bench-password"}' "$base/api/auth/login" >/dev/null
token=$(curl -sf -b "$work/cookies" -X POST -H 'Content-Type: application/json' -d '{}' \
    "$base/api/user/tokens" | jq -r .id)
api() { # METHOD PATH [BODY]
    curl -sf -X "$1" -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
        ${3:+-d "$3"} "$base$2"
}

# The repositories, served by git daemon.
git_port=$(free_port)
mkdir -p "$work/git"
git daemon --reuseaddr --export-all --base-path="$work/git" --listen=127.0.0.1 \
    --port="$git_port" "$work/git" >"$work/git-daemon.log" 2>&1 &
pids+=($!)

# make_repo NAME: a repository with the two scripts; service files are added by the caller in
# $work/src/NAME/catalog/projects before commit_repo NAME.
make_repo() {
    local dir=$work/src/$1
    mkdir -p "$dir/catalog/projects"
    echo 'echo "apply $RALF_SERVICE"' >"$dir/deploy.sh"
    echo 'echo "smoke $RALF_SERVICE ok"' >"$dir/smoke.sh"
}
commit_repo() {
    local dir=$work/src/$1
    git -C "$dir" init -q -b main
    git -C "$dir" add -A
    git -C "$dir" -c user.name=bench -c user.email=bench@example.test commit -q -m catalog
    git clone -q --bare "$dir" "$work/git/$1.git"
}

# make_project REPO PARALLELISM: a project reading git://.../REPO.git with the templates Deploy
# and Smoke and the catalog set; prints "project deploy smoke".
make_project() {
    local project key repository inventory deploy smoke template
    project=$(api POST /api/projects "{\"name\":\"$1 $2\"}" | jq .id)
    key=$(api POST "/api/project/$project/keys" '{"name":"none","type":"none"}' | jq .id)
    repository=$(api POST "/api/project/$project/repositories" \
        "{\"name\":\"repo\",\"git_url\":\"git://127.0.0.1:$git_port/$1.git\",\"git_branch\":\"main\",\"ssh_key_id\":$key}" | jq .id)
    inventory=$(api POST "/api/project/$project/inventory" \
        '{"name":"local","type":"static","inventory":"localhost"}' | jq .id)
    for template in Deploy Smoke; do
        local script=${template,,}.sh
        local id
        id=$(api POST "/api/project/$project/templates" \
            "{\"name\":\"$template\",\"app\":\"bash\",\"playbook\":\"$script\",\"repository_id\":$repository,\"inventory_id\":$inventory,\"allow_parallel_tasks\":true}" | jq .id)
        [[ $template == Deploy ]] && deploy=$id || smoke=$id
    done
    api PUT "/api/project/$project/catalog/settings" \
        "{\"repository_id\":$repository,\"parallelism\":$2}" >/dev/null
    echo "$project $deploy $smoke"
}

# run_task PROJECT TEMPLATE: POST a task, wait for its end; fails unless it succeeded.
run_task() {
    local id status
    id=$(api POST "/api/project/$1/tasks" "{\"template_id\":$2}" | jq .id)
    while :; do
        status=$(api GET "/api/project/$1/tasks/$id" | jq -r .status)
        case $status in
        success) return 0 ;;
        error | stopped | rejected) echo "task $id: $status" >&2; return 1 ;;
        esac
        sleep 0.02
    done
}

# run_rollout PROJECT BODY: start a rollout, wait for its end; fails unless it succeeded.
run_rollout() {
    local id state
    id=$(api POST "/api/project/$1/catalog/rollouts" "$2" | jq .id)
    while :; do
        state=$(api GET "/api/project/$1/catalog/rollouts/$id" | jq -r .state)
        case $state in
        succeeded) return 0 ;;
        failed | cancelled) echo "rollout $id: $state" >&2; return 1 ;;
        esac
        sleep 0.02
    done
}

overhead() {
    local n=$1 name=flat$1
    make_repo "$name"
    for i in $(seq -w 1 "$n"); do
        printf 'name: s%s\napply: Deploy\nsmoke: Smoke\n' "$i" >"$work/src/$name/catalog/projects/s$i.yaml"
    done
    commit_repo "$name"
    read -r project deploy smoke < <(make_project "$name" 1)
    run_task "$project" "$deploy" # warm-up: the first task clones the repository
    local start script rollout
    start=$(now)
    for _ in $(seq "$n"); do
        run_task "$project" "$deploy"
        run_task "$project" "$smoke"
    done
    script=$(elapsed "$start")
    start=$(now)
    run_rollout "$project" '{}'
    rollout=$(elapsed "$start")
    echo "overhead: $n services (apply + smoke, bash echo), one rollout at parallelism 1, SQLite"
    printf '  script: %d tasks back to back (POST, poll to end) %8.2f s   (%6.1f ms a service)\n' \
        $((2 * n)) "$script" "$(echo "$script * 1000 / $n" | bc -l)"
    printf '  rollout of the %d services (POST, poll to end)     %8.2f s   (%6.1f ms a service, %.2fx the script)\n' \
        "$n" "$rollout" "$(echo "$rollout * 1000 / $n" | bc -l)" "$(echo "$rollout / $script" | bc -l)"
}

depth() {
    local n=$1 levels=$2 name=deep$1 per
    per=$(((n + levels - 1) / levels))
    make_repo "$name"
    local i level deps
    for ((i = 0; i < n; i++)); do
        level=$((i / per))
        deps=""
        if ((level > 0)); then
            local above=$(((level - 1) * per))
            deps="depends_on: [s$(printf %02d $((above + i % per))), s$(printf %02d $((above + (i + 1) % per)))]"
        fi
        printf 'name: s%02d\npriority: P%d\napply: Deploy\nsmoke: Smoke\n%s\n' \
            "$i" $((i % 5)) "$deps" >"$work/src/$name/catalog/projects/s$(printf %02d "$i").yaml"
    done
    commit_repo "$name"
    echo "depth: $n services in $levels levels (each on two of the level above), apply + smoke each, SQLite"
    local parallelism project deploy smoke start t
    read -r project deploy smoke < <(make_project "$name" 1)
    run_task "$project" "$deploy"
    start=$(now)
    cpu=$(server_cpu)
    for _ in $(seq "$n"); do
        run_task "$project" "$deploy"
        run_task "$project" "$smoke"
    done
    t=$(elapsed "$start")
    printf '  script: %d tasks back to back                 %8.2f s   server CPU %6.2f s\n' \
        $((2 * n)) "$t" "$(echo "$(server_cpu) - $cpu" | bc)"
    for parallelism in 1 4; do
        read -r project deploy smoke < <(make_project "$name" "$parallelism")
        # The repository of a new project is cloned by its first task; warm it as above.
        run_task "$project" "$deploy"
        start=$(now)
        cpu=$(server_cpu)
        run_rollout "$project" '{}'
        t=$(elapsed "$start")
        printf '  rollout at parallelism %d                      %8.2f s   server CPU %6.2f s\n' \
            "$parallelism" "$t" "$(echo "$(server_cpu) - $cpu" | bc)"
    done
}

case $which in
overhead) overhead "${2:-20}" ;;
depth) depth "${2:-50}" "${3:-5}" ;;
all)
    overhead 20
    depth 50 5
    ;;
*) echo "usage: bench/catalog.sh [overhead [N] | depth [N] [LEVELS]]" >&2; exit 2 ;;
esac
