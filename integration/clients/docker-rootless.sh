#!/usr/bin/env bash
# integration/clients/docker-rootless.sh NAME RUNTIME — rootless docker 20.10 driving RUNTIME:
# an unprivileged user (uid 2001, /etc/subuid and /etc/subgid ranges) starts
# dockerd-rootless.sh (Debian's docker.io contrib script: rootlesskit with slirp4netns puts
# dockerd, its containerd and the shims in a user namespace of the user's), with RUNTIME as the
# default runtime, the vfs storage driver and no bridge. Cgroup driver $CLIENTS_DRIVER: only
# systemd is meaningful (the user's own manager, user@2001.service, delegates a subtree;
# the runtime gets --systemd-cgroup and must use the user's bus). Runs in the guest
# (integration/clients/guest); prints PASS/FAIL per step; exits with the number of failures.
CLIENT=docker-rl
RTNAME=$1
# shellcheck source=integration/clients/lib.sh
. "$(dirname "$0")/lib.sh"
rt_setup "$2" || exit 1
chmod 666 "$RTLOG"

USR=dockrl UID_=2001
S=/var/lib/clients/docker-rl-$RTNAME
H=$S/home
XRD=/run/user/$UID_
mkdir -p "$H"
# slirp4netns needs a tun device in rootlesskit's network namespace, open to the user (as
# udev's rules make it; devtmpfs alone gives 0600).
modprobe tun 2>/dev/null
chmod 666 /dev/net/tun
rootless_user "$USR" "$UID_" "$H" 400000
chown -R "$UID_:$UID_" "$S" "$XRD"
cp "$IMG/rootfs.tar" "$S/rootfs.tar" && chown "$UID_:$UID_" "$S/rootfs.tar"

RTID=clients-$RTNAME
U="setpriv --reuid $UID_ --regid $UID_ --init-groups -- env -i HOME=$H USER=$USR LOGNAME=$USR \
XDG_RUNTIME_DIR=$XRD DBUS_SESSION_BUS_ADDRESS=unix:path=$XRD/bus \
PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin DOCKER_HOST=unix://$XRD/docker.sock \
DOCKER_CONFIG=$H/.docker"
$U /usr/share/docker.io/contrib/dockerd-rootless.sh --data-root "$H/data" \
	--pidfile "$XRD/docker.pid" -H "unix://$XRD/docker.sock" --storage-driver vfs \
	--bridge none --iptables=false --ip6tables=false --userland-proxy=false \
	--exec-opt "native.cgroupdriver=$DRIVER" --add-runtime "$RTID=$RT" --default-runtime "$RTID" \
	--log-level debug >"$S/dockerd.log" 2>&1 &
DPID=$!

USER_CG=/user.slice/user-$UID_.slice/user@$UID_.service
export D="$U docker"
export C="$D" I=busybox:local R="--network none" S H UID_ XRD SCOPE_PREFIX=docker USER_CG \
	UC="$U systemctl --user"
# shellcheck source=integration/clients/rootless-steps.sh
. "$CLIENTS_DIR/rootless-steps.sh"

s_daemon() {
	wait_for 60 $D version || { grep -v 'level=debug' "$S/dockerd.log" | tail -n 30; return 1; }
	want "$RTID" $D info --format '{{.DefaultRuntime}}' &&
		want 'name=rootless' $D info --format '{{.SecurityOptions}}' &&
		want "^$DRIVER\$" $D info --format '{{.CgroupDriver}}'
}
s_import() { $D import "$S/rootfs.tar" "$I" && want 'busybox +local' $D images; }
s_update() {
	$D update --memory 64m --memory-swap 64m --pids-limit 100 bg || return 1
	local cg
	cg=$(cg_of "$(pid_of bg)")
	want '^67108864$' cat "$cg/memory.max" && want '^100$' cat "$cg/pids.max"
}
s_cleanup() {
	local c left
	for c in $($D ps -a -q); do $D rm -f "$c" >/dev/null; done
	left=$($D ps -a -q)
	[ -z "$left" ] || { echo "containers left: $left"; return 1; }
	$D rmi -f "$I" >/dev/null
}
export -f $(compgen -A function s_)

step "dockerd-rootless.sh starts (rootlesskit, default runtime)" s_daemon
step "docker import (rootfs tar)" s_import
step "run: prints, root is the user" s_run
step "run: exit code" s_run_rc
step "run -it: terminal" s_run_tty
step "run -d: detached, init as the user" s_detach
if [ "$DRIVER" = systemd ]; then
	step "systemd: the init in a scope of the user's manager" s_scope
	step "systemd: update (memory, pids) in the scope's files" s_update
	step "systemd: pause, unpause (delegated freezer)" s_pause
fi
step "exec" s_exec
step "exec: exit code" s_exec_rc
step "exec -it: terminal" s_exec_tty
step "stop: SIGTERM -> exit 42" s_stop_rc
step "rm" s_rm
step "bind volume, both ways" s_volume
step "cleanup: containers, image" s_cleanup

# rootlesskit ends dockerd (and its containerd) with it.
stop_pid "$DPID" 30
s_leftovers() {
	local p
	for p in $(pgrep -u "$UID_" -f 'rootlesskit|dockerd|containerd|slirp4netns' 2>/dev/null); do
		echo "left running: $p $(tr '\0' ' ' <"/proc/$p/cmdline")"
		kill -KILL "$p" 2>/dev/null
	done
	no_user_scopes || { leftovers "$S"; return 1; }
	rootless_user_gone "$UID_"
	leftovers "$S"
}
export -f s_leftovers leftovers stray_pids rootless_user_gone
step "nothing left running" s_leftovers
cp "$S/dockerd.log" "$OUT/docker-rl-$RTNAME.daemon.log" 2>/dev/null
exit "$FAILS"
