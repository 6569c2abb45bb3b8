# scripts/bench.d/lib.sh — shared by scripts/bench and its helpers (sourced, not run).
#
# Every helper gets BENCH_ENV, the path of the env file scripts/bench writes into
# its temp dir: T, BUNDLE, RUNID and BIN_<runtime> for each runtime.  A runtime is
# named skiff, runc or crun; its state root is $T/root/<name> (fresh per runtime)
# and its container id is skb-<RUNID>-<name>, so leftovers are easy to recognise.

[[ -n ${BENCH_ENV:-} && -r $BENCH_ENV ]] || { echo "bench: BENCH_ENV not set" >&2; exit 2; }
# shellcheck disable=SC1090
. "$BENCH_ENV"

rt_bin()  { local v="BIN_$1"; printf '%s' "${!v:?no binary for $1}"; }
rt_root() { printf '%s' "$T/root/$1"; }
rt_id()   { printf 'skb-%s-%s' "$RUNID" "$1"; }

# rt NAME ARGS... — run runtime NAME with its own state root.
rt() { local n=$1; shift; "$(rt_bin "$n")" --root "$(rt_root "$n")" "$@"; }

# rt_status NAME — the status field of `state` ("" when the container is unknown).
rt_status() {
    rt "$1" state "$(rt_id "$1")" 2>/dev/null |
        sed -n 's/^.*"status"[[:space:]]*:[[:space:]]*"\([a-z]*\)".*$/\1/p' | head -n1
}

# rt_pid NAME — the pid field of `state`.
rt_pid() {
    rt "$1" state "$(rt_id "$1")" 2>/dev/null |
        sed -n 's/^.*"pid"[[:space:]]*:[[:space:]]*\([0-9]*\).*$/\1/p' | head -n1
}

# wait_status NAME STATUS — poll `state` for up to 5 s.
wait_status() {
    local i
    for ((i = 0; i < 1000; i++)); do
        [[ $(rt_status "$1") == "$2" ]] && return 0
        sleep 0.005
    done
    return 1
}

# own_cgroup CONTROLLER — this process's cgroup in the v1 hierarchy holding CONTROLLER.
own_cgroup() {
    awk -F: -v c="$1" '$1 != 0 { n = split($2, a, ","); for (i = 1; i <= n; i++) if (a[i] == c) print $3 }' \
        /proc/self/cgroup | head -n1
}

# check_nested NAME PID — every v1 line of /proc/PID/cgroup must be at or below our own
# cgroup in that hierarchy, and the memory line must exist.  Prints the reason if not.
check_nested() {
    local name=$1 pid=$2 line hid ctl path own seen_memory=0
    [[ -r /proc/$pid/cgroup ]] || { echo "cannot read /proc/$pid/cgroup"; return 1; }
    while IFS= read -r line; do
        hid=${line%%:*}; line=${line#*:}; ctl=${line%%:*}; path=${line#*:}
        [[ $hid == 0 ]] && continue
        own=$(awk -F: -v c="$ctl" '$1 != 0 && $2 == c { print $3 }' /proc/self/cgroup | head -n1)
        [[ -n $own ]] || { echo "$name container is in v1 hierarchy '$ctl' that we are not in"; return 1; }
        [[ ,$ctl, == *,memory,* ]] && seen_memory=1
        if [[ $own != / && $path != "$own" && $path != "$own"/* ]]; then
            echo "$name container cgroup $ctl:$path is not nested under our own $ctl:$own"
            return 1
        fi
    done < "/proc/$pid/cgroup"
    ((seen_memory)) || { echo "no memory line in /proc/$pid/cgroup"; return 1; }
}

# q ARG — quote for hyperfine's own command-line splitting (POSIX-shell words).
q() { printf "'%s'" "${1//\'/\'\\\'\'}"; }
