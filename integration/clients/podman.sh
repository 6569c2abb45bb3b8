#!/usr/bin/env bash
# integration/clients/podman.sh NAME RUNTIME — podman 4.3 + conmon driving RUNTIME
# (`podman --runtime PATH`, daemonless, no network), cgroup manager $CLIENTS_DRIVER (systemd:
# the container in libpod-<id>.scope, conmon in libpod-conmon-<id>.scope, both under
# machine.slice, and the runtime called with --systemd-cgroup). Runs in the guest
# (integration/clients/guest); prints PASS/FAIL per step; exits with the number of failures.
CLIENT=podman
RTNAME=$1
# shellcheck source=integration/clients/lib.sh
. "$(dirname "$0")/lib.sh"
rt_setup "$2" || exit 1

S=/var/lib/clients/podman-$RTNAME
mkdir -p "$S"/{tmp,vartmp,cni,volumes}
# runtime_supports_json lists the runtime's basename, or podman does not pass --log-format=json;
# the ulimits stay within this machine's hard limits (no CAP_SYS_RESOURCE; see clients.md).
cat >"$S/containers.conf" <<CONF
[containers]
netns = "none"
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
log_driver = "k8s-file"
[engine]
cgroup_manager = "$DRIVER"
events_logger = "file"
events_logfile_path = "$S/events.log"
tmp_dir = "$S/tmp"
volume_path = "$S/volumes"
conmon_path = ["/usr/bin/conmon"]
lock_type = "file"
runtime_supports_json = ["crun", "runc", "kata", "runsc", "krun", "${RT##*/}"]
runtime_supports_nocgroups = ["crun", "krun"]
[network]
network_config_dir = "$S/cni"
CONF
printf '[storage]\ndriver="overlay"\ngraphroot="%s"\nrunroot="%s"\n' "$S/storage" "$S/runroot" >"$S/storage.conf"
export CONTAINERS_CONF=$S/containers.conf CONTAINERS_STORAGE_CONF=$S/storage.conf TMPDIR=$S/vartmp
export P="podman --root $S/storage --runroot $S/runroot --tmpdir $S/tmp --storage-driver overlay --cgroup-manager $DRIVER --events-backend file --conmon /usr/bin/conmon --network-config-dir $S/cni --runtime $RT"
export R="--network none" I=localhost/busybox:local S
LOOP='trap "exit 42" TERM; while :; do sleep 1; done'
# A counter a checkpoint must not reset: /tmp/n counts up five times a second.
COUNTER='i=0; while :; do i=$((i+1)); echo $i >/tmp/n; sleep 0.2; done'
export LOOP COUNTER

pid_of() { $P inspect -f '{{.State.Pid}}' "$1"; }
status_of() { $P inspect -f '{{.State.Status}}' "$1"; }
unit_of() { echo "libpod-$($P inspect -f '{{.Id}}' "$1").scope"; } # systemd manager
export -f pid_of status_of unit_of

s_info() { want "^$(req "$RT")\$" $P info --format '{{.Host.OCIRuntime.Path}}'; }
s_import() { $P import "$IMG/rootfs.tar" "$I" && want 'busybox' $P images; }
s_run() {
	local o
	o=$($P run --rm --network none "$I" sh -c 'echo hello from podman; echo $(ls /sys/class/net) $(readlink /proc/self/ns/net)')
	printf '%s\n' "$o"
	grep -qx 'hello from podman' <<<"$o" || { echo "no greeting"; return 1; }
	o=$(grep '^lo net:' <<<"$o")
	echo "host: $HOST_NETNS"
	[ -n "$o" ] && [ "${o#lo }" != "$HOST_NETNS" ] || { echo "expected only lo, in a netns of its own"; return 1; }
}
s_run_rc() { want_rc 3 $P run --rm $R "$I" sh -c 'exit 3'; }
s_run_tty() { want_tty '^/dev/pts/[0-9]+$' "$P run -it --rm $R $I sh -c 'tty; sleep 0.3'"; }
s_detach() {
	$P run -d --name bg $R "$I" sh -c "$LOOP" || return 1
	want '^running$' status_of bg
}
s_exec() { want '^hi$' $P exec bg echo hi; }
s_exec_rc() { want_rc 5 $P exec bg sh -c 'exit 5'; }
s_exec_tty() { want_tty '^/dev/pts/[0-9]+$' "$P exec -it bg tty"; }
s_exec_detach() {
	$P exec -d bg sleep 31 || return 1
	want 'sleep 31' $P top bg
}
s_exec_user() { want '^65534 /tmp$' $P exec --user 65534 --workdir /tmp bg sh -c 'echo $(id -u) $(pwd)'; }
s_top() { want 'while' $P top bg; }
s_cgroup() {
	want "^$DRIVER\$" $P info --format '{{.Host.CgroupManager}}' || return 1
	local p cg
	p=$(pid_of bg)
	cg=$(cg_of "$p")
	echo "init pid $p in $cg"
	[ "$cg" != /sys/fs/cgroup ] && want '[0-9]+' cat "$cg/pids.max" || return 1
	[ "$DRIVER" = cgroupfs ] && return
	want_scope "$p" "$(unit_of bg)" machine.slice &&
		want_scope "$($P inspect -f '{{.State.ConmonPid}}' bg)" "libpod-conmon-$($P inspect -f '{{.Id}}' bg).scope" machine.slice
}
s_pause() {
	$P pause bg && want '^paused$' status_of bg && frozen "$(pid_of bg)" 1
}
s_unpause() {
	$P unpause bg && want '^running$' status_of bg && frozen "$(pid_of bg)" 0 &&
		want '^after unpause$' $P exec bg echo after unpause
}
s_update() {
	$P update --memory 64m --memory-swap 64m --cpu-quota 50000 --cpu-period 100000 bg || return 1
	local cg
	cg=$(cg_of "$(pid_of bg)")
	want '^67108864$' cat "$cg/memory.max" && want '^50000 100000$' cat "$cg/cpu.max" || return 1
	# The systemd driver updates the unit too, or systemd would put the old values back.
	[ "$DRIVER" = cgroupfs ] || { want_prop "$(unit_of bg)" MemoryMax 67108864 && want_prop "$(unit_of bg)" CPUQuotaPerSecUSec 500ms; }
}
s_stop_rc() {
	$P stop -t 10 bg || return 1
	want '^exited$' status_of bg && want '^42$' $P inspect -f '{{.State.ExitCode}}' bg
}
s_start() { $P start bg && want '^running$' status_of bg && want '^hi$' $P exec bg echo hi; }
s_restart() {
	local p1 p2
	p1=$(pid_of bg)
	$P restart -t 1 bg || return 1
	p2=$(pid_of bg)
	echo "pid $p1 -> $p2"
	[ "$p1" != "$p2" ] && want '^running$' status_of bg
}
s_kill_rc() {
	$P kill -s KILL bg || return 1
	want '^137$' $P wait bg
}
s_rm() {
	local u
	u=$(unit_of bg)
	$P rm bg && ! $P ps -a --format '{{.Names}}' | grep -x bg || return 1
	[ "$DRIVER" = cgroupfs ] || scope_gone "$u"
}
s_create_start() {
	$P create --name c $R "$I" echo created || return 1
	want '^created$' $P start -a c && $P rm c
}
s_rm_force() {
	$P run -d --name k $R "$I" sleep 600 || return 1
	local u
	u=$(unit_of k)
	$P rm -f -t 1 k && ! $P ps -a --format '{{.Names}}' | grep -x k || return 1
	[ "$DRIVER" = cgroupfs ] || scope_gone "$u"
}
# podman's default profile (containers-common): only a few personality values, no add_key
# (ENOSYS, its default errno); unshare(CLONE_NEWUSER) is allowed there.
s_seccomp() {
	local o
	o=$($P run --rm $R "$I" sh -c 'grep Seccomp: /proc/self/status; sysprobe personality add_key userns')
	printf '%s\n' "$o"
	grep -Eq 'Seccomp:\s+2' <<<"$o" && grep -q 'personality: Function not implemented' <<<"$o" &&
		grep -q 'add_key: Function not implemented' <<<"$o" || { echo "not blocked as expected"; return 1; }
	want '^personality: ok' $P run --rm $R --security-opt seccomp=unconfined "$I" sysprobe personality add_key
}
s_net_host() { want "^$(req "$HOST_NETNS")\$" $P run --rm --network host "$I" readlink /proc/self/ns/net; }
# count_at_least NAME N: the counter of container NAME has reached N; prints it.
count_at_least() {
	local n=0 t=100
	while [ $t -gt 0 ]; do
		n=$($P exec "$1" cat /tmp/n 2>/dev/null) && [ "${n:-0}" -ge "$2" ] && { echo "$n"; return 0; }
		t=$((t - 1))
		sleep 0.2
	done
	echo "counter of $1 stuck at ${n:-nothing}" >&2
	return 1
}
export -f count_at_least
# checkpoint (the container stops, its process is gone), restore: the counter goes on from
# where it was (a restart would begin again at 1), in a new process of the same container.
# Each checkpoint step runs with runc first (a container of its own, `--runtime runc`),
# proving the step on this guest, then with the runtime under test.
checkpoint_restore() { # RUNTIME NAME
	local P="${P% --runtime *} --runtime $1" n1 n2 p1
	$P run -d --name "$2" $R "$I" sh -c "$COUNTER" || return 1
	n1=$(count_at_least "$2" 5) && p1=$(pid_of "$2") || return 1
	$P container checkpoint "$2" || return 1
	want '^exited$' status_of "$2" || return 1
	! kill -0 "$p1" 2>/dev/null || { echo "process $p1 still alive"; return 1; }
	$P container restore "$2" || return 1
	want '^running$' status_of "$2" && n2=$(count_at_least "$2" "$n1") || return 1
	echo "$1: counter $n1 before the checkpoint, $n2 after the restore"
}
# checkpoint --export to a tarball, the container removed, restore --import under a new name.
export_import() { # RUNTIME NAME
	local P="${P% --runtime *} --runtime $1" n1 n2
	n1=$(count_at_least "$2" 1) || return 1
	$P container checkpoint --export "$S/$2.tar.gz" "$2" || return 1
	$P rm -f "$2" && [ -s "$S/$2.tar.gz" ] || return 1
	$P container restore --import "$S/$2.tar.gz" --name "$2-2" || return 1
	want '^running$' status_of "$2-2" && n2=$(count_at_least "$2-2" "$n1") || return 1
	echo "$1: counter $n1 before the export, $n2 after the import"
	$P rm -f -t 1 "$2-2"
}
export -f checkpoint_restore export_import
s_checkpoint() { checkpoint_restore /usr/sbin/runc cr-runc && checkpoint_restore "$RT" cr; }
s_checkpoint_export() { export_import /usr/sbin/runc cr-runc && export_import "$RT" cr; }
s_cleanup() {
	$P rm -a -f -t 1 >/dev/null
	local left
	left=$($P ps -a -q)
	[ -z "$left" ] || { echo "containers left: $left"; return 1; }
	$P rmi -a -f >/dev/null
	# podman calls the runtime without --root: its default root.
	left=$("$RTREAL" list -q 2>&1)
	echo "runtime state: $left"
	[ -z "$left" ]
}
export -f $(compgen -A function s_)

step "podman info (runtime --version)" s_info
step "podman import (rootfs tar)" s_import
step "run --network none: prints, own netns" s_run
step "run: exit code" s_run_rc
step "run -it: terminal" s_run_tty
step "run -d: detached" s_detach
step "exec" s_exec
step "exec: exit code" s_exec_rc
step "exec -it: terminal" s_exec_tty
step "exec -d + top" s_exec_detach
step "exec --user --workdir" s_exec_user
step "top" s_top
step "cgroup placement (pids limit)" s_cgroup
step "pause" s_pause
step "unpause" s_unpause
step "update (memory, cpu)" s_update
step "stop: SIGTERM -> exit 42" s_stop_rc
step "start (again)" s_start
step "restart -t 1" s_restart
step "kill -s KILL -> exit 137" s_kill_rc
step "rm" s_rm
step "create + start -a" s_create_start
step "rm -f (running)" s_rm_force
step "seccomp: default profile" s_seccomp
step "network host" s_net_host
# CRIU: with the cgroupfs manager (the systemd one is not covered here).
if [ "$DRIVER" = cgroupfs ]; then
	step "checkpoint + restore (CRIU; runc, then $RTNAME)" s_checkpoint
	step "checkpoint --export, restore --import (runc, $RTNAME)" s_checkpoint_export
fi
step "cleanup: containers, state" s_cleanup
s_leftovers() { leftovers "$S"; }
export -f s_leftovers leftovers stray_pids
step "nothing left running" s_leftovers
exit "$FAILS"
