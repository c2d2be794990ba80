# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark (not part of the test suite): the reclaim role against the blunt cure, on real fragmentation.

For each shape (page cache with holes, anonymous pages with holes) and each side, the same state is
rebuilt from scratch: sync and drop every cache, read a warm 1 GiB file (the page cache worth keeping),
then start tests/helpers/fragmenter.py (2 GiB, freed at the end of the side). Then:

- role:  ansible-playbook playbooks/reclaim.yml (target: half the holes' size more free memory at order >= 4
         in zone Normal than the fragmented state has; private lock/state/audit directories, cooldown 0);
- blunt: sync; echo 3 > /proc/sys/vm/drop_caches; echo 1 > /proc/sys/vm/compact_memory.

It prints, per side: free memory at order >= 4 and >= 9 gained (net of memory the kernel newly brought
into the zone by lazy deferred init), page cache (Cached) and reclaimable slab kept, and time; then the
role's recovery as a share of the blunt recovery and the share of the blunt method's cache loss the
role avoided, against the targets (>= 90% and >= 90%). Run as root on an otherwise idle host:

    PATH=/tmp/venvtry/bin:$PATH python tests/benchmarks/bench_reclaim.py [--shapes pagecache,anon] [--mib 2048]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(TESTS, "helpers"))
sys.path.insert(0, TESTS)
sys.path.insert(0, os.path.join(TESTS, "e2e"))
from collection_tree import REPO_ROOT  # noqa: E402
from conftest import ansible_env  # noqa: E402  (the e2e harness's environment and JSON callback)
from fragmenter import Fragmenter  # noqa: E402
import livemem  # noqa: E402

MIB = livemem.MIB
WARM_MIB = 1024


def write(path, value):
    with open(path, "w") as handle:
        handle.write(value)


def clean_slate(warm_path):
    os.sync()
    write("/proc/sys/vm/drop_caches", "3")
    with open(warm_path, "rb") as handle:
        while handle.read(1 << 20):
            pass


def run_role(target_mb, workdir):
    extra = {"reclaim_zones": ["Normal"], "reclaim_target_free_mb": target_mb, "reclaim_cooldown": 0,
             "reclaim_lock_dir": os.path.join(workdir, "run"), "reclaim_state_dir": os.path.join(workdir, "state"),
             "reclaim_audit_log": os.path.join(workdir, "log", "reclaim.log"), "reclaim_max_dirty_mb": 16384,
             "reclaim_sync_timeout": 300, "reclaim_use_kernel_log": False}
    env = ansible_env()
    playbook_bin = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    proc = subprocess.run([playbook_bin if os.path.exists(playbook_bin) else "ansible-playbook",
                           os.path.join(REPO_ROOT, "playbooks", "reclaim.yml"), "-i", "localhost,", "-c", "local",
                           "-e", json.dumps(extra)], capture_output=True, text=True, env=env, timeout=900, check=False)
    data = json.loads(proc.stdout[proc.stdout.index("{"):])
    for play in data["plays"]:
        for task in play["tasks"]:
            if task["task"]["name"].endswith("Record what reclaim did for the fleet report"):
                return task["hosts"]["localhost"]["ansible_facts"]["memfrag_reclaim"]
    raise RuntimeError("the role did not record memfrag_reclaim (rc %d): %s" % (proc.returncode, proc.stdout[-2000:]))


def run_blunt():
    os.sync()
    write("/proc/sys/vm/drop_caches", "3")
    write("/proc/sys/vm/compact_memory", "1")
    return {"actions": [{"action": "sync; echo 3 > drop_caches; echo 1 > compact_memory"}]}


def side(name, shape, mib, warm_path, workdir):
    clean_slate(warm_path)
    with Fragmenter(shape, mib) as frag:
        before = livemem.snapshot()
        # The role's target: half the holes' size more free memory at order >= 4 in zone Normal than the
        # fragmented state has. (Not the whole holes: some of them sit on the per-cpu free lists, which
        # buddyinfo does not show, and the role does not judge a zone whose free memory is below the target.
        # Not the level before the fragmenter ran: its allocations make lazy deferred init add free
        # order-10 blocks to the zone, so that level is already exceeded.)
        target = int((livemem.high(before, 4, "Normal") + frag.info["hole_bytes"] // 2) // MIB)
        started = time.monotonic()
        detail = run_role(target, os.path.join(workdir, "%s-%s" % (shape, name))) if name == "role" else run_blunt()
        seconds = time.monotonic() - started
        after = livemem.snapshot()
    trigger_seconds = sum(float(a.get("elapsed", 0)) for a in detail["actions"]) if name == "role" else seconds
    return {
        "side": name, "shape": shape, "holes_mib": frag.info["hole_bytes"] // MIB, "target_mib": target,
        "gain4_mib": livemem.net_gain(before, after, 4) / MIB,
        "gain9_mib": livemem.net_gain(before, after, 9) / MIB,
        "normal_gain4_mib": livemem.net_gain(before, after, 4, "Normal") / MIB,
        "growth_mib": livemem.growth(before, after) / MIB,
        "cached_before_mib": before["meminfo"]["Cached"] / MIB, "cached_after_mib": after["meminfo"]["Cached"] / MIB,
        "slab_before_mib": before["meminfo"]["SReclaimable"] / MIB, "slab_after_mib": after["meminfo"]["SReclaimable"] / MIB,
        "seconds": seconds, "trigger_seconds": trigger_seconds,
        "actions": [a["action"] for a in detail["actions"]],
        "target_met": detail.get("target_met"),
        "migrated": livemem.delta(before, after, "pgmigrate_success"),
    }


def show(row):
    print("  %-5s gained order>=4 %+7.0f MiB (Normal %+7.0f), order>=9 %+7.0f MiB | Cached %6.0f -> %6.0f MiB, "
          "SReclaimable %5.0f -> %5.0f MiB | %.2fs (triggers %.2fs) | zone growth %.0f MiB, pages migrated %d | %s%s"
          % (row["side"], row["gain4_mib"], row["normal_gain4_mib"], row["gain9_mib"], row["cached_before_mib"],
             row["cached_after_mib"], row["slab_before_mib"], row["slab_after_mib"], row["seconds"], row["trigger_seconds"],
             row["growth_mib"], row["migrated"], " -> ".join(row["actions"]),
             "" if row["target_met"] is None else " (target %d MiB %s)" % (row["target_mib"], "met" if row["target_met"] else "NOT met")))


def compare(role, blunt):
    recovery = role["gain4_mib"] / blunt["gain4_mib"] if blunt["gain4_mib"] > 0 else float("nan")
    blunt_loss = blunt["cached_before_mib"] - blunt["cached_after_mib"]
    role_loss = role["cached_before_mib"] - role["cached_after_mib"]
    kept = (blunt_loss - role_loss) / blunt_loss if blunt_loss > 0 else float("nan")
    print("  role recovery at order>=4 = %.0f%% of blunt (target >= 90%%): %s"
          % (recovery * 100, "MET" if recovery >= 0.9 else "NOT MET"))
    print("  page cache the blunt way threw away (%.0f MiB) that the role kept: %.0f%% (target >= 90%%): %s"
          % (blunt_loss, kept * 100, "MET" if kept >= 0.9 else "NOT MET"))
    # A method that keeps the cache can at best turn the holes into free blocks; the blunt way also frees the
    # cache itself. This is the ceiling on the recovery of any cache-keeping method, as a share of blunt's.
    if blunt["gain4_mib"] > 0:
        print("  ceiling for a cache-keeping method: the holes, %d MiB = %.0f%% of the blunt recovery"
              % (blunt["holes_mib"], 100.0 * blunt["holes_mib"] / blunt["gain4_mib"]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--shapes", default="pagecache,anon")
    parser.add_argument("--mib", type=int, default=2048)
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: the benchmark writes the kernel triggers")
    workdir = tempfile.mkdtemp(prefix="memfrag-bench-")
    warm_path = os.path.join("/var/tmp", "memfrag-bench-warm-%d" % os.getpid())
    try:
        with open(warm_path, "wb") as handle:
            block = os.urandom(1 << 20)
            for dummy in range(WARM_MIB):
                handle.write(block)
        print("bench_reclaim: kernel %s, fragmenter %d MiB per shape, warm page cache %d MiB" % (os.uname().release, args.mib, WARM_MIB))
        for shape in args.shapes.split(","):
            print("shape %s:" % shape)
            rows = {}
            for name in ("role", "blunt"):
                rows[name] = side(name, shape, args.mib, warm_path, workdir)
                show(rows[name])
            compare(rows["role"], rows["blunt"])
    finally:
        if os.path.exists(warm_path):
            os.unlink(warm_path)
        subprocess.run(["rm", "-rf", workdir], check=False)


if __name__ == "__main__":
    main()
