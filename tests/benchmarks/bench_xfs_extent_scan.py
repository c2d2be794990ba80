#!/usr/bin/env python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark (not a test): xfs_extent_scan on a tree of 100,000 files on XFS against ``find -xdev -type f``.

Makes a real XFS file system on a loop device (tests/helpers/xfs_loop.py; xfsprogs installed when missing),
fills ``MOUNT/tree`` with ``--files`` small files in directories of 100 and a few fragmented files among them,
and puts one more fragmented file outside that tree. Then in the same run, for ``--rounds`` rounds in rotating
order, each in its own process:

* ``find MOUNT/tree -xdev -type f`` (output counted, not printed);
* the scan as the module runs it (module_utils ``_xfs.scan.scan``) of ``MOUNT/tree``, with bulkstat
  (``method: auto``, root) and with one ``fstatat`` per file (``method: stat``, what a non-root run does).
  The file outside the tree is one bulkstat lists but the walk never meets, so these walk the whole tree:
  the worst case. The scan of the whole mount, which stops walking once it has met every file bulkstat
  listed, is measured as well;
* wall time and CPU time (user + system, from ``wait4``) of every process, the scan's own time as it reports
  it, and its peak RSS (VmHWM); and the peak RSS of a process that only imports the scan code.

Caches are warm (one untimed round first). The machine is shared and its load moves wall times a lot, so
every round is printed, the best of each is compared, and CPU time ratios are printed beside wall time ratios.
Everything is unmounted and detached at the end, also on Ctrl-C.

Run as root: python tests/benchmarks/bench_xfs_extent_scan.py [--files 100000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
try:
    from collection_tree import collections_root
    from helpers.xfs_loop import XfsLoop, interleaved, stop_on_signal
except ImportError:
    # Started as a script: run again with tests/ on the import path (no sys.path edits).
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([TESTS] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    os.execve(sys.executable, [sys.executable] + sys.argv, env)

CHILD = r"""
import json, sys, time
started = time.monotonic()
from ansible_collections.memfrag.linux.plugins.module_utils._xfs.scan import scan
imported = time.monotonic()

def peak_kib():
    # VmHWM of this process image: wait4's ru_maxrss would also count the parent's memory copied at fork.
    with open("/proc/self/status") as handle:
        return int([line.split()[1] for line in handle if line.startswith("VmHWM:")][0])

if sys.argv[1] == "import-only":
    print(json.dumps({"import_seconds": imported - started, "peak_kib": peak_kib()}))
    sys.exit(0)
if sys.argv[1] == "bulkstat-only":
    import os
    from ansible_collections.memfrag.linux.plugins.module_utils._xfs.ioctl import bulkstat_large_files
    fd = os.open(sys.argv[2], os.O_RDONLY | os.O_DIRECTORY)
    cpu = time.process_time()
    _found, seen, _done = bulkstat_large_files(fd, int(sys.argv[3]))
    print(json.dumps({"bulkstat_cpu": time.process_time() - cpu, "inodes": seen, "peak_kib": peak_kib()}))
    sys.exit(0)
result, warnings = scan({"paths": [sys.argv[2]], "min_extents": int(sys.argv[3]), "method": sys.argv[1],
                         "time_limit": 3600, "max_files": 10 ** 9, "open_by": sys.argv[4] == "open_by"})
walked = result["scanned"][0]
print(json.dumps({"scan_seconds": result["seconds"], "import_seconds": imported - started, "found": result["found"],
                  "entries": result["entries"], "method": walked["method"], "walked": walked["walked"],
                  "opened": walked["opened"], "stopped_early": result["stopped_early"], "peak_kib": peak_kib()}))
"""


def measure(cmd, env=None):
    """Run one process; (stdout, wall seconds, CPU seconds user+system, peak RSS KiB), from wait4 for it alone."""
    started = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, env=env)
    out = proc.stdout.read()
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - started
    proc.stdout.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit("%s failed with %d" % (cmd[:3], os.waitstatus_to_exitcode(status)))
    return out, wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss


def scan_child(method, path, min_extents, env, open_by=False):
    out, wall, cpu, _rss = measure([sys.executable, "-c", CHILD, method, path, str(min_extents),
                                    "open_by" if open_by else "-"], env)
    result = json.loads(out)
    return result, wall, cpu, result["peak_kib"]


def build_tree(mount, files, fragmented, seed):
    rng = random.Random(seed)
    per_dir = 100
    payload = b"x" * 16384
    made = 0
    started = time.monotonic()
    tree = os.path.join(mount, "tree")
    for top in range((files + per_dir * 10 - 1) // (per_dir * 10)):
        for sub in range(10):
            if made >= files:
                break
            directory = os.path.join(tree, "t%03d" % top, "d%02d" % sub)
            os.makedirs(directory)
            for index in range(min(per_dir, files - made)):
                fd = os.open(os.path.join(directory, "f%03d" % index), os.O_WRONLY | os.O_CREAT, 0o644)
                os.write(fd, payload[:rng.randrange(0, 16384)])
                os.close(fd)
                made += 1
    planted = []
    for index in range(fragmented):
        path = os.path.join(tree, "t%03d" % rng.randrange(0, max(1, files // 1000)), "vm%d.img" % index)
        planted.append((path, interleaved(path, 1000 * (index + 2))[0]))
    outside = os.path.join(mount, "outside.img")
    planted.append((outside, interleaved(outside, 2000)[0]))
    os.sync()
    return time.monotonic() - started, tree, planted


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--files", type=int, default=100000)
    parser.add_argument("--fragmented", type=int, default=5, help="fragmented files planted in the tree")
    parser.add_argument("--min-extents", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--size-mb", type=int, default=3072, help="size of the XFS image (sparse)")
    parser.add_argument("--dir", default="/var/tmp", help="where the image lives (not tmpfs)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: needs a loop device and mount")

    env = dict(os.environ, PYTHONPATH=collections_root())
    loop = XfsLoop(tempfile.mkdtemp(prefix="memfrag-bench-xfs-", dir=args.dir), args.size_mb)
    stop_on_signal(loop)
    try:
        loop.start()
        mount = loop.mountpoint
        seconds, tree, planted = build_tree(mount, args.files, args.fragmented, 12)
        print("tree: %d files in %.1f s on %s (%s); fragmented: %s" % (
            args.files, seconds, loop.device, tree, ", ".join("%s %d extents" % (os.path.relpath(p, mount), n) for p, n in planted)))
        planted_in_tree = sum(1 for path, _extents in planted if path.startswith(tree + "/"))
        in_tree = sum(1 for path, extents in planted if extents >= args.min_extents and path.startswith(tree + "/"))
        everywhere = sum(1 for _path, extents in planted if extents >= args.min_extents)

        imported, _wall, _cpu, import_rss = scan_child("import-only", "", 0, env)
        find_cmd = ["find", tree, "-xdev", "-type", "f"]
        measure(find_cmd)  # warm-up round, untimed
        for method in ("auto", "stat"):
            scan_child(method, tree, args.min_extents, env)

        names = ["find", "auto", "stat", "mount", "open_by"]
        wall = dict((name, []) for name in names)
        cpu = dict((name, []) for name in names)
        own = dict((name, []) for name in names)
        rss = dict((name, 0) for name in names)
        order = list(names)
        for number in range(args.rounds):
            line = []
            for name in order:
                if name == "find":
                    out, seconds, used, peak = measure(find_cmd)
                    assert out.count(b"\n") == args.files + planted_in_tree, out.count(b"\n")
                    wall["find"].append(seconds)
                    cpu["find"].append(used)
                    line.append("find %.3fs cpu %.3fs" % (seconds, used))
                    continue
                method, path, expected = {"mount": ("auto", mount, everywhere), "open_by": ("auto", tree, in_tree)}.get(
                    name, (name, tree, in_tree))
                result, seconds, used, peak = scan_child(method, path, args.min_extents, env, open_by=name == "open_by")
                assert result["found"] == expected and result["stopped_early"] is None, result
                wall[name].append(seconds)
                cpu[name].append(used)
                own[name].append(result["scan_seconds"])
                rss[name] = max(rss[name], peak)
                line.append("scan %s %.3fs cpu %.3fs (scan itself %.3fs, %s, walked %s, opened %d)" % (
                    {"mount": "auto of the whole mount", "open_by": "auto with open_by"}.get(name, name), seconds, used,
                    result["scan_seconds"],
                    result["method"], result["walked"], result["opened"]))
            print("round %d: %s" % (number + 1, "; ".join(line)))
            order = order[1:] + order[:1]

        best_wall = dict((name, min(values)) for name, values in wall.items())
        best_cpu = dict((name, min(values)) for name, values in cpu.items())
        best_own = dict((name, min(values)) for name, values in own.items() if values)
        print("best of %d, wall: find %.3fs; scan with bulkstat %.3fs = %.2fx (scan itself %.3fs = %.2fx); "
              "with fstatat per file %.3fs = %.2fx (scan itself %.3fs = %.2fx); whole mount %.3fs = %.2fx"
              % (args.rounds, best_wall["find"], best_wall["auto"], best_wall["auto"] / best_wall["find"],
                 best_own["auto"], best_own["auto"] / best_wall["find"], best_wall["stat"], best_wall["stat"] / best_wall["find"],
                 best_own["stat"], best_own["stat"] / best_wall["find"], best_wall["mount"], best_wall["mount"] / best_wall["find"]))
        print("best of %d, CPU: find %.3fs; scan with bulkstat %.3fs = %.2fx; with fstatat per file %.3fs = %.2fx; whole mount %.3fs = %.2fx"
              % (args.rounds, best_cpu["find"], best_cpu["auto"], best_cpu["auto"] / best_cpu["find"], best_cpu["stat"],
                 best_cpu["stat"] / best_cpu["find"], best_cpu["mount"], best_cpu["mount"] / best_cpu["find"]))
        print("Python start and imports in every scan process: %.3fs; looking up the holders of the files found "
              "(open_by: every /proc/PID/fd and maps, %d processes here) adds %.3fs wall"
              % (imported["import_seconds"], len([n for n in os.listdir("/proc") if n.isdigit()]),
                 best_own["open_by"] - best_own["auto"]))
        peaks = (rss["auto"] / 1024.0, rss["stat"] / 1024.0, rss["mount"] / 1024.0, import_rss / 1024.0)
        print("peak RSS: scan with bulkstat %.1f MiB, with fstatat %.1f MiB, whole mount %.1f MiB; "
              "a process that only imports the scan %.1f MiB" % peaks)
        bulk = min((scan_child("bulkstat-only", mount, args.min_extents, env)[0] for _round in range(args.rounds)),
                   key=lambda item: item["bulkstat_cpu"])
        print("bulkstat alone (the inode reads any size test needs and find -type f does not do): %d inodes, CPU %.3fs = "
              "%.2fx find's whole CPU time" % (bulk["inodes"], bulk["bulkstat_cpu"], bulk["bulkstat_cpu"] / best_cpu["find"]))
        ratio = best_wall["auto"] / best_wall["find"]
        print("target within 3x of find (whole scan process with bulkstat, full walk, wall): %.2fx, %s"
              % (ratio, "met" if ratio <= 3 else "NOT met"))
    finally:
        loop.stop()
        try:
            os.rmdir(loop.workdir)
        except OSError:
            print("left behind: %s" % loop.workdir)


if __name__ == "__main__":
    main()
