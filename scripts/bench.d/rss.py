#!/usr/bin/env python3
"""scripts/bench.d/rss.py RUNS BUNDLE NAME BIN ROOT ID [NAME BIN ROOT ID ...]

Peak RSS of each runtime during `BIN --root ROOT run --bundle BUNDLE ID`, RUNS times
per runtime, round-robin.  The figure is ru_maxrss from wait4() on the runtime's
process: the high-water mark of the runtime process and of the descendants it
waited for (runc's `runc init`, the container's init before its exec).

ru_maxrss also carries the high-water mark of whatever process forked and exec'd
the runtime (the kernel keeps it across exec), so the measuring parent must be
small: GNU time (/usr/bin/time -f %M, ~1 MiB) when it is installed, else this
python process itself (~14 MiB, which then masks the runtimes' figures).  The same
method's figure for the bundle's `busybox true` is reported as "floor".

Prints JSON {NAME: {"kib": [...], "failures": n, "error": "..."}, "floor": {...},
"method": "..."}.
"""
import json
import os
import subprocess
import sys
import tempfile


def gnu_time():
    for t in ("/usr/bin/time",):
        try:
            out = subprocess.run([t, "--version"], capture_output=True, text=True)
        except OSError:
            continue
        if "GNU" in out.stdout + out.stderr:
            return t
    return None


def measure(argv, timer):
    """(maxrss KiB or None, error text)"""
    # stderr and -o to files, not pipes, which a container's process could hold open
    with tempfile.NamedTemporaryFile() as errf, tempfile.NamedTemporaryFile() as outf:
        if timer:
            argv = [timer, "-f", "%M", "-o", outf.name] + argv
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=errf)
        _, status, usage = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        errf.seek(0)
        err = errf.read().decode(errors="replace").strip()[-500:]
        if p.returncode != 0:
            return None, err or f"exit status {p.returncode}"
        if not timer:
            return usage.ru_maxrss, ""
        lines = open(outf.name).read().split()
        try:
            return int(lines[-1]), ""
        except (IndexError, ValueError):
            return None, "cannot parse GNU time's output"


def main():
    runs, bundle, rest = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
    timer = gnu_time()
    jobs = [(name, [binary, "--root", root, "run", "--bundle", bundle, cid])
            for name, binary, root, cid in (rest[i:i + 4] for i in range(0, len(rest), 4))]
    jobs.append(("floor", [os.path.join(bundle, "rootfs/bin/busybox"), "true"]))
    out = {name: {"kib": [], "failures": 0, "error": ""} for name, _ in jobs}
    for _ in range(runs):
        for name, argv in jobs:
            kib, err = measure(argv, timer)
            if kib is None:
                out[name]["failures"] += 1
                out[name]["error"] = err
            else:
                out[name]["kib"].append(kib)
    out["method"] = "GNU time %M" if timer else "python wait4 (no GNU time)"
    json.dump(out, sys.stdout)
    print()


if __name__ == "__main__":
    main()
