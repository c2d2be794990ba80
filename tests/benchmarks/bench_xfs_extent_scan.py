#!/usr/bin/env python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark (not a test): xfs_extent_scan on a tree of 100,000 files on XFS against ``find -xdev -type f``.

Makes a real XFS file system on a loop device (tests/helpers/xfs_loop.py; xfsprogs installed when missing),
fills it with ``--files`` small files in directories of 100 and a few fragmented files among them, then in
the same run, for ``--rounds`` rounds in rotating order:

* ``find MOUNT -xdev -type f`` (output counted, not printed), wall time of the process;
* the scan as the module runs it (module_utils ``_xfs.scan.scan``), once with bulkstat (``method: auto``,
  root) and once with one ``fstatat`` per file (``method: stat``, what a non-root run does); each in a child
  process that reports the scan's own time, with the child's wall time and peak RSS (``wait4``) beside it;
* the peak RSS of a child that only imports the scan code, for comparison.

Caches are warm (one untimed round first); the machine is shared, so every round is printed and the ratio
is taken from the best of each. Everything is unmounted and detached at the end, also on Ctrl-C.

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
    from helpers.xfs_loop import XfsLoop, fragment, stop_on_signal
except ImportError:
    # Started as a script: run again with tests/ on the import path (no sys.path edits).
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([TESTS] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    os.execve(sys.executable, [sys.executable] + sys.argv, env)

CHILD = r"""
import json, sys, time
started = time.monotonic()
from ansible_collections.memfrag.linux.plugins.module_utils._xfs.scan import scan
imported = time.monotonic()
if sys.argv[1] == "import-only":
    print(json.dumps({"import_seconds": imported - started}))
    sys.exit(0)
result, warnings = scan({"paths": [sys.argv[2]], "min_extents": int(sys.argv[3]), "method": sys.argv[1],
                         "time_limit": 3600, "max_files": 10 ** 9})
print(json.dumps({"scan_seconds": result["seconds"], "import_seconds": imported - started,
                  "found": result["found"], "entries": result["entries"], "method": result["scanned"][0]["method"],
                  "opened": result["scanned"][0]["opened"], "stopped_early": result["stopped_early"]}))
"""


def child(args, env):
    """Run one child; its JSON line, wall seconds and peak RSS in KiB (ru_maxrss of this child only)."""
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-c", CHILD] + args, stdout=subprocess.PIPE, env=env)
    out = proc.stdout.read()
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    proc.stdout.close()
    if proc.returncode != 0:
        raise SystemExit("scan child failed with %d" % proc.returncode)
    return json.loads(out), time.monotonic() - started, usage.ru_maxrss


def run_find(mount):
    started = time.monotonic()
    out = subprocess.run(["find", mount, "-xdev", "-type", "f"], check=True, capture_output=True).stdout
    return time.monotonic() - started, out.count(b"\n")


def build_tree(mount, files, fragmented, seed):
    rng = random.Random(seed)
    per_dir = 100
    payload = b"x" * 16384
    made = 0
    started = time.monotonic()
    for top in range((files + per_dir * 10 - 1) // (per_dir * 10)):
        for sub in range(10):
            if made >= files:
                break
            directory = os.path.join(mount, "t%03d" % top, "d%02d" % sub)
            os.makedirs(directory)
            for index in range(min(per_dir, files - made)):
                fd = os.open(os.path.join(directory, "f%03d" % index), os.O_WRONLY | os.O_CREAT, 0o644)
                os.write(fd, payload[:rng.randrange(0, 16384)])
                os.close(fd)
                made += 1
    planted = []
    for index in range(fragmented):
        path = os.path.join(mount, "t%03d" % rng.randrange(0, max(1, files // 1000)), "vm%d.img" % index)
        planted.append((path, fragment(path, 1000 * (index + 1))))
    os.sync()
    return time.monotonic() - started, planted


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
        seconds, planted = build_tree(mount, args.files, args.fragmented, 12)
        print("tree: %d files in %.1f s on %s (%s), %d fragmented: %s" % (
            args.files, seconds, loop.device, mount, len(planted), ", ".join("%d extents" % n for _p, n in planted)))
        expected_found = sum(1 for _path, extents in planted if extents >= args.min_extents)

        imported, _wall, import_rss = child(["import-only"], env)
        run_find(mount)  # warm-up round, untimed
        child(["auto", mount, str(args.min_extents)], env)
        child(["stat", mount, str(args.min_extents)], env)

        times = {"find": [], "auto": [], "stat": []}
        walls = {"auto": [], "stat": []}
        rss = {"auto": 0, "stat": 0}
        order = ["find", "auto", "stat"]
        for number in range(args.rounds):
            line = []
            for name in order:
                if name == "find":
                    seconds, count = run_find(mount)
                    assert count == args.files + len(planted), count
                    times["find"].append(seconds)
                    line.append("find %.3fs (%d files)" % (seconds, count))
                    continue
                result, wall, peak = child([name, mount, str(args.min_extents)], env)
                assert result["found"] == expected_found and result["stopped_early"] is None, result
                times[name].append(result["scan_seconds"])
                walls[name].append(wall)
                rss[name] = max(rss[name], peak)
                line.append("scan %s %.3fs (process %.3fs, %s, opened %d, found %d)" % (
                    name, result["scan_seconds"], wall, result["method"], result["opened"], result["found"]))
            print("round %d: %s" % (number + 1, "; ".join(line)))
            order = order[1:] + order[:1]

        best = dict((name, min(values)) for name, values in times.items())
        print("best of %d: find %.3fs; scan with bulkstat %.3fs = %.2fx find; scan with fstatat per file %.3fs = %.2fx find"
              % (args.rounds, best["find"], best["auto"], best["auto"] / best["find"], best["stat"], best["stat"] / best["find"]))
        print("whole scan process (Python start, imports %.3fs, scan): bulkstat %.3fs = %.2fx find, fstatat %.3fs = %.2fx find"
              % (imported["import_seconds"], min(walls["auto"]), min(walls["auto"]) / best["find"],
                 min(walls["stat"]), min(walls["stat"]) / best["find"]))
        print("peak RSS: scan with bulkstat %.1f MiB, with fstatat %.1f MiB, a process that only imports the scan %.1f MiB"
              % (rss["auto"] / 1024.0, rss["stat"] / 1024.0, import_rss / 1024.0))
        print("target within 3x of find (scan time, bulkstat): %s" % ("met" if best["auto"] <= 3 * best["find"] else "NOT met"))
    finally:
        loop.stop()
        try:
            os.rmdir(loop.workdir)
        except OSError:
            print("left behind: %s" % loop.workdir)


if __name__ == "__main__":
    main()
