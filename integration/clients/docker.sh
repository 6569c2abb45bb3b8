#!/usr/bin/env bash
# integration/clients/docker.sh NAME RUNTIME — dockerd 20.10 (+ its own containerd and the
# runc shim) with RUNTIME as the default runtime (`--add-runtime`, `--default-runtime`), no
# bridge, no iptables, cgroup driver $CLIENTS_DRIVER (`native.cgroupdriver`: cgroupfs puts
# containers in /docker/<id>; systemd in the unit docker-<id>.scope under system.slice, and
# the shim runs the runtime with --systemd-cgroup). Runs in the guest
# (integration/clients/guest); prints PASS/FAIL per step; exits with the number of failures.
CLIENT=docker
RTNAME=$1
# shellcheck source=integration/clients/lib.sh
. "$(dirname "$0")/lib.sh"
rt_setup "$2" || exit 1

S=/var/lib/clients/docker-$RTNAME
mkdir -p "$S/cli"
RTID=clients-$RTNAME # "runc" itself is a reserved runtime name
printf '{ "deprecated-key-path": "%s" }\n' "$S/key.json" >"$S/daemon.json"
export DOCKER_HOST=unix://$S/docker.sock DOCKER_CONFIG=$S/cli
export I=busybox:local R="--network none" S
LOOP='trap "exit 42" TERM; while :; do sleep 1; done'
export LOOP

plugins_existed=0
[ -e /run/docker/plugins ] && plugins_existed=1
dockerd --config-file "$S/daemon.json" --data-root "$S/data" --exec-root "$S/exec" \
	--pidfile "$S/docker.pid" -H "unix://$S/docker.sock" \
	--bridge none --iptables=false --ip6tables=false --ip-forward=false --ip-masq=false \
	--userland-proxy=false --storage-driver overlay2 --exec-opt "native.cgroupdriver=$DRIVER" \
	--oom-score-adjust 0 --add-runtime "$RTID=$RT" --default-runtime "$RTID" \
	--log-level debug >"$S/dockerd.log" 2>&1 &
DPID=$!

pid_of() { docker inspect -f '{{.State.Pid}}' "$1"; }
status_of() { docker inspect -f '{{.State.Status}}' "$1"; }
unit_of() { echo "docker-$(docker inspect -f '{{.Id}}' "$1").scope"; } # systemd driver
export -f pid_of status_of unit_of

s_daemon() { wait_for 90 docker version && want "$RTID" docker info --format '{{.DefaultRuntime}}'; }
s_import() { docker import "$IMG/rootfs.tar" "$I" && want 'busybox +local' docker images; }
s_run() {
	local o
	o=$(docker run --rm --network none "$I" sh -c 'echo hello from docker; echo $(ls /sys/class/net) $(readlink /proc/self/ns/net)')
	printf '%s\n' "$o"
	grep -qx 'hello from docker' <<<"$o" || { echo "no greeting"; return 1; }
	o=$(grep '^lo net:' <<<"$o")
	echo "host: $HOST_NETNS"
	[ -n "$o" ] && [ "${o#lo }" != "$HOST_NETNS" ] || { echo "expected only lo, in a netns of its own"; return 1; }
}
s_run_rc() { want_rc 3 docker run --rm $R "$I" sh -c 'exit 3'; }
s_run_tty() { want_tty '^/dev/pts/[0-9]+$' "docker run -it --rm $R $I sh -c 'tty; sleep 0.3'"; }
s_detach() {
	docker run -d --name bg $R "$I" sh -c "$LOOP" || return 1
	want '^running$' status_of bg
}
s_exec() { want '^hi$' docker exec bg echo hi; }
s_exec_rc() { want_rc 5 docker exec bg sh -c 'exit 5'; }
s_exec_tty() { want_tty '^/dev/pts/[0-9]+$' "docker exec -it bg tty"; }
s_exec_detach() {
	docker exec -d bg sleep 31 || return 1
	wait_for 10 eval 'docker top bg | grep -q "sleep 31"'
	want 'sleep 31' docker top bg
}
s_exec_user() { want '^65534 /tmp$' docker exec --user 65534 --workdir /tmp bg sh -c 'echo $(id -u) $(pwd)'; }
s_top() { want 'while' docker top bg; }
s_cgroup() {
	want "^$DRIVER\$" docker info --format '{{.CgroupDriver}}' || return 1
	local p cg
	p=$(pid_of bg)
	[ "$DRIVER" = systemd ] && { want_scope "$p" "$(unit_of bg)" system.slice; return; }
	cg=$(cg_of "$p")
	echo "init pid $p in $cg"
	[ "$cg" = "/sys/fs/cgroup/docker/$(docker inspect -f '{{.Id}}' bg)" ]
}
s_pause() { docker pause bg && want '^paused$' status_of bg && frozen "$(pid_of bg)" 1; }
s_unpause() {
	docker unpause bg && want '^running$' status_of bg && frozen "$(pid_of bg)" 0 &&
		want '^after unpause$' docker exec bg echo after unpause
}
s_update() {
	docker update --memory 64m --memory-swap 64m --cpu-shares 512 --pids-limit 100 bg || return 1
	local cg
	cg=$(cg_of "$(pid_of bg)")
	# (No swap check: dockerd finds no swap accounting in the guest and drops --memory-swap.)
	want '^67108864$' cat "$cg/memory.max" &&
		want '^100$' cat "$cg/pids.max" && want '^[0-9]+$' cat "$cg/cpu.weight" &&
		[ "$(cat "$cg/cpu.weight")" != 100 ] || return 1
	# The systemd driver updates the unit too, or systemd would put the old values back.
	[ "$DRIVER" = cgroupfs ] || { want_prop "$(unit_of bg)" MemoryMax 67108864 && want_prop "$(unit_of bg)" TasksMax 100; }
}
s_stats() { want 'bg' docker stats --no-stream bg; }
s_stop_rc() {
	docker stop -t 10 bg || return 1
	want '^exited$' status_of bg && want '^42$' docker inspect -f '{{.State.ExitCode}}' bg
}
s_start() { docker start bg && want '^running$' status_of bg && want '^hi$' docker exec bg echo hi; }
s_restart() {
	local p1 p2
	p1=$(pid_of bg)
	docker restart -t 1 bg || return 1
	p2=$(pid_of bg)
	echo "pid $p1 -> $p2"
	[ "$p1" != "$p2" ] && want '^running$' status_of bg
}
s_kill_rc() {
	docker kill -s KILL bg || return 1
	want '^137$' docker wait bg
}
s_rm() {
	local u
	u=$(unit_of bg)
	docker rm bg && ! docker ps -a --format '{{.Names}}' | grep -x bg || return 1
	[ "$DRIVER" = cgroupfs ] || scope_gone "$u"
}
s_create_start() {
	docker create --name created $R "$I" echo created || return 1
	want '^created$' docker start -a created && docker rm created
}
s_rm_force() {
	docker run -d --name killme $R "$I" sleep 600 || return 1
	local u
	u=$(unit_of killme)
	docker rm -f killme && ! docker ps -a --format '{{.Names}}' | grep -x killme || return 1
	[ "$DRIVER" = cgroupfs ] || scope_gone "$u"
}
# Docker's default profile (applied by default): without CAP_SYS_ADMIN no user namespace
# (unshare -U: EPERM); only a few personality values; no keyring calls.
s_seccomp() {
	want 'name=seccomp' docker info --format '{{.SecurityOptions}}' || return 1
	local o
	o=$(docker run --rm $R "$I" sh -c 'grep Seccomp: /proc/self/status; sysprobe personality userns add_key; unshare -U true' 2>&1)
	printf '%s\n' "$o"
	grep -Eq 'Seccomp:\s+2' <<<"$o" && grep -q 'personality: Operation not permitted' <<<"$o" &&
		grep -q 'userns: Operation not permitted' <<<"$o" && grep -q 'add_key: Operation not permitted' <<<"$o" &&
		grep -q 'unshare.*Operation not permitted' <<<"$o" || { echo "not blocked as expected"; return 1; }
	want '^personality: ok' docker run --rm $R --security-opt seccomp=unconfined "$I" sysprobe personality userns add_key
}
s_net_host() {
	local o
	o=$(docker run --rm --init --network host "$I" sh -c 'readlink /proc/self/ns/net; tr "\0" " " </proc/1/cmdline; echo')
	printf '%s\n' "$o"
	echo "host: $HOST_NETNS"
	grep -qx "$(req "$HOST_NETNS")" <<<"$o" || { echo "not in the host netns"; return 1; }
	grep -q '^/sbin/docker-init ' <<<"$o" || { echo "pid 1 is not docker-init"; return 1; }
}
s_cleanup() {
	local c left d
	for c in $(docker ps -a -q); do docker rm -f "$c" >/dev/null; done
	left=$(docker ps -a -q)
	[ -z "$left" ] || { echo "containers left: $left"; return 1; }
	docker rmi -f "$I" >/dev/null
	# The shim's runtime root(s): <exec-root>/runtime-*/moby.
	left=''
	for d in "$S"/exec/runtime-*/moby; do
		[ -d "$d" ] && left+=$("$RTREAL" --root "$d" list -q 2>&1)
	done
	echo "runtime state: $left"
	[ -z "$left" ]
}
export -f $(compgen -A function s_)

step "dockerd starts (default runtime)" s_daemon
step "docker import (rootfs tar)" s_import
step "run --network none: prints, own netns" s_run
step "run: exit code" s_run_rc
step "run -it: terminal" s_run_tty
step "run -d: detached" s_detach
step "exec" s_exec
step "exec: exit code" s_exec_rc
step "exec -it: terminal" s_exec_tty
step "exec -d + top" s_exec_detach
step "exec --user --workdir" s_exec_user
step "top (runtime ps)" s_top
step "cgroup placement" s_cgroup
step "pause" s_pause
step "unpause" s_unpause
step "update (memory, swap, cpu, pids)" s_update
step "stats" s_stats
step "stop: SIGTERM -> exit 42" s_stop_rc
step "start (again)" s_start
step "restart -t 1" s_restart
step "kill -s KILL -> exit 137" s_kill_rc
step "rm" s_rm
step "create + start -a" s_create_start
step "rm -f (running)" s_rm_force
step "seccomp: default profile" s_seccomp
step "run --init --network host" s_net_host
step "cleanup: containers, state" s_cleanup

stop_pid "$DPID" 30
# dockerd bind-mounts the host netns at <exec-root>/netns/default for --network host and
# leaves it mounted when it exits (with any runtime): not a runtime leftover.
umount "$S/exec/netns/default" 2>/dev/null
[ $plugins_existed = 1 ] || rmdir /run/docker/plugins /run/docker 2>/dev/null
s_leftovers() { leftovers "$S"; }
export -f s_leftovers leftovers stray_pids
step "nothing left running" s_leftovers
cp "$S/dockerd.log" "$OUT/docker-$RTNAME.daemon.log" 2>/dev/null
exit "$FAILS"
