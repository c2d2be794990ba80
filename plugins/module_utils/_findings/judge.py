# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Per-host findings: turn memfrag facts and log counts into plain-language verdicts.

Plain functions over the dicts that buddyinfo_facts, meminfo_facts and kernel_log_scan return, so
the diagnose role, the reclaim role and the fleet report all judge a host the same way. Each finding
is ``{severity, code, message, numbers}`` (plus ``node``/``zone`` when it is about one zone);
severities are ordered ``critical > warning > info``.
"""


import typing as t
from collections.abc import Mapping, Sequence

from ansible_collections.memfrag.linux.plugins.module_utils._findings.remedies import add_remedies
from ansible_collections.memfrag.linux.plugins.module_utils._kernel_log.kinds import DESCRIPTIONS, KINDS
from ansible_collections.memfrag.linux.plugins.module_utils._kernel_log.result import check_log_scan
from ansible_collections.memfrag.linux.plugins.module_utils._units import GIB, MIB, format_bytes

# Severities from least to most severe; the rank orders findings, verdicts and report rows everywhere.
SEVERITIES = ("ok", "info", "warning", "critical")
SEVERITY_RANK = dict((name, rank) for rank, name in enumerate(SEVERITIES))

DEFAULT_THRESHOLDS = {
    # The order operators meet: XFS kmem_alloc of 64 KiB and "page allocation failure: order:4".
    "order": 4,
    # Zones that serve ordinary kernel and user allocations; DMA is a 16 MiB legacy zone.
    "zones": ["DMA32", "Normal", "Movable", "HighMem"],
    # Zones smaller than this are left out of the verdict (a tiny DMA32 on an arm board, say).
    "min_zone_mb": 256,
    # Share of free memory unusable for an order-N request (the kernel's unusable_free_index).
    "unusable_warning": 0.75,
    "unusable_critical": 0.95,
    # Free memory in blocks of at least the order that matters, per zone, below which we warn.
    "min_high_order_free_mb": 64,
    # Used memory that no counter explains, as a share of RAM, before it is worth saying.
    "unexplained_warning": 0.10,
    # Reclaimable slab (dentries, inodes) as a share of RAM: a hint for vfs_cache_pressure.
    "slab_reclaimable_warning": 0.25,
}

# The kernel's zone names (mm/page_alloc.c zone_names[]).
ZONE_NAMES = ("DMA", "DMA32", "Normal", "HighMem", "Movable", "Device")

# DEFAULT_THRESHOLDS as an AnsibleModule argument spec (memory_facts' thresholds suboptions), derived from it so the
# two cannot drift. No defaults here: a key left unset (None) keeps its DEFAULT_THRESHOLDS value. The documented
# copies (role defaults and argument_specs, module and filter docs) are checked against DEFAULT_THRESHOLDS by
# tests/unit/plugins/module_utils/test_thresholds_documented.py.
THRESHOLD_OPTIONS = dict(
    (name, dict(type="list", elements="str", choices=list(ZONE_NAMES)) if isinstance(value, list) else dict(type="raw"))
    for name, value in DEFAULT_THRESHOLDS.items())
# Numbers are taken as "raw" and converted by check_thresholds, so that a bad value is reported under the name the
# user typed (diagnose_order), not AnsibleModule's "argument 'order' ... unable to convert".
_SHARES = ("unusable_warning", "unusable_critical", "unexplained_warning", "slab_reclaimable_warning")
_NOT_NEGATIVE = ("order", "min_zone_mb", "min_high_order_free_mb")

# Severity of each kernel-log kind when it was seen (the kinds themselves live in _kernel_log/kinds.py).
LOG_SEVERITY = {
    "xfs_alloc_deadlock": "critical",
    "page_alloc_failure": "critical",
    "page_alloc_stall": "warning",
    "hung_task": "warning",
    "oom_kill": "warning",
}


def _shown(value: t.Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:50] + "... (%d characters)" % len(text)


def _whole(value: t.Any, what: str, low: int, high: int) -> int:
    """``value`` as an int in [low, high]; ValueError naming ``what`` otherwise.

    Facts reach the filters from templates and user variables, so their types and sizes are not
    trusted: a string of 5,000 digits, a bool, a list or ``1e400`` is refused with a message, and a
    bound keeps ``1 << order`` from building a huge integer.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, str)) or (isinstance(value, str) and len(value) > 25):
        raise TypeError("%s must be a whole number, got %s" % (what, _shown(value)))
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        raise ValueError("%s must be a whole number, got %s" % (what, _shown(value)))
    if number < low:
        raise ValueError("%s must be %d or more, got %s" % (what, low, _shown(value)))
    if number > high:
        raise ValueError("%s must be at most %d, got %s" % (what, high, _shown(value)))
    return number


def _fraction(value: t.Any, what: str) -> t.Optional[float]:
    """An index between -1 and 1 (the kernel's value / 1000), or None when absent."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError("%s must be a number, got %s" % (what, _shown(value)))
    if not -1.0 <= float(value) <= 1.0:  # also refuses nan and inf
        raise ValueError("%s must be between -1 and 1, got %s" % (what, _shown(value)))
    return float(value)


def _mapping(value: t.Any, what: str) -> t.Mapping[str, t.Any]:
    """``value`` when it is a dict (None gives {}); TypeError naming ``what`` otherwise."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError("%s must be a dict, got %s" % (what, type(value).__name__))
    return value


def _sequence(value: t.Any, what: str) -> t.Sequence[t.Any]:
    """``value`` when it is a list (None gives []); TypeError naming ``what`` otherwise."""
    if value is None:
        return []
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise TypeError("%s must be a list, got %s" % (what, type(value).__name__))
    return value


# Facts from a 64-bit kernel stay below these; past them a value is not a fact, and 1 << order must stay small.
_MAX_BYTES = 1 << 80
_MAX_ORDER = 64


def _merged(thresholds: t.Optional[t.Mapping[str, t.Any]]) -> t.Dict[str, t.Any]:
    merged = dict(DEFAULT_THRESHOLDS)
    for key, value in (thresholds or {}).items():
        if value is not None:
            merged[key] = value
    return merged


def _number(key: str, value: t.Any) -> t.Union[int, float]:
    """The threshold's value as its default's type; ValueError saying what was expected."""
    want_int = isinstance(DEFAULT_THRESHOLDS[key], int)
    if isinstance(value, bool) or isinstance(value, (list, dict)):
        raise ValueError("threshold %s must be %s, got %r" % (key, "an integer" if want_int else "a number", value))
    text = str(value).strip()
    # Bounded before converting: a hostile 5,000-digit value must not cost int() or overflow float().
    if len(text) > 32:
        raise ValueError("threshold %s must be %s, got a %d-character value" % (key, "an integer" if want_int else "a number", len(text)))
    try:
        return int(text) if want_int else float(text)
    except ValueError:
        raise ValueError("threshold %s must be %s, got %r" % (key, "an integer" if want_int else "a number", value))


def check_thresholds(thresholds: t.Optional[t.Mapping[str, t.Any]]) -> t.Dict[str, t.Any]:
    """The thresholds merged with the defaults and converted; ValueError naming the first one unknown or out of range."""
    if thresholds is not None and not isinstance(thresholds, Mapping):
        raise ValueError("thresholds must be a dict, got %s" % type(thresholds).__name__)
    merged = _merged(thresholds)
    unknown = sorted(set(merged) - set(DEFAULT_THRESHOLDS))
    if unknown:
        raise ValueError("unknown threshold %s; known: %s" % (", ".join(unknown), ", ".join(sorted(DEFAULT_THRESHOLDS))))
    for key, default in DEFAULT_THRESHOLDS.items():
        if not isinstance(default, list):
            merged[key] = _number(key, merged[key])
    for key in _SHARES:
        try:
            share = float(merged[key]) if not isinstance(merged[key], bool) else None
        except (TypeError, ValueError, OverflowError):
            share = None
        if share is None or not 0 <= share <= 1:
            raise ValueError("threshold %s is a share of memory between 0 and 1, got %s" % (key, _shown(merged[key])))
    for key in _NOT_NEGATIVE:
        _whole(merged[key], "threshold %s" % key, 0, _MAX_ORDER if key == "order" else 1 << 40)
    zones = _sequence(merged["zones"], "threshold zones")
    if not all(isinstance(name, str) for name in zones):
        raise TypeError("threshold zones must be a list of zone names, got %s" % _shown(merged["zones"]))
    if float(merged["unusable_warning"]) > float(merged["unusable_critical"]):
        raise ValueError("threshold unusable_warning (%s) is above unusable_critical (%s)"
                         % (merged["unusable_warning"], merged["unusable_critical"]))
    return merged


def _at(values: t.Sequence[t.Any], index: int, default: t.Any = None) -> t.Any:
    return values[index] if values is not None and 0 <= index < len(values) else default


def zone_findings(buddyinfo: t.Mapping[str, t.Any], thresholds: t.Optional[t.Mapping[str, t.Any]] = None) -> t.List[t.Dict[str, t.Any]]:
    """Findings about free memory by order for every zone that matters."""
    limits = _merged(thresholds)
    order = _whole(limits["order"], "threshold order", 0, _MAX_ORDER)
    page_size = _whole(buddyinfo.get("page_size") or 4096, "page_size", 1, 1 << 30)
    findings = []
    for index, zone in enumerate(_sequence(buddyinfo.get("zones"), "memfrag_buddyinfo.zones")):
        zone = _mapping(zone, "memfrag_buddyinfo.zones[%d]" % index)
        name = zone.get("zone")
        node = zone.get("node")
        if not isinstance(name, str) or name not in limits["zones"]:
            continue
        managed = zone.get("managed_pages")
        if managed is not None:
            managed = _whole(managed, "managed_pages of zone %s" % name, 0, _MAX_BYTES)
        # Without zoneinfo the zone's size is unknown: judge it rather than guess it is small.
        if managed is not None and managed * page_size < int(limits["min_zone_mb"]) * MIB:
            continue
        label = "%s zone node %s" % (name, node)
        orders = len(_sequence(zone.get("free_blocks"), "free_blocks of zone %s" % name))
        if order >= orders:
            findings.append(_finding("info", "order_not_present", "%s: the kernel has no order %d (orders 0-%d)" % (label, order, orders - 1),
                                     node, name, {"orders": orders}))
            continue
        free_bytes = _whole(zone.get("free_bytes", 0), "free_bytes of zone %s" % name, 0, _MAX_BYTES)
        high_bytes = _whole(_at(_sequence(zone.get("free_bytes_at_or_above_order"), "free_bytes_at_or_above_order"), order, 0),
                            "free_bytes_at_or_above_order of zone %s" % name, 0, _MAX_BYTES)
        unusable = _fraction(_at(_sequence(zone.get("unusable_index"), "unusable_index"), order), "unusable_index of zone %s" % name)
        largest = _whole(zone.get("largest_free_order", -1), "largest_free_order of zone %s" % name, -1, _MAX_ORDER)
        largest_text = "no free block at all" if largest < 0 else "largest free block %s" % format_bytes((1 << largest) * page_size)
        numbers = {
            "order": order,
            "free_bytes": free_bytes,
            "free_bytes_at_or_above_order": high_bytes,
            "unusable_index": unusable,
            "fragmentation_index": _at(_sequence(zone.get("fragmentation_index"), "fragmentation_index"), order),
            "largest_free_order": largest,
        }
        unusable_text = "" if unusable is None else "; %d%% of free memory is unusable for order-%d requests" % (round(unusable * 100), order)
        if high_bytes == 0:
            message = "%s: no free block of order >= %d%s; %s" % (label, order, unusable_text, largest_text)
            findings.append(_finding("critical", "no_high_order_blocks", message, node, name, numbers))
        elif unusable is not None and unusable >= float(limits["unusable_critical"]):
            message = "%s: only %s free in blocks of order >= %d%s; %s" % (label, format_bytes(high_bytes), order, unusable_text, largest_text)
            findings.append(_finding("critical", "high_order_unusable", message, node, name, numbers))
        elif (unusable is not None and unusable >= float(limits["unusable_warning"])) or high_bytes < int(limits["min_high_order_free_mb"]) * MIB:
            message = "%s: %s free in blocks of order >= %d%s; %s" % (label, format_bytes(high_bytes), order, unusable_text, largest_text)
            findings.append(_finding("warning", "high_order_scarce", message, node, name, numbers))
        else:
            message = "%s: %s of %s free memory is in blocks of order >= %d; %s" % (
                label, format_bytes(high_bytes), format_bytes(free_bytes), order, largest_text)
            findings.append(_finding("info", "high_order_available", message, node, name, numbers))
    findings.extend(_node_watermark_findings(buddyinfo, order))
    return findings


def _node_watermark_findings(buddyinfo: t.Mapping[str, t.Any], order: int) -> t.List[t.Dict[str, t.Any]]:
    # Per node, not per zone: the allocator falls back from zone to zone, and DMA/DMA32 fail the
    # check for Normal-class requests by design (lowmem_reserve), so only "no zone passes" matters.
    findings = []
    for index, node in enumerate(_sequence(buddyinfo.get("nodes"), "memfrag_buddyinfo.nodes")):
        node = _mapping(node, "memfrag_buddyinfo.nodes[%d]" % index)
        if _at(_sequence(node.get("watermark_ok"), "watermark_ok"), order) is False:
            findings.append(_finding(
                "warning", "watermark_fails_at_order",
                "node %s: an order-%d allocation would fail the watermark check of every zone (%s) now"
                % (node.get("node"), order, ", ".join(str(name) for name in _sequence(node.get("zones"), "zones"))),
                node.get("node"), None, {"order": order, "largest_free_order": node.get("largest_free_order")}))
    return findings


def memory_findings(meminfo: t.Mapping[str, t.Any], thresholds: t.Optional[t.Mapping[str, t.Any]] = None) -> t.List[t.Dict[str, t.Any]]:
    """Findings about where memory went (slab, unexplained remainder)."""
    limits = _merged(thresholds)
    findings = []
    accounting = _mapping(meminfo.get("accounting"), "memfrag_meminfo.accounting")
    total = _whole(accounting.get("total_bytes") or 0, "accounting.total_bytes", 0, _MAX_BYTES)
    if not total:
        return findings
    unexplained = _whole(accounting.get("unexplained_bytes") or 0, "accounting.unexplained_bytes", -_MAX_BYTES, _MAX_BYTES)
    if unexplained >= total * float(limits["unexplained_warning"]):
        findings.append(_finding(
            "warning", "unexplained_memory",
            "%s of used memory (%d%% of RAM) is not explained by page cache, anonymous memory, slab, page tables or kernel stacks"
            % (format_bytes(unexplained), round(100.0 * unexplained / total)),
            None, None, {"unexplained_bytes": unexplained, "total_bytes": total}))
    reclaimable = _whole(_mapping(meminfo.get("slab"), "memfrag_meminfo.slab").get("reclaimable_bytes") or 0,
                         "slab.reclaimable_bytes", 0, _MAX_BYTES)
    if reclaimable >= total * float(limits["slab_reclaimable_warning"]):
        findings.append(_finding(
            "warning", "slab_reclaimable_large",
            "reclaimable slab (dentry and inode caches) holds %s, %d%% of RAM; consider raising vm.vfs_cache_pressure"
            % (format_bytes(reclaimable), round(100.0 * reclaimable / total)),
            None, None, {"slab_reclaimable_bytes": reclaimable, "total_bytes": total}))
    explanation = accounting.get("explanation")
    if explanation:
        if not isinstance(explanation, str):
            raise TypeError("accounting.explanation must be text, got %s" % type(explanation).__name__)
        findings.append(_finding("info", "memory_accounting", explanation, None, None,
                                 {key: value for key, value in accounting.items() if key.endswith("_bytes")}))
    return findings


def free_outside_zones(buddyinfo: t.Mapping[str, t.Any], meminfo: t.Mapping[str, t.Any]) -> t.List[t.Dict[str, t.Any]]:
    """An info finding when MemFree counts much more than the zones' free lists hold.

    Kernels that initialise struct pages lazily (CONFIG_DEFERRED_STRUCT_PAGE_INIT, ``deferred_init=lazy``) count
    memory not yet handed to the zones as free; it reaches buddyinfo only as memory is used. Without a word, "22 GiB
    free" next to zones holding 3 GiB reads like an error in one of the two numbers.
    """
    mem_free = (meminfo.get("meminfo") or {}).get("MemFree")
    zones = buddyinfo.get("zones") or []
    if mem_free is None or not zones:
        return []
    in_zones = sum(int(zone.get("free_bytes") or 0) for zone in zones)
    outside = int(mem_free) - in_zones
    if outside < max(GIB, int(mem_free) // 10):
        return []
    return [_finding(
        "info", "free_outside_zones",
        "MemFree says %s free but the zones' free lists (buddyinfo) hold %s: %s is memory the kernel has not handed to "
        "the zones yet (lazy struct-page initialisation adds it as memory is used) or holds elsewhere; only the "
        "zones' free blocks serve allocations now" % (format_bytes(mem_free), format_bytes(in_zones), format_bytes(outside)),
        None, None, {"mem_free_bytes": int(mem_free), "zone_free_bytes": in_zones, "outside_bytes": outside})]


def log_findings(log_scan: t.Optional[t.Mapping[str, t.Any]]) -> t.List[t.Dict[str, t.Any]]:
    """Findings from kernel_log_scan counts, with first and last time seen."""
    findings = []
    if not log_scan:
        return findings
    check_log_scan(log_scan)  # ValueError naming the field, e.g. counts given as a list
    counts = _mapping(log_scan.get("counts"), "log_scan.counts")
    first_seen = _mapping(log_scan.get("first_seen"), "log_scan.first_seen")
    last_seen = _mapping(log_scan.get("last_seen"), "log_scan.last_seen")
    for kind in KINDS:
        severity, what = LOG_SEVERITY[kind], DESCRIPTIONS[kind]
        count = _whole(counts.get(kind) or 0, "log_scan.counts.%s" % kind, 0, 1 << 63)
        if not count:
            continue
        when = ""
        if last_seen.get(kind):
            when = " (last %s)" % last_seen[kind]
        findings.append(_finding(severity, "%s_logged" % kind, "kernel log: %d %s%s" % (count, what, when), None, None,
                                 {"count": count, "first_seen": first_seen.get(kind), "last_seen": last_seen.get(kind)}))
    return findings


def xfs_file_findings(xfs_files: t.Optional[t.Mapping[str, t.Any]],
                      thresholds: t.Optional[t.Mapping[str, t.Any]] = None) -> t.List[t.Dict[str, t.Any]]:
    """Which files to look at, from the ``memfrag_xfs_files`` fact (an XFS extent scan after deadlock events).

    Critical when a file's in-core extent map needs an allocation of at least the order that matters on this
    kernel's era (up to 4.14: more than 65,536 extents for order 1); a warning otherwise, since those files are
    still where the fragmentation is; info when the scan found none.
    """
    if not xfs_files or not xfs_files.get("scanned"):
        return []
    # Imported here: only hosts with an XFS scan compile it (memory_facts imports this file on every host).
    from ansible_collections.memfrag.linux.plugins.module_utils._xfs.extent_map import ERA_EXTENT_LIST, ERA_IEXT_BTREE, extents_for_irec_size
    order = int(_merged(thresholds)["order"])
    processes = [item for item in xfs_files.get("log_processes") or [] if isinstance(item, dict)]
    named = ["%s(%s)" % (item.get("comm"), item.get("pid")) for item in processes]
    source = "XFS deadlock messages name %s" % ", ".join(named[:3]) if named else "XFS deadlock messages"
    stopped = xfs_files.get("stopped_early")
    partial = " (the scan stopped early: %s)" % stopped.get("reason") if stopped else ""
    files = [item for item in xfs_files.get("files") or [] if isinstance(item, dict)]
    numbers = {"files": [dict((key, item.get(key)) for key in ("path", "extents", "alloc_bytes", "alloc_order")) for item in files[:5]],
               "found": xfs_files.get("found"), "min_extents": xfs_files.get("min_extents"), "era": xfs_files.get("era"),
               "log_processes": named}
    if not files:
        return [_finding("info", "xfs_files_not_found", "%s; no XFS file with %s or more extents found%s"
                         % (source, xfs_files.get("min_extents"), partial), None, None, numbers)]
    shown = [_xfs_file_text(item) for item in files[:3]]
    more = int(xfs_files.get("found") or len(files)) - len(shown)
    message = "%s; the XFS files with the most extents are %s%s%s." % (
        source, ", ".join(shown), " and %d more" % more if more > 0 else "", partial)
    if xfs_files.get("era") == ERA_IEXT_BTREE:
        message += (" On this kernel (4.15+) an extent map needs nothing above order 0, so they are fragmented files,"
                    " not the allocation that loops.")
    for item in processes:
        span = extents_for_irec_size(int(item.get("size") or 0)) if xfs_files.get("era") == ERA_EXTENT_LIST else None
        if span:
            message += (" The messages' %d-byte allocation is the extent index of a file with %d-%d extents."
                        % (item["size"], span[0], span[1]))
            break
    worst = max(int(item.get("alloc_order") or 0) for item in files)
    return [_finding("critical" if worst >= order else "warning", "xfs_fragmented_files", message, None, None, numbers)]


def _xfs_file_text(item: t.Mapping[str, t.Any]) -> str:
    parts = ["%d extents" % int(item.get("extents") or 0)]
    if item.get("alloc_bytes") is not None:
        parts.append("map needs %d bytes, order %s" % (item["alloc_bytes"], item.get("alloc_order")))
    holders = ["%s(%s)" % (holder.get("comm"), holder.get("pid")) for holder in (item.get("open_by") or [])[:3]]
    if holders:
        parts.append("open by " + ", ".join(holders))
    return "%s (%s)" % (item.get("path"), "; ".join(parts))


def host_findings(buddyinfo: t.Optional[t.Mapping[str, t.Any]], meminfo: t.Optional[t.Mapping[str, t.Any]] = None,
                  log_scan: t.Optional[t.Mapping[str, t.Any]] = None,
                  thresholds: t.Optional[t.Mapping[str, t.Any]] = None,
                  host: t.Optional[str] = None,
                  xfs_files: t.Optional[t.Mapping[str, t.Any]] = None) -> t.List[t.Dict[str, t.Any]]:
    """All findings for one host, most severe first (stable within a severity), each warning and critical one with
    its ``remedy`` (``host`` is the inventory name the remedies' commands limit to). ``xfs_files`` is the
    ``memfrag_xfs_files`` fact of an XFS extent scan.

    Raises ValueError for thresholds that are unknown or out of range (check_thresholds), and
    TypeError or ValueError naming the fact that is not in the shape the modules return (a list
    where a dict belongs, a number past 64 bits, text where a number belongs).
    """
    check_thresholds(thresholds)
    buddyinfo = _mapping(buddyinfo, "memfrag_buddyinfo")
    meminfo = _mapping(meminfo, "memfrag_meminfo")
    findings = []
    if buddyinfo:
        findings.extend(zone_findings(buddyinfo, thresholds))
    findings.extend(log_findings(log_scan))
    findings.extend(xfs_file_findings(xfs_files, thresholds))
    if meminfo:
        findings.extend(memory_findings(meminfo, thresholds))
    if buddyinfo and meminfo:
        findings.extend(free_outside_zones(buddyinfo, meminfo))
    findings.sort(key=lambda item: -SEVERITY_RANK[item["severity"]])
    return add_remedies(findings, host, (buddyinfo or {}).get("tunables"))


def verdict(findings: t.Sequence[t.Mapping[str, t.Any]]) -> t.Dict[str, t.Any]:
    """One line for the host: the worst severity and what it is about.

    Raises TypeError or ValueError when an item is not a finding (a dict with a known severity and a message).
    """
    for index, item in enumerate(_sequence(findings, "findings")):
        if not isinstance(item, Mapping):
            raise TypeError("findings[%d] must be a dict, got %s" % (index, type(item).__name__))
        if not isinstance(item.get("severity"), str) or item["severity"] not in SEVERITY_RANK:
            raise ValueError("findings[%d] has severity %s; expected one of %s"
                             % (index, _shown(item.get("severity")), ", ".join(sorted(SEVERITY_RANK))))
        if not isinstance(item.get("message"), str):
            raise TypeError("findings[%d] has no message text" % index)
    worst = max((SEVERITY_RANK[item["severity"]] for item in findings), default=0)
    if worst < SEVERITY_RANK["warning"]:
        severity, summary = "ok", "no memory fragmentation problem found"
    else:
        severity = "critical" if worst == SEVERITY_RANK["critical"] else "warning"
        top = [item["message"] for item in findings if item["severity"] == severity]
        summary = top[0] if len(top) == 1 else "%s (and %d more %s findings)" % (top[0], len(top) - 1, severity)
    # What an operator reads: the verdict, then every finding with its severity.
    lines = ["%s: %s" % (severity.upper(), summary)]
    remedies = []  # type: t.List[str]
    for item in findings:
        lines.append("%s: %s" % (item["severity"], item["message"]))
        if item.get("remedy"):
            lines.append("  remedy: %s" % item["remedy"])
            if item["remedy"] not in remedies:
                remedies.append(item["remedy"])
    return {"severity": severity, "summary": summary, "counts": _severity_counts(findings), "lines": lines,
            "remedies": remedies}


def fails(verdict_severity: str, fail_on: str) -> bool:
    """Whether a host with this verdict fails under ``fail_on`` (none, warning or critical)."""
    if fail_on == "none":
        return False
    return SEVERITY_RANK.get(verdict_severity, 0) >= SEVERITY_RANK[fail_on]


def _severity_counts(findings: t.Sequence[t.Mapping[str, t.Any]]) -> t.Dict[str, int]:
    counts = {"critical": 0, "warning": 0, "info": 0}
    for item in findings:
        counts[item["severity"]] = counts.get(item["severity"], 0) + 1
    return counts


def _finding(severity: str, code: str, message: str, node: t.Optional[int], zone: t.Optional[str],
             numbers: t.Mapping[str, t.Any]) -> t.Dict[str, t.Any]:
    finding = {"severity": severity, "code": code, "message": message, "numbers": dict(numbers)}
    if node is not None:
        finding["node"] = node
    if zone is not None:
        finding["zone"] = zone
    return finding
