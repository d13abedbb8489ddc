#!/usr/bin/env python3
"""Run a command and report its wall time and peak memory, children included.

    python3 bench/measure.py [--label NAME] -- CMD [ARG...]

`/usr/bin/time -v` reports the largest single process's peak RSS; converters that encode
video in child processes (bagstream's ffmpeg encoders, lerobot's encoding process pool) need
the whole tree's. Every 50 ms this sums the proportional set size (Pss: shared pages divided
among the processes sharing them, so forked children are not counted twice) over the
command's process tree (from /proc) and keeps the peak; the last line is
`LABEL: wall S s, peak tree PSS M MiB, peak process RSS M MiB, exit N`. Standard library
only; Linux.
"""

import os
import resource
import subprocess
import sys
import time


def children_map() -> dict:
    kids = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: the ppid follows the last ')'.
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        kids.setdefault(ppid, []).append(int(entry))
    return kids


def pss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_pss_kb(root: int) -> int:
    kids = children_map()
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += pss_kb(pid)
        todo.extend(kids.get(pid, []))
    return total


def main() -> int:
    args = sys.argv[1:]
    label = "run"
    if args[:1] == ["--label"]:
        label, args = args[1], args[2:]
    if args[:1] == ["--"]:
        args = args[1:]
    if not args:
        print(__doc__, file=sys.stderr)
        return 2
    start = time.monotonic()
    proc = subprocess.Popen(args)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, tree_pss_kb(proc.pid))
        time.sleep(0.05)
    wall = time.monotonic() - start
    # ru_maxrss of waited-for children: the largest single process, in KiB.
    single = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(
        f"{label}: wall {wall:.1f} s, peak tree PSS {peak / 1024:.0f} MiB, "
        f"peak process RSS {single / 1024:.0f} MiB, exit {proc.returncode}",
        flush=True,
    )
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
