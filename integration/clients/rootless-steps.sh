# integration/clients/rootless-steps.sh — sourced by podman-rootless.sh and docker-rootless.sh:
# the steps both rootless clients share, written once against C (the client's command line,
# run as the user), I (the image), R (run options), UID_ (the user), S (the state dir),
# SCOPE_PREFIX (the client's unit prefix: libpod, docker), USER_CG (the user's manager's
# cgroup) and UC (`systemctl --user` as the user). Defines pid_of, status_of and the s_*
# step functions; the client script exports them (export -f) with its own.

LOOP='trap "exit 42" TERM; while :; do sleep 1; done'
export LOOP
pid_of() { $C inspect -f '{{.State.Pid}}' "$1"; }
status_of() { $C inspect -f '{{.State.Status}}' "$1"; }
scope_of() { echo "$SCOPE_PREFIX-$($C inspect -f '{{.Id}}' "$1").scope"; }
export -f pid_of status_of scope_of

s_run() {
	local o
	o=$($C run --rm $R "$I" sh -c 'echo hello from a rootless container; id -u; cat /proc/self/uid_map')
	printf '%s\n' "$o"
	grep -qx 'hello from a rootless container' <<<"$o" && grep -qx 0 <<<"$o" || return 1
	# Root in the container is the user on the host (the client's namespace maps 0 to it).
	grep -Eq "^ *0 +$UID_ +1\$" <<<"$o" || { echo "container root is not uid $UID_"; return 1; }
}
s_run_rc() { want_rc 3 $C run --rm $R "$I" sh -c 'exit 3'; }
s_run_tty() { want_tty '^/dev/pts/[0-9]+$' "$C run -it --rm $R $I sh -c 'tty; sleep 0.3'"; }
s_detach() {
	$C run -d --name bg $R "$I" sh -c "$LOOP" || return 1
	want '^running$' status_of bg || return 1
	# The container's init runs as the user on the host.
	want "^Uid:\s+$UID_\s" grep '^Uid:' "/proc/$(pid_of bg)/status"
}
# (systemd) The user's manager made the container's scope, below its own cgroup.
s_scope() {
	local p u cg
	p=$(pid_of bg) u=$(scope_of bg)
	cg=$(cg_of "$p")
	echo "+ init $p in ${cg#/sys/fs/cgroup}"
	[ "$cg" = "/sys/fs/cgroup$USER_CG/user.slice/$u" ] || { echo "expected $USER_CG/user.slice/$u"; return 1; }
	want '^active$' $UC show -p ActiveState --value "$u"
}
# (systemd) user@.service delegates the freezer with the rest.
s_pause() {
	local p
	p=$(pid_of bg)
	$C pause bg && want '^paused$' status_of bg && frozen "$p" 1 || return 1
	$C unpause bg && want '^running$' status_of bg && frozen "$p" 0
}
s_exec() { want '^hi$' $C exec bg echo hi; }
s_exec_rc() { want_rc 5 $C exec bg sh -c 'exit 5'; }
s_exec_tty() { want_tty '^/dev/pts/[0-9]+$' "$C exec -it bg tty"; }
s_stop_rc() {
	$C stop -t 10 bg || return 1
	want '^exited$' status_of bg && want '^42$' $C inspect -f '{{.State.ExitCode}}' bg
}
s_rm() {
	local u s
	u=$(scope_of bg)
	$C rm bg && ! $C ps -a --format '{{.Names}}' | grep -x bg || return 1
	[ "$DRIVER" = cgroupfs ] && return
	# The runtime's delete stopped the scope in the user's manager.
	s=$($UC show -p LoadState --value "$u")
	echo "+ $u: LoadState=$s"
	[ "$s" = not-found ] && [ ! -e "/sys/fs/cgroup$USER_CG/user.slice/$u" ]
}
s_volume() {
	local v=$S/vol
	mkdir -p "$v" && chown "$UID_:$UID_" "$v" && echo from-host >"$v/in" && chown "$UID_:$UID_" "$v/in"
	want '^from-host$' $C run --rm $R -v "$v:/v" "$I" sh -c 'cat /v/in; echo from-container > /v/out' || return 1
	want '^from-container$' cat "$v/out" && want "^$UID_\$" stat -c %u "$v/out"
}
# No container scope left in the user's manager.
no_user_scopes() {
	[ "$DRIVER" = systemd ] || return 0
	local units
	units=$($UC list-units --all --type=scope --plain --no-legend | awk -v p="$SCOPE_PREFIX-" 'index($1, p) == 1 { print $1 }')
	[ -z "$units" ] || { echo "scopes left in the user's manager: $units"; return 1; }
}
export -f no_user_scopes
