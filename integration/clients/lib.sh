# integration/clients/lib.sh — sourced by the per-client scenario scripts in the guest.
#
# Provides: rt_setup (the logging wrapper), step (PASS/FAIL with a timeout, the step's output
# and the runtime calls that failed during it), want / want_rc / want_tty (assertions),
# cg_of / frozen (cgroup checks), want_scope / scope_gone (systemd driver), leftovers (nothing
# running, nothing mounted, no container scope left).
#
# Variables the scenario sets before calling step: CLIENT, RTNAME. Set here: RT (the
# wrapper path the client is given), RTREAL, RTLOG, OUT (results dir), S (state dir).

STEP_TIMEOUT=${STEP_TIMEOUT:-120}
CLIENTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
IMG=${CLIENTS_IMG:?CLIENTS_IMG: the image directory (build-image)}
OUT=${CLIENTS_OUT:?CLIENTS_OUT: the results directory}
RESULTS=$OUT/results.txt
FAILS=0
# The cgroup driver the client is configured with: cgroupfs, or systemd (transient scopes over
# D-Bus: needs systemd as PID 1, the guest of scripts/vm --systemd).
DRIVER=${CLIENTS_DRIVER:-cgroupfs}
case $DRIVER in
cgroupfs) ;;
systemd) [ "$(cat /proc/1/comm)" = systemd ] || { echo "CLIENTS_DRIVER=systemd: PID 1 is not systemd" >&2; exit 100; } ;;
*) echo "CLIENTS_DRIVER: cgroupfs or systemd, not $DRIVER" >&2; exit 100 ;;
esac
export CLIENTS_DIR IMG OUT DRIVER

# rt_setup REALPATH: the wrapper at /run/clients/rt/<name>/<basename of REALPATH>.
rt_setup() {
	RTREAL=$(readlink -f "$1")
	[ -x "$RTREAL" ] || { echo "runtime $1 is not executable" >&2; return 1; }
	local base=${1##*/}
	mkdir -p "/run/clients/rt/$RTNAME"
	RT=/run/clients/rt/$RTNAME/$base
	RTLOG=$OUT/$CLIENT-$RTNAME.calls.log
	: >"$RTLOG"
	sed -e "s|@REAL@|$RTREAL|" -e "s|@LOG@|$RTLOG|" "$CLIENTS_DIR/rt-wrapper" >"$RT"
	chmod 755 "$RT"
	export RT RTREAL RTLOG
}

# step NAME FUNCTION [ARGS...]: runs FUNCTION in a child bash under a timeout.
step() {
	local name=$1 fn=$2
	shift 2
	local mark t0 t1 rc o secs
	mark=$(stat -c %s "$RTLOG" 2>/dev/null || echo 0)
	t0=$(date +%s%N)
	# Output into a file (on the results share), not a pipe: a daemon forked during the step
	# may keep a pipe open forever, and the file shows what hung if the guest is killed.
	echo "$(date +%T) $CLIENT $RTNAME: $name" >>"$OUT/progress.log"
	timeout -k 5 "$STEP_TIMEOUT" bash -c '"$@"' step "$fn" "$@" >"$OUT/step.out" 2>&1 </dev/null
	rc=$?
	o=$(cat "$OUT/step.out")
	t1=$(date +%s%N)
	secs=$(printf '%d.%01d' $(((t1 - t0) / 1000000000)) $((((t1 - t0) / 100000000) % 10)))
	if [ $rc = 0 ]; then
		printf 'PASS %-8s %-6s %-34s %5ss\n' "$CLIENT" "$RTNAME" "$name" "$secs"
		echo "$CLIENT $RTNAME PASS $secs $name" >>"$RESULTS"
	else
		FAILS=$((FAILS + 1))
		[ $rc = 124 ] && o+=$'\n'"(step timed out after ${STEP_TIMEOUT}s)"
		printf 'FAIL %-8s %-6s %-34s %5ss\n' "$CLIENT" "$RTNAME" "$name" "$secs"
		echo "$CLIENT $RTNAME FAIL $secs $name" >>"$RESULTS"
		printf '%s\n' "$o" | tail -n 40 | sed 's/^/     | /'
		# The runtime calls of this step that failed, with their errors.
		tail -c +$((mark + 1)) "$RTLOG" 2>/dev/null | awk '
			/^=== / { show = ($3 != "rc=0") }
			show' | tail -n 40 | sed 's/^/     rt| /'
		{
			echo "--- FAIL $CLIENT $RTNAME $name"
			printf '%s\n' "$o"
			echo "--- runtime calls during the step:"
			tail -c +$((mark + 1)) "$RTLOG" 2>/dev/null
		} >>"$OUT/failures.log"
	fi
	return 0
}

# want REGEX CMD...: CMD succeeds and its output (stdout+stderr) matches the ERE.
want() {
	local re=$1 o rc
	shift
	echo "+ $*"
	o=$("$@" 2>&1)
	rc=$?
	printf '%s\n' "$o"
	[ $rc = 0 ] || { echo "exit status $rc (expected 0)"; return 1; }
	grep -Eq -- "$re" <<<"$o" || { echo "output does not match /$re/"; return 1; }
}

# want_rc N CMD...: CMD exits with status N.
want_rc() {
	local n=$1 rc
	shift
	echo "+ $*"
	"$@" 2>&1
	rc=$?
	[ "$rc" = "$n" ] || { echo "exit status $rc (expected $n)"; return 1; }
}

# want_tty REGEX 'SHELL COMMAND': run under a pseudo-terminal (script), like a user at a
# terminal typing the command; its output must match the ERE.
want_tty() {
	local re=$1 cmd=$2 o rc
	echo "+ script -qec \"$cmd\" /dev/null"
	# script(1) sees EOF on its stdin and the pty echoes it as "^@" or "^D": drop those.
	o=$(script -qec "$cmd" /dev/null 2>&1 </dev/null | tr -d '\r\0' | sed 's/\^[@D]//g')
	rc=${PIPESTATUS[0]}
	printf '%s\n' "$o"
	[ "$rc" = 0 ] || { echo "exit status $rc (expected 0)"; return 1; }
	grep -Eq -- "$re" <<<"$o" || { echo "output does not match /$re/"; return 1; }
}

# req STRING: STRING as an ERE that matches it literally.
req() { sed 's/[][\.*^$+?(){}|/]/\\&/g' <<<"$1"; }

# cg_of PID: the cgroup v2 directory of a process.
cg_of() { echo "/sys/fs/cgroup$(sed -n 's/^0:://p' "/proc/$1/cgroup")"; }

# want_scope PID UNIT SLICE: (systemd driver) PID is in the transient scope UNIT below
# SLICE's cgroup, and systemd has the unit active.
want_scope() {
	local cg
	cg=$(cg_of "$1")
	echo "+ pid $1 in ${cg#/sys/fs/cgroup}; systemctl show $2"
	[ "$cg" = "/sys/fs/cgroup/$3/$2" ] || { echo "expected /$3/$2"; return 1; }
	want '^active$' systemctl show -p ActiveState --value "$2" &&
		want "^/$(req "$3/$2")\$" systemctl show -p ControlGroup --value "$2"
}

# want_prop UNIT PROPERTY VALUE: systemctl show has that value.
want_prop() { want "^$(req "$3")\$" systemctl show -p "$2" --value "$1"; }

# scope_gone UNIT: systemd has no such unit any more, and no cgroup of that name is left.
scope_gone() {
	local s left
	s=$(systemctl show -p LoadState --value "$1")
	left=$(find /sys/fs/cgroup -name "$1" -type d 2>/dev/null)
	echo "+ $1: LoadState=$s${left:+, cgroup left: $left}"
	[ "$s" = not-found ] && [ -z "$left" ]
}

# frozen PID 0|1: the process's cgroup reports that freezer state.
frozen() {
	local cg
	cg=$(cg_of "$1")
	echo "+ grep frozen $cg/cgroup.events"
	grep frozen "$cg/cgroup.events"
	grep -qx "frozen $2" "$cg/cgroup.events"
}

# wait_for SECS CMD...: retry CMD until it succeeds.
wait_for() {
	local n=$(($1 * 5))
	shift
	while ! "$@" >/dev/null 2>&1; do
		n=$((n - 1))
		[ $n -gt 0 ] || return 1
		sleep 0.2
	done
}

# wait_gone SECS PID
wait_gone() { wait_for "$1" eval "! kill -0 $2"; }

# The netns of this (the guest's) root: containers with --network host must share it.
HOST_NETNS=$(readlink /proc/self/ns/net)
export HOST_NETNS

# The cgroups the guest's own processes live in: the root; with systemd as PID 1 also
# init.scope and the services (journald, dbus, and ours, where the daemons under test run too).
HOME_CGROUPS='^/$'
[ "$(cat /proc/1/comm)" = systemd ] && HOME_CGROUPS='^/$|^/init\.scope$|^/system\.slice/[^/]+\.service$'
export HOME_CGROUPS

# Processes that belong to clients or containers: anything outside the guest's own cgroups,
# and any daemon, shim, conmon or runtime left over.
stray_pids() {
	grep -H '^0::' /proc/[0-9]*/cgroup 2>/dev/null | awk -F: -v me=$$ -v sub_=${BASHPID:-$$} '
		{ split($1, a, "/"); p = a[3]; if (p == me || p == sub_) next
		  if ($4 !~ ENVIRON["HOME_CGROUPS"]) { print p; next }
		  comm = ""; f = "/proc/" p "/comm"; if ((getline comm < f) > 0) close(f)
		  if (comm ~ /^(containerd.*|dockerd|docker-proxy|conmon|podman|runc|crun|skiff|ctr|docker)$/) print p }'
}

# leftovers STATE_DIR: nothing of the client still running or mounted; kills (by pid) and
# unmounts what it finds so the next scenario starts clean. Fails if it found anything.
leftovers() {
	local s=$1 bad=0 p pids m
	pids=$(stray_pids)
	if [ -n "$pids" ]; then
		bad=1
		echo "processes left running:"
		for p in $pids; do
			echo "  $p $(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null) [$(sed -n 's/^0:://p' "/proc/$p/cgroup" 2>/dev/null)]"
		done
		for p in $pids; do kill -KILL "$p" 2>/dev/null; done
		sleep 0.5
	fi
	m=$(awk -v s="$s" '$5 == s || index($5, s "/") == 1 { print $5 }' /proc/self/mountinfo)
	if [ -n "$m" ]; then
		bad=1
		echo "mounts left under $s:"
		printf '  %s\n' $m
		printf '%s\n' $m | sort -r | while read -r p; do umount -l "$p" 2>/dev/null; done
	fi
	local cgs='' f d
	# (cgroupfs files have size 0 whatever they hold: read them.)
	while read -r f; do
		d=${f%/cgroup.procs}
		[[ ${d#/sys/fs/cgroup} =~ $HOME_CGROUPS ]] && continue
		read -r p <"$f" 2>/dev/null && [ -n "$p" ] && cgs+=" $d"
	done < <(find /sys/fs/cgroup -mindepth 2 -name cgroup.procs 2>/dev/null)
	if [ -n "$cgs" ]; then
		bad=1
		echo "cgroups with processes:"
		printf '  %s\n' $cgs
	fi
	# A container's transient scope must go with the container (the systemd driver's delete).
	if [ "$(cat /proc/1/comm)" = systemd ]; then
		local units
		units=$(systemctl list-units --all --type=scope --plain --no-legend | awk '$1 != "init.scope" { print $1 }')
		if [ -n "$units" ]; then
			bad=1
			echo "scope units left:"
			printf '  %s\n' $units
		fi
	fi
	return $bad
}

# rootless_user NAME UID HOME SUBID: an unprivileged user with /etc/subuid and /etc/subgid
# ranges (65536 ids from SUBID) and, for the systemd driver, its own manager (what
# `loginctl enable-linger` starts: user@UID.service, its runtime dir and dbus-user-session's
# bus), else a runtime dir made by hand.
rootless_user() {
	local name=$1 uid=$2 home=$3 sub=$4 xrd=/run/user/$2
	grep -q "^$name:" /etc/passwd || echo "$name:x:$uid:$uid::$home:/bin/sh" >>/etc/passwd
	grep -q "^$name:" /etc/group || echo "$name:x:$uid:" >>/etc/group
	# (An account entry, no password: PAM's account check for user@.service needs one.)
	grep -q "^$name:" /etc/shadow || echo "$name:*:19000:0:99999:7:::" >>/etc/shadow
	grep -q "^$name:" /etc/subuid 2>/dev/null || echo "$name:$sub:65536" >>/etc/subuid
	grep -q "^$name:" /etc/subgid 2>/dev/null || echo "$name:$sub:65536" >>/etc/subgid
	if [ "$DRIVER" = systemd ]; then
		systemctl start "user@$uid.service" || echo "starting user@$uid.service failed"
		wait_for 60 test -S "$xrd/bus" || echo "no user bus at $xrd/bus"
	else
		mkdir -p "$xrd" && chmod 700 "$xrd"
	fi
	chown "$uid:$uid" "$xrd"
}

# rootless_user_gone UID: (systemd driver) the user's manager and runtime dir stopped, as at
# the end of a lingering user's life.
rootless_user_gone() {
	[ "$DRIVER" = systemd ] || return 0
	systemctl stop "user@$1.service" "user-runtime-dir@$1.service"
}

# stop_pid PID [SECS]: TERM, then KILL after SECS; reaps it if it is our child.
stop_pid() {
	local p=$1 t=${2:-20}
	kill -0 "$p" 2>/dev/null || return 0
	kill -TERM "$p" 2>/dev/null
	wait_gone "$t" "$p" || { echo "pid $p ignored SIGTERM for ${t}s: SIGKILL"; kill -KILL "$p" 2>/dev/null; }
	wait "$p" 2>/dev/null
	return 0
}

export -f req want want_rc want_tty cg_of frozen wait_for wait_gone want_scope want_prop scope_gone
