#!/usr/bin/env bash
# integration/clients/podman-rootless.sh NAME RUNTIME — rootless podman 4.3 driving RUNTIME:
# an unprivileged user (uid 2000, /etc/subuid and /etc/subgid ranges, its own
# XDG_RUNTIME_DIR and storage) runs `podman --runtime PATH` (no network, as the root
# scenario) with cgroup manager $CLIENTS_DRIVER: cgroupfs, or systemd — the user's own
# manager (user@2000.service, started as lingering would, with dbus-user-session's bus),
# where podman asks for scopes and the runtime gets --systemd-cgroup. podman runs the runtime
# as root of its own user namespace (newuidmap with the user's ranges). Runs in the guest
# (integration/clients/guest); prints PASS/FAIL per step; exits with the number of failures.
CLIENT=podman-rl
RTNAME=$1
# shellcheck source=integration/clients/lib.sh
. "$(dirname "$0")/lib.sh"
rt_setup "$2" || exit 1
chmod 666 "$RTLOG"

USR=podrl UID_=2000
S=/var/lib/clients/podman-rl-$RTNAME
H=$S/home
mkdir -p "$H/.config/containers"
rootless_user "$USR" "$UID_" "$H" 300000
BUS=unix:path=/run/user/$UID_/bus
cat >"$H/.config/containers/containers.conf" <<CONF
[containers]
netns = "none"
log_driver = "k8s-file"
[engine]
cgroup_manager = "$DRIVER"
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
XDG_RUNTIME_DIR=/run/user/$UID_ DBUS_SESSION_BUS_ADDRESS=$BUS PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin TMPDIR=$S"
export P="$U podman --runtime $RT"
USER_CG=/user.slice/user-$UID_.slice/user@$UID_.service
export C="$P" R="--network none" I=localhost/busybox:local S H UID_ SCOPE_PREFIX=libpod USER_CG \
	UC="$U systemctl --user"
# shellcheck source=integration/clients/rootless-steps.sh
. "$CLIENTS_DIR/rootless-steps.sh"

s_info() {
	want "^$(req "$RT") true\$" $P info --format '{{.Host.OCIRuntime.Path}} {{.Host.Security.Rootless}}'
}
s_import() { $P import "$S/rootfs.tar" "$I" && want 'busybox' $P images; }
s_limits() {
	# user@.service delegates memory, pids and cpu: the limits land in the scope's files.
	want '^67108864 50 50000 100000$' $P run --rm $R --memory 64m --pids-limit 50 --cpus 0.5 "$I" \
		sh -c 'echo $(cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max /sys/fs/cgroup/cpu.max)'
}
s_exec_user() { want '^65534 /tmp$' $P exec --user 65534 --workdir /tmp bg sh -c 'echo $(id -u) $(pwd)'; }
s_keep_id() {
	# --userns=keep-id: a user namespace of the container's own, the user's uid kept.
	want "^$UID_ $UID_\$" $P run --rm $R --userns=keep-id "$I" sh -c 'echo $(id -u) $(id -g)'
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
if [ "$DRIVER" = systemd ]; then
	step "systemd: the init in a scope of the user's manager" s_scope
	step "systemd: pause, unpause (delegated freezer)" s_pause
fi
step "exec" s_exec
step "exec: exit code" s_exec_rc
step "exec -it: terminal" s_exec_tty
step "exec --user --workdir" s_exec_user
step "stop: SIGTERM -> exit 42" s_stop_rc
step "rm" s_rm
step "run --userns=keep-id" s_keep_id
[ "$DRIVER" = systemd ] && step "systemd: --memory, --pids-limit, --cpus in the scope's files" s_limits
step "bind volume, both ways" s_volume
step "cleanup: containers, images" s_cleanup
s_leftovers() {
	# podman's rootless pause process holds its user namespace: ours to end.
	local p
	for p in $(pgrep -u "$UID_" -f 'catatonit|podman pause' 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
	sleep 0.3
	no_user_scopes || { leftovers "$S"; return 1; }
	rootless_user_gone "$UID_"
	leftovers "$S"
}
export -f s_leftovers leftovers stray_pids rootless_user_gone
step "nothing left running" s_leftovers
exit "$FAILS"
