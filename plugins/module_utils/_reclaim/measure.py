# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Before/after measurements for the reclaim triggers and the one-line summary of what changed."""


import typing as t

from ansible_collections.memfrag.linux.plugins.module_utils._mm.fragmentation import free_bytes_at_or_above_order, free_pages
from ansible_collections.memfrag.linux.plugins.module_utils._procfs.buddyinfo import parse_buddyinfo
from ansible_collections.memfrag.linux.plugins.module_utils._procfs.meminfo import parse_meminfo
from ansible_collections.memfrag.linux.plugins.module_utils._procfs.files import ProcFileError, read_text
from ansible_collections.memfrag.linux.plugins.module_utils._procfs.vmstat import parse_vmstat
from ansible_collections.memfrag.linux.plugins.module_utils._units import format_mib

MEMINFO_FIELDS = ("MemFree", "Cached", "SReclaimable", "Dirty", "Writeback")
# What compaction did, in the kernel's own counters: pages moved, pages that could not be moved, and
# how far the two scanners walked. compact_memory updates these but not compact_success/compact_fail.
COMPACTION_COUNTERS = ("pgmigrate_success", "pgmigrate_fail", "compact_migrate_scanned", "compact_free_scanned",
                       "compact_isolated")


def _parsed(parse: t.Callable[..., t.Any], proc_root: str, name: str) -> t.Any:
    """Run a parser over ``proc_root/name``; a number too big for Python or a float is a ProcFileError too."""
    path = proc_root.rstrip("/") + "/" + name
    try:
        return parse(read_text(proc_root, name), path)
    except (ValueError, OverflowError) as exc:
        raise ProcFileError(path, "not in the kernel's format: %s" % str(exc)[:120])


def buddy_snapshot(proc_root: str, page_size: int) -> t.Tuple[t.List[t.Dict[str, t.Any]], t.List[str]]:
    """Free memory per zone and order, shaped like buddyinfo_facts' zones.

    ``free_bytes_at_or_above_order[k]`` is the free memory in blocks of order >= k, the number that
    says whether an order-k allocation can be served without compaction.
    """
    zones, warnings = _parsed(parse_buddyinfo, proc_root, "buddyinfo")
    result = []
    for zone in zones:
        result.append({
            "node": zone.node,
            "zone": zone.zone,
            "free_blocks": list(zone.free_blocks),
            "free_bytes": free_pages(zone.free_blocks) * page_size,
            "free_bytes_at_or_above_order": free_bytes_at_or_above_order(zone.free_blocks, page_size),
        })
    return result, warnings


def meminfo_snapshot(proc_root: str, names: t.Sequence[str] = MEMINFO_FIELDS) -> t.Tuple[t.Dict[str, int], t.List[str]]:
    """The meminfo fields ``names`` in bytes (fields the kernel lacks are left out)."""
    fields, warnings = _parsed(parse_meminfo, proc_root, "meminfo")
    return dict((name, int(fields[name])) for name in names if name in fields), warnings


def counters_snapshot(proc_root: str) -> t.Optional[t.Dict[str, int]]:
    """The compaction counters from vmstat, or None when vmstat is missing or unreadable (a capture)."""
    try:
        counters, _warnings = _parsed(parse_vmstat, proc_root, "vmstat")
    except ProcFileError:
        return None
    return dict((name, counters[name]) for name in COMPACTION_COUNTERS if name in counters)


def counters_delta(before: t.Optional[t.Dict[str, int]], after: t.Optional[t.Dict[str, int]]) -> t.Optional[t.Dict[str, int]]:
    if before is None or after is None:
        return None
    return dict((name, after[name] - before[name]) for name in after if name in before)


def high_order_bytes(zones: t.Sequence[t.Dict[str, t.Any]], order: int) -> int:
    """Free bytes in blocks of order >= ``order`` summed over ``zones`` (0 past the last order)."""
    total = 0
    for zone in zones:
        columns = zone["free_bytes_at_or_above_order"]
        if 0 <= order < len(columns):
            total += columns[order]
    return total


def summary(what: str, before_zones: t.Sequence[t.Dict[str, t.Any]], after_zones: t.Sequence[t.Dict[str, t.Any]],
            elapsed: float, orders: t.Sequence[int],
            before_mem: t.Optional[t.Dict[str, int]] = None, after_mem: t.Optional[t.Dict[str, int]] = None,
            counters: t.Optional[t.Dict[str, int]] = None) -> str:
    """One line: what ran, how long, and how free memory at the given orders (and caches) moved."""
    n_orders = len(before_zones[0]["free_blocks"]) if before_zones else 0
    parts = []
    for order in orders:
        if order >= n_orders:
            continue
        old, new = high_order_bytes(before_zones, order), high_order_bytes(after_zones, order)
        parts.append("order>=%d free %s -> %s (%s)" % (order, format_mib(old), format_mib(new), format_mib(new - old, signed=True)))
    if before_mem and after_mem:
        for name in ("Cached", "SReclaimable"):
            if name in before_mem and name in after_mem:
                parts.append("%s %s -> %s" % (name, format_mib(before_mem[name]), format_mib(after_mem[name])))
    if counters and "pgmigrate_success" in counters:
        parts.append("%d pages migrated (%d failed; migrate scanner walked %d pages)"
                     % (counters["pgmigrate_success"], counters.get("pgmigrate_fail", 0), counters.get("compact_migrate_scanned", 0)))
    return "%s in %.2fs: %s" % (what, elapsed, ", ".join(parts) if parts else "no buddyinfo change measured")
