#!/usr/bin/env python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fuzzing run (not part of scripts/test): the kernel log scan's property tests with a large budget.

tests/unit/plugins/module_utils/test_kernel_log_properties.py runs in the suite with a fixed seed and a small
budget. This runs the same properties (classifier, prefix parser, file-line path, state loader, the scan entry
point) with ``--examples`` examples each and a random seed (hypothesis prints it with any failure so it can be
replayed), and prints how long each property took.

Run: python tests/benchmarks/fuzz_kernel_log_scan.py [--examples 5000] [-k classifier]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from collection_tree import collections_root  # noqa: E402

PROPERTIES = os.path.join(os.path.dirname(HERE), "unit", "plugins", "module_utils", "test_kernel_log_properties.py")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--examples", type=int, default=5000, help="examples per property (suite: 60)")
    parser.add_argument("-k", default=None, help="only properties whose name matches (pytest -k)")
    args = parser.parse_args()
    env = dict(os.environ, MEMFRAG_FUZZ_EXAMPLES=str(args.examples),
               PYTHONPATH=os.pathsep.join([collections_root()] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--durations=0", "-o", "addopts=",
            "--hypothesis-show-statistics", PROPERTIES]
    if args.k:
        argv += ["-k", args.k]
    print("fuzzing with %d examples per property: %s" % (args.examples, " ".join(argv[2:])))
    started = time.perf_counter()
    code = subprocess.call(argv, env=env, cwd=os.path.join(collections_root(), "ansible_collections", "memfrag", "linux"))
    print("fuzzing took %.1fs; %s" % (time.perf_counter() - started, "no property failed" if code == 0 else "FAILED (exit %d)" % code))
    return code


if __name__ == "__main__":
    sys.exit(main())
