#!/usr/bin/env python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark (not a test): vm_sysctl's boot model against the real appliers on many random sysctl.d trees.

The suite (tests/e2e/test_sysctl_oracle.py) runs a small fixed-seed budget of the same generator
(tests/helpers/sysctl_fuzz.py); this runs ``--examples`` trees (``--seed random`` for new ones each run)
through the real systemd-sysctl and ``sysctl --system`` in the same private-namespace chroot, prints
every tree where the model and a real program disagree (in trees.yml form, ready to paste) and the
time per tree. Needs root (mount namespace, chroot); installs systemd/procps with apt-get when missing.

Run: python tests/benchmarks/fuzz_sysctl_oracle.py [--examples 500] [--seed fixed|random] [--shrink]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
sys.path.insert(0, TESTS)
from collection_tree import collections_root  # noqa: E402

sys.path.insert(0, collections_root())
from hypothesis import HealthCheck, Phase, given, seed as hypothesis_seed, settings  # noqa: E402

from helpers import sysctl_fuzz as fuzz  # noqa: E402
from helpers import sysctl_oracle as oracle  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=500)
    parser.add_argument("--seed", choices=("fixed", "random"), default="fixed")
    parser.add_argument("--shrink", action="store_true", help="stop at the first disagreement and shrink it")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root (mount namespace and chroot)")
    systemd, procps = oracle.ensure_tools()
    work = tempfile.mkdtemp(prefix="sysctl-fuzz-")
    found = []
    count = [0]
    try:
        toolbox = oracle.build_toolbox(os.path.join(work, "toolbox"), systemd, procps)
        print("tools: %s; %s" % oracle.tool_versions(systemd, procps))
        phases = [Phase.generate, Phase.shrink] if args.shrink else [Phase.generate]

        @settings(max_examples=args.examples, deadline=None, database=None, phases=phases,
                  suppress_health_check=list(HealthCheck))
        @given(fuzz.trees())
        def explore(case):
            count[0] += 1
            root = os.path.join(work, "t%d" % count[0], "root")
            try:
                problems = fuzz.check_tree(root, case, toolbox)
            finally:
                shutil.rmtree(os.path.dirname(root), ignore_errors=True)
            if problems:
                if args.shrink:
                    raise AssertionError("\n".join(problems) + "\n" + json.dumps(case))
                found.append((case, problems))

        if args.seed == "fixed":
            explore = hypothesis_seed(20261130)(explore)
        start = time.monotonic()
        try:
            explore()
        except AssertionError as exc:
            print("shrunk disagreement:\n%s" % exc)
        elapsed = time.monotonic() - start
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for case, problems in found:
        print("---- disagreement")
        print("\n".join(problems))
        print(json.dumps(case))
    per_tree = elapsed / max(count[0], 1)
    print("trees: %d, disagreeing: %d, %.1f s, %.3f s per tree" % (count[0], len(found), elapsed, per_tree))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
