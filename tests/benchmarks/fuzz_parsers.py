#!/usr/bin/env python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark (not a test): the hostile-input fuzzing with a large budget, and how parse cost grows.

1. Runs the property-based fuzz tests (tests/unit/plugins/module_utils/test_fuzz_parsers.py and
   tests/unit/plugins/filter/test_fuzz_filters.py) with ``--examples`` examples per property (the suite
   runs 60 with a fixed seed); ``--seed random`` explores new inputs each run instead of the fixed ones.
   Prints each property's time and the pass/fail summary.
2. For every parser, the CPU cost of an input repeated 8 and 64 times over the cost of the input once,
   for shapes that make parsers of this kind go quadratic (backtracking regexes, per-order loops).
   Linear code gives about 8 and 64; quadratic about 64 and 4096. Ratios, all measured in this run.

Run: python tests/benchmarks/fuzz_parsers.py [--examples 2000] [--seed fixed|random]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
sys.path.insert(0, TESTS)
from collection_tree import collections_root  # noqa: E402

ROOT = collections_root()
sys.path.insert(0, ROOT)
from ansible_collections.memfrag.linux.tests.unit.plugins.module_utils import test_fuzz_parsers as fuzz  # noqa: E402

SUITES = ("tests/unit/plugins/module_utils/test_fuzz_parsers.py", "tests/unit/plugins/filter/test_fuzz_filters.py")

SHAPES = (
    ("buddyinfo", "Node 0, zone Normal", " 5", ""),
    ("buddyinfo", "Node", " ", "x"),
    ("buddyinfo", "", "Node 0, zone DMA 1 2 3\n", ""),
    ("zoneinfo", "Node 0, zone Normal\n pages free 1\n min 1\n low 1\n high 1\n", " nr_x 1\n", ""),
    ("zoneinfo", "Node 0, zone Normal\n protection: (", "0, ", ")"),
    ("pagetypeinfo", "Free pages count per migrate type at order", " ", "x"),
    ("pagetypeinfo", "Node 0, zone Normal", " ", "x"),
    ("meminfo", "MemTotal: 1 kB\nMemFree: 1 kB\n", "Dirty: 1 kB\n", ""),
    ("meminfo", "MemTotal: 1", " ", "x y"),
    ("slabinfo", "slabinfo - version: 2.1\n", "a 1 1 1 1 1 : tunables 0 0 0 : slabdata 1 1 1\n", ""),
    ("slabinfo", "slabinfo - version: 2.1\na", " 1", ""),
    ("vmstat", "", "nr_free_pages 1\n", ""),
    ("vmstat", "a", " ", "1 x"),
    ("tunable", "", "1 ", ""),
    ("statm", "", "1 ", ""),
    ("sysctl", "", "vm.swappiness = 1\n", ""),
)


def run_suites(examples, seed):
    env = dict(os.environ, MEMFRAG_FUZZ_EXAMPLES=str(examples), PYTHONPATH=ROOT)
    if seed == "random":
        env["MEMFRAG_FUZZ_RANDOM"] = "1"
    checkout = os.path.join(ROOT, "ansible_collections", "memfrag", "linux")
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--durations=0"] + list(SUITES),
                          cwd=checkout, env=env, capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - started
    print("fuzz suites, %d examples per property, %s seed: %.1f s wall" % (examples, seed, elapsed))
    for line in proc.stdout.splitlines():
        match = re.match(r"^\s*([\d.]+)s call\s+\S+::(\S+)", line)
        if match:
            print("  %8.2f s  %s" % (float(match.group(1)), match.group(2)))
    summary = [line for line in proc.stdout.splitlines() if re.search(r"\d+ (passed|failed)", line)]
    print("  " + (summary[-1] if summary else "no summary; output:\n" + proc.stdout[-3000:] + proc.stderr[-3000:]))
    if proc.returncode != 0:
        print(proc.stdout[-6000:])
    return proc.returncode


def growth_table():
    print("\ncost growth: CPU(input x8) / CPU(input), CPU(input x64) / CPU(input); linear ~8 and ~64, quadratic ~64 and ~4096")
    worst = 0.0
    for name, prefix, unit, suffix in SHAPES:
        x8 = fuzz.growth(fuzz.PARSERS[name], prefix, unit, suffix, base_bytes=4000, factor=8)
        x64 = fuzz.growth(fuzz.PARSERS[name], prefix, unit, suffix, base_bytes=4000, factor=64)
        worst = max(worst, x64)
        base = fuzz.cpu_cost(fuzz.PARSERS[name], prefix + unit * max(1, 4000 // len(unit)) + suffix)
        print("  %-13s %-45r x8 %6.1f  x64 %7.1f  (base %.2f ms)" % (name, (prefix[-18:], unit[:16], suffix), x8, x64, base * 1000))
    print("  worst x64 ratio: %.1f" % worst)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--examples", type=int, default=2000)
    parser.add_argument("--seed", choices=("fixed", "random"), default="fixed")
    parser.add_argument("--skip-suites", action="store_true", help="only print the growth table")
    args = parser.parse_args()
    rc = 0 if args.skip_suites else run_suites(args.examples, args.seed)
    growth_table()
    return rc


if __name__ == "__main__":
    sys.exit(main())
