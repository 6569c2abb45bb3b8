#!/usr/bin/env python3
"""scripts/bench.d/report.py OUTDIR — print scripts/bench's markdown table.

Reads from OUTDIR (target/bench):
  meta.tsv            KEY<TAB>VALUE lines written by scripts/bench
  <item>.<group>.json hyperfine --export-json of one invocation; command names are
                      runtime names; <group> is "runc" (skiff + runc), "crun"
                      (skiff + crun) or "skiff" (skiff alone)
  rss.json            scripts/bench.d/rss.py's output
"""
import json
import os
import statistics
import struct
import sys

RUNTIMES = ["skiff", "runc", "crun"]
PEERS = ["crun", "runc"]  # ratio columns, in the order asked for
ITEMS = [
    ("run", "`run` /bin/true (create+start+wait+delete), ms"),
    ("create", "create, ms"),
    ("start", "start (created → running), ms"),
    ("delete", "delete a stopped container, ms"),
    ("exec", "`exec` /bin/true into a running container, ms"),
    ("version", "`--version`, ms"),
]


def load_meta(outdir):
    meta = {}
    with open(os.path.join(outdir, "meta.tsv")) as f:
        for line in f:
            key, _, value = line.rstrip("\n").partition("\t")
            meta[key] = value
    return meta


def elf_kind(path):
    """'static' or 'dynamic' (has a PT_INTERP program header), '' if not a 64-bit ELF."""
    try:
        with open(path, "rb") as f:
            head = f.read(64)
            if head[:4] != b"\x7fELF" or head[4] != 2:
                return ""
            endian = "<" if head[5] == 1 else ">"
            phoff, = struct.unpack_from(endian + "Q", head, 32)
            phentsize, phnum = struct.unpack_from(endian + "HH", head, 54)
            f.seek(phoff)
            table = f.read(phentsize * phnum)
        for i in range(phnum):
            p_type, = struct.unpack_from(endian + "I", table, i * phentsize)
            if p_type == 3:  # PT_INTERP
                return "dynamic"
        return "static"
    except OSError:
        return ""


def fmt(v, unit=""):
    if v is None:
        return "–"
    s = f"{v:.2f}" if v < 10 else f"{v:.1f}"
    return s + unit


def main():
    outdir = sys.argv[1]
    meta = load_meta(outdir)
    status = {n: meta.get(f"status.{n}", "SKIP: not configured") for n in RUNTIMES}
    active = [n for n in RUNTIMES if status[n] == "OK"]

    # medians[item][group][name] in ms
    medians = {}
    for item, _ in ITEMS:
        for group in ["crun", "runc", "skiff"]:
            path = os.path.join(outdir, f"{item}.{group}.json")
            if not os.path.exists(path):
                continue
            with open(path) as f:
                results = json.load(f)["results"]
            medians.setdefault(item, {})[group] = {
                r["command"]: r["median"] * 1000 for r in results}

    def cell_missing(item, name):
        if status[name] != "OK":
            return "skip"
        if f"fail.{item}.{name}" in meta:
            return "fail"
        return "–"

    rows, notes = [], []
    for item, label in ITEMS:
        groups = medians.get(item, {})
        values = {}
        for name in RUNTIMES:
            for group in ([name] if name != "skiff" else ["crun", "runc", "skiff"]):
                if name in groups.get(group, {}):
                    values[name] = groups[group][name]
                    break
        row = [label] + [fmt(values[n]) if n in values else cell_missing(item, n) for n in RUNTIMES]
        for peer in PEERS:
            same = groups.get(peer, {})
            if "skiff" in same and peer in same:
                row.append(f"{same['skiff'] / same[peer]:.2f}")
            else:
                row.append("–")
        rows.append(row)
        skiffs = {g: m["skiff"] for g, m in groups.items() if "skiff" in m}
        if len(skiffs) > 1:
            notes.append(f"{item}: " + ", ".join(
                f"{fmt(v)} ms (with {g})" for g, v in sorted(skiffs.items())))

    # peak RSS
    rss = {}
    rss_path = os.path.join(outdir, "rss.json")
    if os.path.exists(rss_path):
        with open(rss_path) as f:
            rss = json.load(f)
    rss_runs = meta.get("rss_runs", "?")
    rss_mib = {n: statistics.median(rss[n]["kib"]) / 1024
               for n in RUNTIMES if n in rss and rss[n]["kib"]}
    row = [f"peak RSS of the runtime during `run`, MiB (median of {rss_runs})"]
    row += [fmt(rss_mib[n]) if n in rss_mib else ("skip" if status[n] != "OK" else "fail")
            for n in RUNTIMES]
    row += [f"{rss_mib['skiff'] / rss_mib[p]:.2f}" if "skiff" in rss_mib and p in rss_mib else "–"
            for p in PEERS]
    rows.append(row)

    # binary size
    size = {}
    for n in RUNTIMES:
        b = meta.get(f"bin.{n}")
        if b and os.path.exists(b):
            size[n] = (os.path.getsize(b) / (1 << 20), elf_kind(b))
    row = ["binary size, MiB"]
    row += [f"{fmt(size[n][0])} ({size[n][1]})" if n in size else "skip" for n in RUNTIMES]
    row += [f"{size['skiff'][0] / size[p][0]:.2f}" if "skiff" in size and p in size else "–"
            for p in PEERS]
    rows.append(row)

    print(f"# skiff benchmark — {meta.get('date', '?')}")
    print()
    print(f"- kernel {meta.get('kernel', '?')}, {meta.get('cpus', '?')} CPUs, {meta.get('cpu_model', '?')}")
    print(f"- load average (1, 5, 15 min) at start {meta.get('load_start', '?')}, "
          f"at end {meta.get('load_end', '?')}")
    print(f"- {meta.get('hyperfine', 'hyperfine ?')}: warmup {meta.get('warmup', '?')}, "
          f"{meta.get('runs', '?')} runs per command; medians in ms")
    for n in RUNTIMES:
        if status[n] == "OK":
            print(f"- {n}: {meta.get(f'version.{n}', '?')} ({meta.get(f'bin.{n}', '?')})")
        else:
            print(f"- {n}: {status[n]}")
    print()
    print("| work | skiff | runc | crun | skiff/crun | skiff/runc |")
    print("|---|--:|--:|--:|--:|--:|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print()
    print("Each ratio compares medians from one hyperfine invocation: skiff and runc are timed "
          "together in a plain private mount namespace, skiff and crun together in the "
          "private mount namespace crun needs on this hybrid-cgroup host (runc cannot run "
          "there). The skiff column is from the invocation with crun when there is one.")
    if rss_mib:
        floor = rss.get("floor", {}).get("kib")
        print(f"Peak RSS is ru_maxrss via {rss.get('method', '?')}, which includes the runtime's "
              "children it reaps (runc init, the container's init before exec); the same "
              "method gives " + (f"{fmt(statistics.median(floor) / 1024)} MiB" if floor else "?")
              + " for busybox true (the floor).")
    if notes:
        print("skiff's medians in each invocation: " + "; ".join(notes) + ".")
    fails = [(k, v) for k, v in meta.items() if k.startswith("fail.")]
    for k, v in fails:
        print(f"FAIL {k[5:]}: {v}")


if __name__ == "__main__":
    main()
