#!/usr/bin/env bash
# integration/clients/containerd.sh NAME RUNTIME — containerd 1.6 + ctr driving RUNTIME
# through containerd-shim-runc-v2 (`ctr run --runc-binary`, i.e. the shim's BinaryName).
# With CLIENTS_DRIVER=systemd also `--runc-systemd-cgroup` (the shim's SystemdCgroup = true:
# the runtime gets --systemd-cgroup) and cgroupsPath system.slice:clients:<id>, the unit
# clients-<id>.scope; else the default cgroupsPath /clients/<id>.
# Runs in the guest (integration/clients/guest); prints PASS/FAIL per step; exits with the
# number of failed steps.
CLIENT=containerd
RTNAME=$1
# shellcheck source=integration/clients/lib.sh
. "$(dirname "$0")/lib.sh"
rt_setup "$2" || exit 1

S=/var/lib/clients/containerd-$RTNAME
mkdir -p "$S"
cat >"$S/config.toml" <<TOML
version = 2
root = "$S/root"
state = "$S/state"
oom_score = 0
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$S/containerd.sock"
[ttrpc]
  address = "$S/containerd.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$S/opt"
TOML
export CONTAINERD_ADDRESS=$S/containerd.sock CONTAINERD_NAMESPACE=clients
O="--runtime io.containerd.runc.v2 --runc-binary $RT --runc-root $S/runc-root --fifo-dir $S/fifo"
[ "$DRIVER" = systemd ] && O+=" --runc-systemd-cgroup"
export O
# cg ID: ctr's --cgroup for container ID (ctr requires one with --runc-systemd-cgroup), and
# where its cgroup is.
cg() { [ "$DRIVER" = cgroupfs ] || echo "--cgroup system.slice:clients:$1"; }
cg_dir() { if [ "$DRIVER" = cgroupfs ]; then echo "/sys/fs/cgroup/clients/$1"; else echo "/sys/fs/cgroup/system.slice/clients-$1.scope"; fi; }
export -f cg cg_dir
export I=docker.io/library/busybox:local S
LOOP='trap "exit 42" TERM; while :; do sleep 1; done'
# A counter a checkpoint must not reset: /tmp/n counts up five times a second.
COUNTER='i=0; while :; do i=$((i+1)); echo $i >/tmp/n; sleep 0.2; done'
export LOOP COUNTER

containerd --config "$S/config.toml" --log-level debug >"$S/containerd.log" 2>&1 &
DPID=$!

s_daemon() { wait_for 60 ctr version && ctr version; }
s_import() {
	want 'busybox:local' ctr images import --base-name docker.io/library/busybox "$IMG/busybox-oci.tar" &&
		want 'docker.io/library/busybox:local' ctr images ls -q
}
s_run() {
	local o
	o=$(ctr run --rm $O $(cg c-echo) "$I" c-echo sh -c 'echo hello from ctr; echo $(ls /sys/class/net) $(readlink /proc/self/ns/net)')
	printf '%s\n' "$o"
	grep -qx 'hello from ctr' <<<"$o" || { echo "no greeting"; return 1; }
	o=$(grep '^lo net:' <<<"$o")
	echo "host: $HOST_NETNS"
	[ -n "$o" ] && [ "${o#lo }" != "$HOST_NETNS" ] || { echo "expected only lo, in a netns of its own"; return 1; }
}
s_run_rc() { want_rc 3 ctr run --rm $O $(cg c-rc) "$I" c-rc sh -c 'exit 3'; }
s_run_tty() { want_tty '^/dev/pts/[0-9]+$' "ctr run -t --rm $O $(cg c-tty) $I c-tty tty"; }
s_detach() {
	ctr run -d $O $(cg bg) "$I" bg sh -c "$LOOP" || return 1
	want 'bg +[0-9]+ +RUNNING' ctr task ls
}
s_exec() { want '^hi$' ctr task exec --exec-id e1 --fifo-dir "$S/fifo" bg echo hi; }
s_exec_rc() { want_rc 5 ctr task exec --exec-id e2 --fifo-dir "$S/fifo" bg sh -c 'exit 5'; }
s_exec_tty() { want_tty '^/dev/pts/[0-9]+$' "ctr task exec -t --exec-id e3 --fifo-dir $S/fifo bg tty"; }
s_exec_user() {
	want '^65534 /tmp$' ctr task exec --exec-id e4 --fifo-dir "$S/fifo" --user 65534 --cwd /tmp bg sh -c 'echo $(id -u) $(pwd)'
}
# running_or_gone PID ID: wait until task ID runs, unless the `ctr run` (PID) exits first.
running_or_gone() {
	local n=150
	until ctr task ls | grep -q "^$2 .*RUNNING"; do
		kill -0 "$1" 2>/dev/null || { wait "$1"; echo "ctr run exited $? before $2 ran"; return 1; }
		n=$((n - 1))
		[ $n -gt 0 ] || { kill "$1"; return 1; }
		sleep 0.2
	done
}
bgpid() { ctr task ls | awk '$1 == "bg" { print $2 }'; }
export -f bgpid running_or_gone
s_cgroup() {
	local p
	p=$(bgpid)
	echo "init pid $p in $(cg_of "$p")"
	[ "$(cg_of "$p")" = "$(cg_dir bg)" ] && want 'pids' ctr task metrics bg || return 1
	[ "$DRIVER" = cgroupfs ] || want_scope "$p" clients-bg.scope system.slice
}
s_ps() { want "^$(bgpid)( |$)" ctr task ps bg; }
s_pause() {
	ctr task pause bg || return 1
	want 'bg +[0-9]+ +PAUSED' ctr task ls && frozen "$(bgpid)" 1
}
s_resume() {
	ctr task resume bg || return 1
	want 'bg +[0-9]+ +RUNNING' ctr task ls && frozen "$(bgpid)" 0 &&
		want '^after resume$' ctr task exec --exec-id e5 --fifo-dir "$S/fifo" bg echo after resume
}
s_kill_term() {
	local p
	p=$(bgpid)
	ctr task kill -s SIGTERM bg || return 1
	wait_gone 20 "$p" || { echo "init $p still there"; return 1; }
	want 'bg +[0-9]+ +STOPPED' ctr task ls
}
s_rm() {
	ctr task rm bg && ctr containers rm bg || return 1
	! ctr containers ls -q | grep -x bg || return 1
	[ "$DRIVER" = cgroupfs ] || scope_gone clients-bg.scope
}
# An attached `ctr run` exits with the container's status: 42 from the TERM trap, 137 for KILL.
s_stop_rc() {
	ctr run --rm $O $(cg c-term) "$I" c-term sh -c "$LOOP" &
	local c=$!
	running_or_gone $c c-term || return 1
	sleep 0.5
	ctr task kill -s SIGTERM c-term
	wait $c
	local rc=$?
	echo "ctr run exited $rc"
	[ $rc = 42 ]
}
s_kill_rc() {
	ctr run --rm $O $(cg c-kill) --memory-limit 67108864 "$I" c-kill sleep 600 &
	local c=$!
	running_or_gone $c c-kill || return 1
	{ want '^67108864$' cat "$(cg_dir c-kill)/memory.max" &&
		{ [ "$DRIVER" = cgroupfs ] || want_prop clients-c-kill.scope MemoryMax 67108864; }; } ||
		{ ctr task kill -s SIGKILL c-kill; wait $c; return 1; }
	ctr task kill -s SIGKILL c-kill
	wait $c
	local rc=$?
	echo "ctr run exited $rc"
	[ $rc = 137 ]
}
s_rm_force() {
	ctr run -d $O $(cg k-force) "$I" k-force sh -c 'sleep 600 & sleep 600' || return 1
	ctr task exec -d --exec-id x1 --fifo-dir "$S/fifo" k-force sleep 600 || return 1
	ctr task rm -f k-force && ctr containers rm k-force || return 1
	! ctr task ls -q | grep -x k-force || return 1
	[ "$DRIVER" = cgroupfs ] || scope_gone clients-k-force.scope
}
# containerd's default profile (Docker's): without CAP_SYS_ADMIN no user namespace; only a few
# personality values; no keyring calls. Without --seccomp all three work (as root).
s_seccomp() {
	local o
	o=$(ctr run --rm --seccomp $O $(cg c-sec) "$I" c-sec sh -c 'grep Seccomp: /proc/self/status; sysprobe personality userns add_key; unshare -U true' 2>&1)
	printf '%s\n' "$o"
	grep -Eq 'Seccomp:\s+2' <<<"$o" && grep -q 'personality: Operation not permitted' <<<"$o" &&
		grep -q 'userns: Operation not permitted' <<<"$o" && grep -q 'add_key: Operation not permitted' <<<"$o" &&
		grep -q 'unshare.*Operation not permitted' <<<"$o" || { echo "not blocked as expected"; return 1; }
	want '^personality: ok' ctr run --rm $O $(cg c-nosec) "$I" c-nosec sysprobe personality userns add_key
}
s_net_host() { want "^$(req "$HOST_NETNS")\$" ctr run --rm --net-host $O $(cg c-host) "$I" c-host readlink /proc/self/ns/net; }
# count_at_least ID N: the counter of task ID has reached N; prints it.
count_at_least() {
	local n=0 t=100 k=0
	while [ $t -gt 0 ]; do
		k=$((k + 1))
		n=$(ctr task exec --exec-id "n$k" --fifo-dir "$S/fifo" "$1" cat /tmp/n 2>/dev/null) &&
			[ "${n:-0}" -ge "$2" ] && { echo "$n"; return 0; }
		t=$((t - 1))
		sleep 0.2
	done
	echo "counter of $1 stuck at ${n:-nothing}" >&2
	return 1
}
export -f count_at_least
# ctr checkpoints the task into an image (pausing it meanwhile; the task runs on), the
# container is removed, and `ctr containers restore --live` brings the task back from the
# image: the counter goes on from where it was (a restart would begin again at 1). With
# runc first (its own container, `--runc-binary runc`), proving the step on this guest,
# then with the runtime under test.
checkpoint_restore() { # RUNTIME ID
	local O="${O/--runc-binary $RT/--runc-binary $1}" n1 n2 p
	ctr run -d $O $(cg "$2") "$I" "$2" sh -c "$COUNTER" || return 1
	n1=$(count_at_least "$2" 5) || return 1
	ctr containers checkpoint --task --rw "$2" "clients.local/$2:1" || return 1
	want "$2 +[0-9]+ +RUNNING" ctr task ls || return 1
	ctr task rm -f "$2" && ctr containers rm "$2" || return 1
	ctr containers restore --live --rw "$2" "clients.local/$2:1" || return 1
	want "$2 +[0-9]+ +RUNNING" ctr task ls && n2=$(count_at_least "$2" "$n1") || return 1
	echo "$1: counter $n1 before the checkpoint, $n2 after the restore"
	p=$(ctr task ls | awk -v id="$2" '$1 == id { print $2 }')
	[ "$(cg_of "$p")" = "$(cg_dir "$2")" ] || { echo "restored init $p in $(cg_of "$p")"; return 1; }
	ctr task rm -f "$2" && ctr containers rm "$2" && ctr images rm "clients.local/$2:1" >/dev/null
}
export -f checkpoint_restore
s_checkpoint() { checkpoint_restore /usr/sbin/runc cr-runc && checkpoint_restore "$RT" cr; }
s_cleanup() {
	local t
	for t in $(ctr task ls -q); do ctr task rm -f "$t"; done
	for t in $(ctr containers ls -q); do ctr containers rm "$t"; done
	ctr images rm clients.local/cr:1 clients.local/cr-runc:1 >/dev/null 2>&1
	ctr images rm "$I" >/dev/null
	echo "runtime state: $(ls "$S/runc-root/clients" 2>/dev/null | tr '\n' ' ')"
	[ -z "$(ls "$S/runc-root/clients" 2>/dev/null)" ]
}
export -f $(compgen -A function s_)

step "containerd starts" s_daemon
step "ctr images import (OCI archive)" s_import
step "run: prints; own netns (lo only)" s_run
step "run: exit code" s_run_rc
step "run -t: terminal" s_run_tty
step "run -d: detached" s_detach
step "exec" s_exec
step "exec: exit code" s_exec_rc
step "exec -t: terminal" s_exec_tty
step "exec --user --cwd" s_exec_user
step "cgroup placement + metrics" s_cgroup
step "task ps" s_ps
step "task pause" s_pause
step "task resume" s_resume
step "task kill SIGTERM (detached)" s_kill_term
step "task rm + containers rm" s_rm
step "stop: SIGTERM -> exit 42" s_stop_rc
step "run --memory-limit; SIGKILL -> 137" s_kill_rc
step "task rm -f (running, +exec: kill --all)" s_rm_force
step "seccomp: default profile" s_seccomp
step "network: --net-host" s_net_host
# CRIU: with the cgroupfs driver (the systemd one is not covered here).
if [ "$DRIVER" = cgroupfs ]; then
	step "containers checkpoint --task, restore --live (CRIU; runc, then $RTNAME)" s_checkpoint
fi
step "cleanup: tasks, containers, state" s_cleanup

stop_pid "$DPID" 20
s_leftovers() { leftovers "$S"; }
export -f s_leftovers leftovers stray_pids
step "nothing left running" s_leftovers
cp "$S/containerd.log" "$OUT/containerd-$RTNAME.daemon.log" 2>/dev/null
exit "$FAILS"
