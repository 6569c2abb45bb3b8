#!/usr/bin/env bash
# integration/clients/podman-rootless.sh NAME RUNTIME — rootless podman 4.3 driving RUNTIME:
# an unprivileged user (uid 2000, /etc/subuid and /etc/subgid ranges, its own
# XDG_RUNTIME_DIR and storage) runs `podman --runtime PATH` with cgroup manager cgroupfs (no
# network, as the root scenario). podman runs the runtime as root of its own user namespace
# (newuidmap with the user's ranges). Runs in the guest (integration/clients/guest); prints
# PASS/FAIL per step; exits with the number of failures.
CLIENT=podman-rl
RTNAME=$1
# shellcheck source=integration/clients/lib.sh
. "$(dirname "$0")/lib.sh"
rt_setup "$2" || exit 1
chmod 666 "$RTLOG"

USR=podrl UID_=2000
S=/var/lib/clients/podman-rl-$RTNAME
H=$S/home
mkdir -p "$H/.config/containers" "/run/user/$UID_"
grep -q "^$USR:" /etc/passwd || echo "$USR:x:$UID_:$UID_::$H:/bin/sh" >>/etc/passwd
grep -q "^$USR:" /etc/group || echo "$USR:x:$UID_:" >>/etc/group
grep -q "^$USR:" /etc/subuid 2>/dev/null || echo "$USR:300000:65536" >>/etc/subuid
grep -q "^$USR:" /etc/subgid 2>/dev/null || echo "$USR:300000:65536" >>/etc/subgid
cat >"$H/.config/containers/containers.conf" <<CONF
[containers]
netns = "none"
log_driver = "k8s-file"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$H/events.log"
conmon_path = ["/usr/bin/conmon"]
lock_type = "file"
runtime_supports_json = ["crun", "runc", "kata", "runsc", "krun", "${RT##*/}"]
runtime_supports_nocgroups = ["crun", "krun"]
CONF
printf '[storage]\ndriver="overlay"\ngraphroot="%s"\nrunroot="%s"\n' "$H/storage" "/run/user/$UID_/containers" \
	>"$H/.config/containers/storage.conf"
chown -R "$UID_:$UID_" "$S" "/run/user/$UID_"
chmod 700 "/run/user/$UID_"
cp "$IMG/rootfs.tar" "$S/rootfs.tar" && chown "$UID_:$UID_" "$S/rootfs.tar"

# Every podman call as the user, in a clean login-like environment.
U="setpriv --reuid $UID_ --regid $UID_ --init-groups -- env -i HOME=$H USER=$USR LOGNAME=$USR \
XDG_RUNTIME_DIR=/run/user/$UID_ PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin TMPDIR=$S"
export P="$U podman --runtime $RT"
export R="--network none" I=localhost/busybox:local S H UID_
LOOP='trap "exit 42" TERM; while :; do sleep 1; done'
export LOOP

pid_of() { $P inspect -f '{{.State.Pid}}' "$1"; }
status_of() { $P inspect -f '{{.State.Status}}' "$1"; }
export -f pid_of status_of

s_info() {
	want "^$(req "$RT") true\$" $P info --format '{{.Host.OCIRuntime.Path}} {{.Host.Security.Rootless}}'
}
s_import() { $P import "$S/rootfs.tar" "$I" && want 'busybox' $P images; }
s_run() {
	local o
	o=$($P run --rm $R "$I" sh -c 'echo hello from rootless podman; id -u; cat /proc/self/uid_map')
	printf '%s\n' "$o"
	grep -qx 'hello from rootless podman' <<<"$o" && grep -qx 0 <<<"$o" || return 1
	# Root in the container is the user on the host (podman's namespace maps 0 to it).
	grep -Eq "^ *0 +$UID_ +1\$" <<<"$o" || { echo "container root is not uid $UID_"; return 1; }
}
s_run_rc() { want_rc 3 $P run --rm $R "$I" sh -c 'exit 3'; }
s_run_tty() { want_tty '^/dev/pts/[0-9]+$' "$P run -it --rm $R $I sh -c 'tty; sleep 0.3'"; }
s_detach() {
	$P run -d --name bg $R "$I" sh -c "$LOOP" || return 1
	want '^running$' status_of bg || return 1
	# The container's init runs as the user on the host.
	local p
	p=$(pid_of bg)
	want "^Uid:\s+$UID_\s" grep '^Uid:' "/proc/$p/status"
}
s_exec() { want '^hi$' $P exec bg echo hi; }
s_exec_rc() { want_rc 5 $P exec bg sh -c 'exit 5'; }
s_exec_tty() { want_tty '^/dev/pts/[0-9]+$' "$P exec -it bg tty"; }
s_exec_user() { want '^65534 /tmp$' $P exec --user 65534 --workdir /tmp bg sh -c 'echo $(id -u) $(pwd)'; }
s_stop_rc() {
	$P stop -t 10 bg || return 1
	want '^exited$' status_of bg && want '^42$' $P inspect -f '{{.State.ExitCode}}' bg
}
s_rm() { $P rm bg && ! $P ps -a --format '{{.Names}}' | grep -x bg; }
s_keep_id() {
	# --userns=keep-id: a user namespace of the container's own, the user's uid kept.
	want "^$UID_ $UID_\$" $P run --rm $R --userns=keep-id "$I" sh -c 'echo $(id -u) $(id -g)'
}
s_volume() {
	local v=$S/vol
	mkdir -p "$v" && chown "$UID_:$UID_" "$v" && echo from-host >"$v/in" && chown "$UID_:$UID_" "$v/in"
	want '^from-host$' $P run --rm $R -v "$v:/v" "$I" sh -c 'cat /v/in; echo from-container > /v/out' || return 1
	want '^from-container$' cat "$v/out" && want "^$UID_\$" stat -c %u "$v/out"
}
s_cleanup() {
	$P rm -a -f -t 1 >/dev/null
	local left
	left=$($P ps -a -q)
	[ -z "$left" ] || { echo "containers left: $left"; return 1; }
	$P rmi -a -f >/dev/null
	# The pause process podman keeps for its user namespace is podman's, not a container's.
	$U podman system migrate >/dev/null 2>&1 || true
}
export -f $(compgen -A function s_)

step "podman info (runtime, rootless)" s_info
step "podman import (rootfs tar)" s_import
step "run: prints, root is the user" s_run
step "run: exit code" s_run_rc
step "run -it: terminal" s_run_tty
step "run -d: detached, init as the user" s_detach
step "exec" s_exec
step "exec: exit code" s_exec_rc
step "exec -it: terminal" s_exec_tty
step "exec --user --workdir" s_exec_user
step "stop: SIGTERM -> exit 42" s_stop_rc
step "rm" s_rm
step "run --userns=keep-id" s_keep_id
step "bind volume, both ways" s_volume
step "cleanup: containers, images" s_cleanup
s_leftovers() {
	# podman's rootless pause process holds its user namespace: ours to end.
	local p
	for p in $(pgrep -u "$UID_" -f 'catatonit|podman pause' 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
	sleep 0.3
	leftovers "$S"
}
export -f s_leftovers leftovers stray_pids
step "nothing left running" s_leftovers
exit "$FAILS"
