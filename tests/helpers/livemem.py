# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Independent live measurements for the reclaim proof (read straight from /proc, not through the modules).

``managed_pages`` matters on this VM: with lazy deferred struct page init the kernel adds memory to
zone Normal as it is used, and new memory arrives as free order-10 blocks. Free memory at high order
can therefore rise because the zone grew, not because anything was defragmented; ``net_gain`` takes
that growth out (every newly managed page is counted as if it arrived free at the highest order).
"""

from __future__ import annotations

import mmap
import re
import typing as t

PAGE = mmap.PAGESIZE
MIB = 1024 * 1024


def snapshot() -> t.Dict[str, t.Any]:
    zones = {}  # type: t.Dict[str, t.List[int]]
    with open("/proc/buddyinfo") as handle:
        for line in handle:
            parts = line.split()
            zones["%s/%s" % (parts[1].rstrip(","), parts[3])] = [int(v) for v in parts[4:]]
    managed = {}  # type: t.Dict[str, int]
    key = None
    with open("/proc/zoneinfo") as handle:
        for line in handle:
            match = re.match(r"Node (\d+), zone\s+(\S+)", line)
            if match:
                key = "%s/%s" % match.groups()
            elif key and line.split()[:1] == ["managed"]:
                managed[key] = int(line.split()[1])
    meminfo = {}
    with open("/proc/meminfo") as handle:
        for line in handle:
            name, rest = line.split(":", 1)
            meminfo[name] = int(rest.split()[0]) * 1024
    vmstat = {}
    with open("/proc/vmstat") as handle:
        for line in handle:
            name, value = line.split()
            vmstat[name] = int(value)
    return {"zones": zones, "managed": managed, "meminfo": meminfo, "vmstat": vmstat}


def high(snap: t.Dict[str, t.Any], order: int, zone: t.Optional[str] = None) -> int:
    """Free bytes in blocks of order >= ``order`` (one zone name such as 'Normal', or all zones)."""
    total = 0
    for key, counts in snap["zones"].items():
        if zone is None or key.endswith("/" + zone):
            total += sum(n * (PAGE << o) for o, n in enumerate(counts) if o >= order)
    return total


def growth(before: t.Dict[str, t.Any], after: t.Dict[str, t.Any], zone: t.Optional[str] = None) -> int:
    """Bytes newly brought under management (lazy deferred init) between two snapshots."""
    total = 0
    for key, pages in after["managed"].items():
        if zone is None or key.endswith("/" + zone):
            total += max(0, pages - before["managed"].get(key, 0)) * PAGE
    return total


def net_gain(before: t.Dict[str, t.Any], after: t.Dict[str, t.Any], order: int, zone: t.Optional[str] = None) -> int:
    return high(after, order, zone) - high(before, order, zone) - growth(before, after, zone)


def delta(before: t.Dict[str, t.Any], after: t.Dict[str, t.Any], name: str) -> int:
    return after["vmstat"].get(name, 0) - before["vmstat"].get(name, 0)


if __name__ == "__main__":
    # The benchmark copies this file into lab guests and reads their state the same way.
    import json
    import sys
    json.dump(snapshot(), sys.stdout)
