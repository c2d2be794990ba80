# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""When a host needs reclaim, and whether a step met the target (the reclaim role's judgement).

A zone "matters" when its name is in the judged list (Normal and DMA32 by default, on every
node) and it has at least the target in free memory at all: a zone with less free memory than the
target is short of memory, not fragmented, and neither compaction nor dropping caches is the cure
the target measures. A zone that matters is short when its free memory in blocks of order >=
``order`` is below the target. The target is met when at least one zone matters and none is short.
"""


import typing as t

from ansible_collections.memfrag.linux.plugins.module_utils._kernel_log.result import check_log_scan
from ansible_collections.memfrag.linux.plugins.module_utils._units import MIB

# kernel_log_scan event kinds that mean an allocation could not be served (kernel words vary by era).
ALLOCATION_EVENT_WORDS = ("alloc", "deadlock", "stall")
TRUSTED_ORIGINS = ("kmsg", "journal")


def judge_zones(zones: t.Sequence[t.Mapping[str, t.Any]], order: int, target_bytes: int,
                zone_names: t.Sequence[str]) -> t.Dict[str, t.Any]:
    """Per judged zone: high-order free bytes and whether it is short; plus totals."""
    judged = []
    skipped = []
    by_order = []  # type: t.List[int]
    for zone in zones:
        if zone.get("zone") not in zone_names:
            continue
        columns = list(zone.get("free_bytes_at_or_above_order") or [])
        if not columns:
            continue
        free = int(zone.get("free_bytes", columns[0]))
        high = int(columns[order]) if 0 <= order < len(columns) else 0
        entry = {"node": zone.get("node"), "zone": zone.get("zone"), "free_bytes": free, "high_order_bytes": high,
                 "short": free >= target_bytes and high < target_bytes}
        by_order = [a + b for a, b in zip(by_order, columns)] if by_order else [int(c) for c in columns]
        if free < target_bytes:
            skipped.append(entry)
        else:
            judged.append(entry)
    return {
        "order": order,
        "target_bytes": target_bytes,
        "zones": judged,
        "too_small": skipped,
        "short": [z for z in judged if z["short"]],
        "high_order_bytes": sum(z["high_order_bytes"] for z in judged + skipped),
        "free_bytes_at_or_above_order": by_order,
        # Met only when some zone was judged and none is short: a host whose zones all have less free memory
        # than the target has not met it, whatever the (empty) list of short zones says.
        "target_met": bool(judged) and not any(z["short"] for z in judged),
    }


def allocation_events(log_scan: t.Optional[t.Mapping[str, t.Any]]) -> t.List[t.Mapping[str, t.Any]]:
    """Events from kernel_log_scan that show failed or stalled allocations, from kmsg or the journal only.

    Syslog files can be stale or copied from elsewhere; the ring buffer and the journal are this boot's
    (or this host's) own record, so only they may trigger a reclaim.
    """
    if not log_scan:
        return []
    check_log_scan(log_scan)  # ValueError naming the field, e.g. events given as a dict
    found = []
    for event in log_scan.get("events") or []:
        if not isinstance(event, dict):
            continue
        kind = str(event.get("kind", event.get("type", ""))).lower()
        if event.get("origin") in TRUSTED_ORIGINS and any(word in kind for word in ALLOCATION_EVENT_WORDS):
            found.append(event)
    return found


def need(zones: t.Sequence[t.Mapping[str, t.Any]], order: int, target_mb: int, zone_names: t.Sequence[str],
         log_scan: t.Optional[t.Mapping[str, t.Any]] = None, guard_query_hit: bool = False,
         guard_query: str = "") -> t.Dict[str, t.Any]:
    """Decide whether reclaim is needed, with a reason a person can read."""
    judgement = judge_zones(zones, order, target_mb * MIB, zone_names)
    events = allocation_events(log_scan)
    reasons = []
    for zone in judgement["short"]:
        reasons.append("node %s zone %s has %.0f MiB free in blocks of order >= %d, below the target %d MiB"
                       % (zone["node"], zone["zone"], zone["high_order_bytes"] / float(MIB), order, target_mb))
    if events:
        kinds = sorted(set(str(e.get("kind", e.get("type", "?"))) for e in events))
        reasons.append("%d allocation failure/stall event(s) in the kernel log window (%s)" % (len(events), ", ".join(kinds)))
    if guard_query_hit:
        reasons.append("reclaim_guard_query is true: %s" % guard_query)
    if reasons:
        reason = "; ".join(reasons)
    elif not judgement["zones"]:
        reason = ("no %s zone has %d MiB free at all; nothing to judge (the host is short of memory, "
                  "not fragmented)" % ("/".join(zone_names), target_mb))
    else:
        reason = "every judged zone has at least %d MiB free in blocks of order >= %d" % (target_mb, order)
    return {
        "needed": bool(reasons),
        "reason": reason,
        "order": order,
        "target_mb": target_mb,
        "short_zones": judgement["short"],
        "high_order_bytes": judgement["high_order_bytes"],
        "free_bytes_at_or_above_order": judgement["free_bytes_at_or_above_order"],
        "target_met": judgement["target_met"],
        # What the short zones lack together: the most a bounded step needs to free or form.
        "shortfall_bytes": sum(judgement["target_bytes"] - z["high_order_bytes"] for z in judgement["short"]),
        "events": len(events),
    }
