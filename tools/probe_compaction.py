# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Show what compaction and drop_caches really do to a fragmented shape on this kernel.

Not a test: an operator's probe (root) that builds one fragmenter shape, then prints, per zone,
free memory by order, free pages by migrate type, managed pages, and the compaction/migration
counters from /proc/vmstat, before and after each trigger. Restores nothing because it changes
no tunable; the fragmenter is always stopped.

    python3 tools/probe_compaction.py --shape anon --mib 3072 --steps compact
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
import typing as t

# The fragmenter is shared with the tests that build the same shapes; tools/ and tests/ live side by side in a
# checkout (neither is in the built collection).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "helpers"))
from fragmenter import Fragmenter, PAGE  # noqa: E402

COUNTERS = ("compact_migrate_scanned", "compact_free_scanned", "compact_isolated", "compact_stall",
            "compact_fail", "compact_success", "compact_daemon_wake", "pgmigrate_success", "pgmigrate_fail",
            "thp_collapse_alloc", "thp_fault_alloc", "nr_free_pages", "nr_file_pages", "nr_anon_pages")


def snapshot() -> t.Dict[str, t.Any]:
    zones = {}
    with open("/proc/buddyinfo") as handle:
        for line in handle:
            parts = line.split()
            zones[parts[3]] = [int(v) for v in parts[4:]]
    vmstat = {}
    with open("/proc/vmstat") as handle:
        for line in handle:
            name, value = line.split()
            if name in COUNTERS:
                vmstat[name] = int(value)
    managed = {}
    zone = None
    with open("/proc/zoneinfo") as handle:
        for line in handle:
            match = re.match(r"Node \d+, zone\s+(\S+)", line)
            if match:
                zone = match.group(1)
            elif line.split()[:1] == ["managed"]:
                managed[zone] = int(line.split()[1])
    types = {}
    with open("/proc/pagetypeinfo") as handle:
        for line in handle:
            match = re.match(r"Node\s+\d+, zone\s+(\S+), type\s+(\S+)\s+(.*)$", line)
            if match and match.group(1) == "Normal":
                types[match.group(2)] = [int(v) if v.isdigit() else v for v in match.group(3).split()]
            match = re.match(r"Node \d+, zone\s+Normal\s+(\d+(?:\s+\d+)+)\s*$", line)
            if match:
                types["pageblocks(U,M,R,HA,CMA,Iso)"] = [int(v) for v in match.group(1).split()]
    return {"buddyinfo": zones, "vmstat": vmstat, "managed": managed, "normal_pagetypes": types}


def high_order_mib(zones: t.Dict[str, t.List[int]], order: int) -> float:
    return sum(n * (2 ** o) * PAGE for counts in zones.values() for o, n in enumerate(counts) if o >= order) / 2.0 ** 20


def show(label: str, snap: t.Dict[str, t.Any], base: t.Optional[t.Dict[str, t.Any]] = None) -> None:
    print("== %s" % label)
    for zone, counts in snap["buddyinfo"].items():
        print("  %-7s managed %8d  free by order %s" % (zone, snap["managed"].get(zone, 0), counts))
    print("  free MiB at order>=4: %.0f  order>=9: %.0f" % (high_order_mib(snap["buddyinfo"], 4), high_order_mib(snap["buddyinfo"], 9)))
    for name, counts in snap["normal_pagetypes"].items():
        print("  Normal %-30s %s" % (name, counts))
    if base:
        delta = dict((k, v - base["vmstat"].get(k, 0)) for k, v in snap["vmstat"].items())
        print("  vmstat delta: %s" % json.dumps(delta))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shape", choices=("anon", "pagecache"), default="anon")
    parser.add_argument("--mib", type=int, default=3072)
    parser.add_argument("--steps", default="compact", help="comma list of compact, drop1, drop3, wait")
    args = parser.parse_args()
    with Fragmenter(args.shape, args.mib) as frag:
        print("fragmenter: %s" % json.dumps(frag.info))
        base = snapshot()
        show("fragmented", base)
        for step in args.steps.split(","):
            started = time.time()
            if step == "compact":
                with open("/proc/sys/vm/compact_memory", "w") as handle:
                    handle.write("1")
            elif step in ("drop1", "drop3"):
                os.sync()
                with open("/proc/sys/vm/drop_caches", "w") as handle:
                    handle.write(step[-1])
            elif step == "wait":
                time.sleep(10)
            now = snapshot()
            show("after %s (%.2fs)" % (step, time.time() - started), now, base)
    show("after the fragmenter exited", snapshot(), base)
    return 0


if __name__ == "__main__":
    sys.exit(main())
