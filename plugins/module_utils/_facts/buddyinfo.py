# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Assemble ``ansible_facts['memfrag_buddyinfo']`` from the files under a proc root.

buddyinfo is required (a missing, unreadable or malformed one raises ProcFileError naming the
file and line). pagetypeinfo, zoneinfo, vmstat and the /proc/sys/vm tunables are optional: a
file that is missing, unreadable or malformed gives a warning, a ``sources`` entry saying why,
and the rest of the facts. Each file is read once; nothing is executed.
"""


import os
import typing as t

from ansible_collections.memfrag.linux.plugins.module_utils._mm import fragmentation as frag
from ansible_collections.memfrag.linux.plugins.module_utils._procfs.buddyinfo import parse_buddyinfo
from ansible_collections.memfrag.linux.plugins.module_utils._procfs.pagetypeinfo import PAGETYPEINFO_CAP, free_pages_of_types, parse_pagetypeinfo
from ansible_collections.memfrag.linux.plugins.module_utils._procfs.files import (
    ProcFileError, orders_page_size_problem, page_size_of_host, read_text)
from ansible_collections.memfrag.linux.plugins.module_utils._procfs.vm_tunables import FRAGMENTATION_TUNABLES, read_vm_tunables
from ansible_collections.memfrag.linux.plugins.module_utils._procfs.numbers import NumberError, parse_count
from ansible_collections.memfrag.linux.plugins.module_utils._procfs.vmstat import fragmentation_counters, parse_vmstat
from ansible_collections.memfrag.linux.plugins.module_utils._mm.watermark import (
    ERA_LEGACY,
    ERA_MODERN,
    PCP_TYPES,
    era_of_migrate_types,
    era_of_release,
    era_of_zoneinfo_layout,
    subtracts_free_highatomic,
    subtracts_unaccepted,
    watermark_verdicts,
)
from ansible_collections.memfrag.linux.plugins.module_utils._procfs.zoneinfo import parse_zoneinfo, zone_indexes
from ansible_collections.memfrag.linux.plugins.module_utils._facts.subsets import resolve_subsets as resolve
from ansible_collections.memfrag.linux.plugins.module_utils._procfs.meminfo import mem_total_bytes
from ansible_collections.memfrag.linux.plugins.module_utils._procfs.release import read_release

OPTIONAL_SUBSETS = ("pagetypeinfo", "zoneinfo", "vmstat", "sysctl")
ALL_SUBSETS = ("buddyinfo",) + OPTIONAL_SUBSETS
SOURCE_OK = "ok"
SOURCE_MISSING = "missing"
SOURCE_SKIPPED = "skipped"
_COMMON_PAGE_SIZES = (4096, 8192, 16384, 65536)


def resolve_subsets(requested: t.Iterable[str]) -> t.List[str]:
    """Expand ``gather_subset`` into the optional files to read (see _facts/subsets.py)."""
    return resolve(requested, "buddyinfo", OPTIONAL_SUBSETS)


def _read_optional(proc_root: str, name: str, parse, sources: t.Dict[str, str], warnings: t.List[str]):
    """Read and parse one optional file; on failure record why and return None."""
    path = os.path.join(proc_root, name)
    try:
        text = read_text(proc_root, name)
    except ProcFileError as exc:
        sources[name] = SOURCE_MISSING if exc.missing else "unreadable: %s" % exc.message
        warnings.append("%s: %s; facts from it are left out" % (path, exc.message))
        return None
    try:
        result = parse(text, path)
    except ProcFileError as exc:
        sources[name] = "malformed: %s" % exc
        warnings.append("%s; facts from it are left out" % exc)
        return None
    sources[name] = SOURCE_OK
    return result


def _infer_page_size(proc_root: str, zoneinfo) -> t.Optional[int]:
    """MemTotal is totalram_pages in kB and totalram is the sum of managed pages: their ratio is the page size.

    Accepted only within 0.5% of a common page size (a host still initialising deferred struct
    pages has fewer managed pages than MemTotal counts, and is rejected).
    """
    if not zoneinfo:
        return None
    managed = sum(zone.fields.get("managed", 0) for zone in zoneinfo)
    if managed <= 0:
        return None
    mem_total, _why = mem_total_bytes(proc_root)
    if mem_total is None:
        return None
    ratio = float(mem_total) / managed
    for size in _COMMON_PAGE_SIZES:
        if abs(ratio - size) <= size * 0.005:
            return size
    return None


def _count_or_none(text: t.Optional[str]) -> t.Optional[int]:
    """A tail value of zoneinfo as a count, or None when absent or not one the kernel could print."""
    try:
        return None if text is None else parse_count(text)
    except NumberError:
        return None


def _pcp_blocks(pagetype_zone, orders: int) -> t.List[int]:
    """Per order, free blocks on the lists an ordinary allocation may use (MIGRATE_PCPTYPES)."""
    blocks = [0] * orders
    for name in PCP_TYPES:
        for order, count in enumerate(pagetype_zone.free_blocks.get(name, ())[:orders]):
            blocks[order] += count
    return blocks


def _class_reserve(node: int, zone_name: str, indexes: t.Dict[t.Tuple[int, str], int],
                   protection: t.Optional[t.List[int]]) -> t.Tuple[t.Optional[str], int]:
    """(class zone name, lowmem_reserve) for a GFP_KERNEL-like allocation landing in this zone."""
    if not protection:
        return None, 0
    own = indexes.get((node, zone_name))
    normal = indexes.get((node, "Normal"))
    if own is None:
        return None, 0
    if normal is not None and own <= normal:
        target, target_name = normal, "Normal"
    else:
        target, target_name = own, zone_name
    if target >= len(protection):
        return None, 0
    return target_name, protection[target]


class _Sources(object):
    """What was read under the root: buddyinfo always, the optional files when asked for and readable."""

    def __init__(self) -> None:
        self.buddy_zones = []  # type: t.List[t.Any]
        self.pagetype = None  # type: t.Any
        self.zoneinfo = None  # type: t.Optional[t.List[t.Any]]
        self.vmstat = None  # type: t.Optional[t.Dict[str, int]]
        self.tunables = {}  # type: t.Dict[str, t.Union[int, str]]
        self.status = {}  # type: t.Dict[str, str]


def read_sources(proc_root: str, wanted: t.Sequence[str], warnings: t.List[str]) -> _Sources:
    """Job 1: read and parse the files. Raises ProcFileError for buddyinfo; the others only warn."""
    read = _Sources()
    sources = read.status
    buddy_path = os.path.join(proc_root, "buddyinfo")
    read.buddy_zones, buddy_warnings = parse_buddyinfo(read_text(proc_root, "buddyinfo"), buddy_path)
    warnings.extend(buddy_warnings)
    sources["buddyinfo"] = SOURCE_OK
    if "pagetypeinfo" in wanted:
        read.pagetype = _read_optional(proc_root, "pagetypeinfo", parse_pagetypeinfo, sources, warnings)
        if read.pagetype is not None:
            warnings.extend(read.pagetype.warnings)
    if "zoneinfo" in wanted:
        parsed = _read_optional(proc_root, "zoneinfo", parse_zoneinfo, sources, warnings)
        if parsed is not None:
            read.zoneinfo, zone_warnings = parsed
            warnings.extend(zone_warnings)
    if "vmstat" in wanted:
        parsed = _read_optional(proc_root, "vmstat", parse_vmstat, sources, warnings)
        if parsed is not None:
            read.vmstat, vmstat_warnings = parsed
            warnings.extend(vmstat_warnings)
    if "sysctl" in wanted:
        if os.path.isdir(os.path.join(proc_root, "sys", "vm")):
            read.tunables, tunable_warnings = read_vm_tunables(proc_root, FRAGMENTATION_TUNABLES)
            warnings.extend(tunable_warnings)
            sources["sys/vm"] = SOURCE_OK
        else:
            sources["sys/vm"] = SOURCE_MISSING
            warnings.append("%s: does not exist; vm tunables are left out" % os.path.join(proc_root, "sys", "vm"))
    for name in ("pagetypeinfo", "zoneinfo", "vmstat"):
        sources.setdefault(name, SOURCE_SKIPPED)
    sources.setdefault("sys/vm", SOURCE_SKIPPED)
    return read


def resolve_page_size(proc_root: str, page_size: t.Optional[int], zoneinfo) -> t.Tuple[int, str]:
    """Job 2: the page size and where it came from: the option, the capture itself, or this host."""
    if page_size is not None:
        return page_size, "option"
    if os.path.realpath(proc_root) != "/proc":
        inferred = _infer_page_size(proc_root, zoneinfo)
        if inferred is not None:
            return inferred, "meminfo MemTotal / zoneinfo managed"
    return page_size_of_host(), "host"


def watermark_era(release: t.Optional[str], pagetype, zoneinfo) -> t.Tuple[t.Optional[str], str]:
    """Job 3: the kernel era of the watermark check: from the release, else migrate type names, else zoneinfo layout."""
    era = era_of_release(release)
    if era is not None:
        return era, "kernel release"
    if pagetype is not None:
        types = set()  # type: t.Set[str]
        for ptz in pagetype.zones.values():
            types.update(ptz.free_blocks)
        era = era_of_migrate_types(types)
        if era is not None:
            return era, "pagetypeinfo migrate types"
    if zoneinfo:
        era = era_of_zoneinfo_layout(any(z.node_stats for z in zoneinfo),
                                     set(k for z in zoneinfo for k in z.fields),
                                     set(k for z in zoneinfo for k in z.tail))
        return era, "zoneinfo layout"
    return None, "unknown"


def _free_block_facts(blocks: t.Sequence[int], page_size: int) -> t.Dict[str, t.Any]:
    """The buddyinfo arithmetic of one zone (mm/vmstat.c's indexes among it)."""
    free_pages = frag.free_pages(blocks)
    return {
        "free_blocks": list(blocks),
        "free_pages": free_pages,
        "free_bytes": free_pages * page_size,
        "largest_free_order": frag.largest_free_order(blocks),
        "largest_free_block_bytes": frag.largest_free_block_bytes(blocks, page_size),
        "free_bytes_at_or_above_order": frag.free_bytes_at_or_above_order(blocks, page_size),
        "unusable_index": frag.unusable_indexes(blocks),
        "fragmentation_index": frag.fragmentation_indexes(blocks),
    }


def _watermark_facts(entry: t.Dict[str, t.Any], zinfo, ptz, pagetype, orders: int, era: t.Optional[str],
                     era_source: str, release: t.Optional[str], indexes: t.Dict[t.Tuple[int, str], int]) -> None:
    """Job 4: the zone's watermarks and, per order, whether an ordinary allocation passes the min watermark."""
    blocks = entry["free_blocks"]
    watermarks = dict((name, zinfo.fields[name]) for name in ("min", "low", "high", "boost", "promo")
                      if name in zinfo.fields)
    entry["watermarks"] = watermarks
    entry["pages_free"] = zinfo.pages_free
    for name in ("managed", "present", "spanned"):
        entry[name + "_pages"] = zinfo.fields.get(name)
    entry["protection"] = list(zinfo.protection or [])
    free_cma = zinfo.counters.get("nr_free_cma", 0)
    class_zone, reserve = _class_reserve(entry["node"], entry["zone"], indexes, zinfo.protection)
    highatomic = 0
    highatomic_from = "none"
    if _count_or_none(zinfo.tail.get("free_highatomic")) is not None:
        highatomic, highatomic_from = _count_or_none(zinfo.tail["free_highatomic"]), "zoneinfo free_highatomic"
    elif ptz is not None and subtracts_free_highatomic(release):
        highatomic, highatomic_from = free_pages_of_types(ptz, ("HighAtomic",)), "pagetypeinfo free HighAtomic pages"
    elif ptz is not None and pagetype.pages_per_block:
        highatomic = ptz.pageblocks.get("HighAtomic", 0) * pagetype.pages_per_block
        highatomic_from = "pagetypeinfo HighAtomic pageblocks"
    pages_free = zinfo.pages_free if zinfo.pages_free is not None else entry["free_pages"]
    check_era = era or ERA_MODERN
    if check_era == ERA_LEGACY:
        # The old check walks buddyinfo's per-order counts and knows no HighAtomic reserve.
        highatomic, highatomic_from = 0, "not used before 4.4"
    # Unaccepted memory (6.5-6.11 only) is free to NR_FREE_PAGES but not to the watermark check.
    unaccepted = zinfo.counters.get("nr_unaccepted", 0) if check_era == ERA_MODERN and subtracts_unaccepted(release) else 0
    verdicts = watermark_verdicts(check_era, blocks, pages_free, watermarks, reserve, free_cma, highatomic,
                                  _pcp_blocks(ptz, orders) if ptz is not None else None, unaccepted)
    entry["watermark_ok"] = verdicts.get("min", [])
    entry["watermark_ok_by_mark"] = verdicts
    entry["watermark_check"] = {
        "mark": "min",
        "algorithm": check_era,
        "algorithm_from": era_source if era else "default (era unknown)",
        "class_zone": class_zone,
        "lowmem_reserve_pages": reserve,
        "free_cma_pages": free_cma,
        "unaccepted_pages": unaccepted,
        "highatomic_pages": highatomic,
        "highatomic_from": highatomic_from,
        "per_order_lists": ("nr_free of orders below (buddyinfo)" if check_era == ERA_LEGACY
                            else "Unmovable+Movable+Reclaimable (pagetypeinfo)" if ptz is not None
                            else "all (buddyinfo)"),
    }


def gather(proc_root: str = "/proc", page_size: t.Optional[int] = None,
           subsets: t.Iterable[str] = ("all",)) -> t.Tuple[t.Dict[str, t.Any], t.List[str]]:
    """Return ``(facts, warnings)``; raises ProcFileError for buddyinfo and ValueError for bad subsets."""
    wanted = resolve_subsets(subsets)
    warnings = []  # type: t.List[str]
    read = read_sources(proc_root, wanted, warnings)
    orders = len(read.buddy_zones[0].free_blocks)
    release = read_release(proc_root)
    page_size, page_size_source = resolve_page_size(proc_root, page_size, read.zoneinfo)
    problem = None
    if page_size_source == "host" and os.path.realpath(proc_root) != "/proc":
        problem = orders_page_size_problem(orders, page_size)
    if problem:
        # A capture from another machine (arm64 with 64 KiB pages has 14 orders) read with this host's
        # page size understates every byte figure by the ratio of the two, silently.
        warnings.append("%s. The page size could not be inferred from the capture (no meminfo and zoneinfo), so "
                        "this host's %d bytes is used and byte figures may be wrong; set page_size" % (problem,
                                                                                                       page_size))
    era, era_source = watermark_era(release, read.pagetype, read.zoneinfo)
    zone_by_key = dict(((z.node, z.zone), z) for z in read.zoneinfo or ())
    indexes = zone_indexes(read.zoneinfo) if read.zoneinfo else {}

    zones = []
    for buddy in read.buddy_zones:
        entry = {"node": buddy.node, "zone": buddy.zone}  # type: t.Dict[str, t.Any]
        entry.update(_free_block_facts(buddy.free_blocks, page_size))
        ptz = read.pagetype.zones.get((buddy.node, buddy.zone)) if read.pagetype is not None else None
        if ptz is not None:
            entry["migrate_types"] = dict((name, list(counts)) for name, counts in ptz.free_blocks.items())
            entry["migrate_types_capped"] = dict((name, list(capped)) for name, capped in ptz.capped.items())
            entry["pageblocks"] = dict(ptz.pageblocks)
        zinfo = zone_by_key.get((buddy.node, buddy.zone))
        if zinfo is not None:
            _watermark_facts(entry, zinfo, ptz, read.pagetype, orders, era, era_source, release, indexes)
        zones.append(entry)

    pagetype = read.pagetype
    facts = {
        "page_size": page_size,
        "page_size_source": page_size_source,
        "orders": orders,
        "kernel_release": release,
        "pageblock_order": pagetype.pageblock_order if pagetype is not None else None,
        "pages_per_block": pagetype.pages_per_block if pagetype is not None else None,
        "pagetypeinfo_cap": PAGETYPEINFO_CAP,
        "zones": zones,
        "nodes": node_summaries(zones),
        "vmstat": fragmentation_counters(read.vmstat) if read.vmstat is not None else {},
        "tunables": read.tunables,
        "sources": read.status,
    }  # type: t.Dict[str, t.Any]
    return facts, warnings


# Zones above Normal in the kernel's zone order: not in a GFP_KERNEL/GFP_NOFS allocation's zonelist.
ZONES_ABOVE_NORMAL = ("HighMem", "Movable", "Device")


def node_summaries(zones: t.Sequence[t.Mapping[str, t.Any]]) -> t.List[t.Dict[str, t.Any]]:
    """Per node: free bytes, largest free order, and per order whether any zone passes the min watermark.

    The allocator walks a node's zones from the highest usable one down and succeeds in the first
    that passes, so "any zone passes" is the node's answer (DMA alone usually fails: its
    lowmem_reserve keeps Normal-class allocations out). The verdict models a GFP_KERNEL-kind
    allocation, whose highest zone is Normal: HighMem, Movable and Device zones cannot serve it and
    do not count, and a node with none of the other zones (a movable_node hot-plugged node) has no
    ``watermark_ok``.
    """
    result = []  # type: t.List[t.Dict[str, t.Any]]
    by_node = {}  # type: t.Dict[int, t.Dict[str, t.Any]]
    for zone in zones:
        node = by_node.get(zone["node"])
        if node is None:
            node = {"node": zone["node"], "zones": [], "free_bytes": 0, "largest_free_order": -1}
            by_node[zone["node"]] = node
            result.append(node)
        node["zones"].append(zone["zone"])
        node["free_bytes"] += zone["free_bytes"]
        node["largest_free_order"] = max(node["largest_free_order"], zone["largest_free_order"])
        verdict = zone.get("watermark_ok")
        if verdict is not None and zone["zone"] not in ZONES_ABOVE_NORMAL:
            previous = node.get("watermark_ok")
            node["watermark_ok"] = list(verdict) if previous is None else [a or b for a, b in zip(previous, verdict)]
    return result
