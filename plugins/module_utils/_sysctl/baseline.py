# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The vm.* baseline of the ``sysctl_tuning`` role, computed from the facts ``memory_facts`` returns.

Private to the collection. One plain function, :func:`compute`: the ``memfrag_buddyinfo`` and
``memfrag_meminfo`` facts and the role's options in, the settings to apply, the numbers behind them
(``inputs``) and one sentence per key (``reasons``) out. The filter ``memfrag.linux.sysctl_baseline``
exposes it to plays.

The kernel's own numbers, worked out as the kernel does (sources by file and version):

- default ``min_free_kbytes``: mm/page_alloc.c ``calculate_min_free_kbytes()`` (``init_per_zone_wmark_min()``
  before 5.x): ``int_sqrt(lowmem_kbytes * 16)`` clamped to [128, 65536] through 5.6 and to
  [128, 262144] from 5.7 ("mm/page_alloc: increase default min_free_kbytes bound", Joel Savitz,
  2020; RHEL 7.9's 3.10.0-1160 carries it too). ``lowmem_kbytes`` is ``nr_free_buffer_pages()``:
  the managed pages of the zones up to Normal (gfp_zone(GFP_USER)), less their high watermarks.
  At boot, when it is first computed, no watermark is set yet, so it is the managed pages alone;
  that is what is used here (later recomputations subtract the high watermarks, which grow with
  min_free_kbytes itself: using them would make the baseline depend on the baseline).
- the THP reserve: mm/khugepaged.c ``set_recommended_min_free_kbytes()`` (mm/huge_memory.c before
  4.8), unchanged in its arithmetic from 2.6.38 to 6.18: ``pageblock_nr_pages * nr_zones * 2`` plus
  ``pageblock_nr_pages * nr_zones * MIGRATE_PCPTYPES * MIGRATE_PCPTYPES`` (MIGRATE_PCPTYPES = 3:
  Unmovable, Movable, Reclaimable; include/linux/mmzone.h), so 11 pageblocks per zone, at most
  ``nr_free_buffer_pages() / 20`` (5% of lowmem), in kB. ``nr_zones`` counts the populated zones up
  to Normal (ZONE_MOVABLE and HighMem are skipped since "mm/thp: don't count ZONE_MOVABLE as the
  target for freepage reserving", Joonsoo Kim, 2018; before it every populated zone counted, which
  gives a larger reserve than computed here, one that ``keep_higher`` keeps). khugepaged applies
  it only while THP is enabled (always or madvise); the baseline never goes below it either way,
  because the reserve is what keeps whole pageblocks free against mixing of migrate types.
- the pageblock: ``Pages per block`` of /proc/pagetypeinfo; where that file was not readable,
  ``pageblock_order = min(HPAGE_PMD_ORDER, MAX_PAGE_ORDER)`` (include/linux/pageblock-flags.h), the
  PMD order being log2(page_size / 8) (one 8-byte entry per page in a page-table page): 9 for 4 KiB
  pages (2 MiB), 11 for 16 KiB (32 MiB), 13 for 64 KiB (512 MiB), never above the highest order
  buddyinfo shows.
- the zones: /proc/buddyinfo lists populated zones only (mm/vmstat.c ``frag_show()`` walks the
  zones with ``assert_populated``), so its zone lines are the kernel's ``for_each_populated_zone``.
"""


import re
import typing as t

from ansible_collections.memfrag.linux.plugins.module_utils._procfs.release import parse_release

# The role's defaults (roles/sysctl_tuning/defaults/main.yml names them sysctl_tuning_<option>).
DEFAULTS = {
    "min_free_kbytes": None,
    "watermark_scale_factor": None,
    "vfs_cache_pressure": None,
    "min_free_percent": 1.0,
    "min_free_per_node_kbytes": 65536,
    "min_free_max_percent": 3.0,
    "min_free_max_kbytes": 2097152,
    "keep_higher": True,
    "watermark_scale_factor_recommended": 100,
    "slab_reclaimable_percent": 10.0,
    "vfs_cache_pressure_raised": 200,
    "computed_keys": ["vm.min_free_kbytes", "vm.watermark_scale_factor", "vm.vfs_cache_pressure"],
    "settings": {},
}  # type: t.Dict[str, t.Any]

# Zones an ordinary allocation may use: zone_idx(zone) <= gfp_zone(GFP_USER) == ZONE_NORMAL.
LOWMEM_ZONES = ("DMA", "DMA32", "Normal")
MIGRATE_PCPTYPES = 3
THP_RESERVE_PAGEBLOCKS = 2 + MIGRATE_PCPTYPES * MIGRATE_PCPTYPES
MIN_FREE_DEFAULT_FLOOR = 128
MIN_FREE_DEFAULT_CEILING_OLD = 65536
MIN_FREE_DEFAULT_CEILING = 262144


def int_sqrt(value: int) -> int:
    """floor(sqrt(value)) for value >= 0, as lib/math/int_sqrt.c (math.isqrt is 3.8+)."""
    if value < 0:
        raise ValueError("int_sqrt of a negative number")
    if value < 2:
        return value
    root = 1 << ((value.bit_length() + 1) // 2)  # above the root
    while True:
        lower = (root + value // root) // 2
        if lower >= root:
            return root
        root = lower


def default_ceiling(release: t.Optional[str]) -> int:
    """The upper clamp of the kernel's computed min_free_kbytes for this release (262144 when unknown)."""
    version = parse_release(release)
    if version is None or version >= (5, 7, 0):
        return MIN_FREE_DEFAULT_CEILING
    match = re.match(r"^3\.10\.0-(\d+)", release or "")
    if match and int(match.group(1)) >= 1160:  # RHEL 7.9 backported the 5.7 change
        return MIN_FREE_DEFAULT_CEILING
    return MIN_FREE_DEFAULT_CEILING_OLD


def kernel_default_min_free_kbytes(lowmem_kb: int, release: t.Optional[str]) -> int:
    """What the kernel computes by itself: clamp(int_sqrt(lowmem_kbytes * 16), 128, ceiling)."""
    return max(MIN_FREE_DEFAULT_FLOOR, min(int_sqrt(lowmem_kb * 16), default_ceiling(release)))


def thp_reserve_kbytes(pageblock_pages: int, nr_zones: int, lowmem_pages: int, page_kb: int) -> int:
    """khugepaged's recommended min_free_kbytes: 11 pageblocks per zone, at most 5% of lowmem."""
    return min(pageblock_pages * nr_zones * THP_RESERVE_PAGEBLOCKS, lowmem_pages // 20) * page_kb


def pageblock_pages(page_size: int, orders: int, pages_per_block: t.Optional[int]) -> t.Tuple[int, str]:
    """``(pages per pageblock, where the number came from)``."""
    if pages_per_block:
        return int(pages_per_block), "pagetypeinfo"
    pmd_order = (page_size // 8).bit_length() - 1
    order = min(pmd_order, orders - 1) if orders > 0 else pmd_order
    return 1 << order, "assumed: pageblock order %d (the PMD order for %d-byte pages)" % (order, page_size)


def _int(value: t.Any, default: int) -> int:
    """An int from a fact or option (as Jinja's ``| int``: unparsable is the default)."""
    if isinstance(value, bool) or value is None:
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        try:
            return int(float(value))
        except (TypeError, ValueError):
            return default


def _options(options: t.Optional[t.Mapping[str, t.Any]]) -> t.Dict[str, t.Any]:
    merged = dict(DEFAULTS)
    for name, value in (options or {}).items():
        if name not in DEFAULTS:
            raise ValueError("unknown option %r; known: %s" % (name, ", ".join(sorted(DEFAULTS))))
        if value is None and DEFAULTS[name] is not None:
            continue  # an unset role variable keeps the default
        merged[name] = value
    for name in ("min_free_percent", "min_free_max_percent", "slab_reclaimable_percent"):
        try:
            merged[name] = float(merged[name])
        except (TypeError, ValueError):
            raise ValueError("%s must be a number, got %r" % (name, merged[name]))
        if merged[name] < 0:
            raise ValueError("%s must not be negative, got %r" % (name, merged[name]))
    for name in ("min_free_per_node_kbytes", "min_free_max_kbytes", "watermark_scale_factor_recommended",
                 "vfs_cache_pressure_raised", "min_free_kbytes", "watermark_scale_factor", "vfs_cache_pressure"):
        value = merged[name]
        if value is None:
            continue
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError("%s must be a whole number of 0 or more, got %r" % (name, value))
        merged[name] = value
    if not isinstance(merged["computed_keys"], (list, tuple)):
        raise ValueError("computed_keys must be a list of sysctl names, got %r" % (merged["computed_keys"],))
    if not isinstance(merged["settings"], dict):
        raise ValueError("settings must be a dict of sysctl name to value, got %r" % (merged["settings"],))
    merged["keep_higher"] = bool(merged["keep_higher"])
    return merged


def _lowmem(zones: t.Sequence[t.Mapping[str, t.Any]], ram_kb: int, page_kb: int) -> t.Tuple[int, str]:
    """``(lowmem pages, source)``: managed pages of the zones up to Normal, else MemTotal."""
    low = [z for z in zones if z.get("zone") in LOWMEM_ZONES]
    if low and all(isinstance(z.get("managed_pages"), int) for z in low):
        return sum(z["managed_pages"] for z in low), "zoneinfo managed pages of %s" % "+".join(
            sorted(set(z["zone"] for z in low), key=LOWMEM_ZONES.index))
    return ram_kb // page_kb, "MemTotal (zoneinfo not read)"


def compute(buddyinfo: t.Mapping[str, t.Any], meminfo: t.Mapping[str, t.Any],
            options: t.Optional[t.Mapping[str, t.Any]] = None) -> t.Dict[str, t.Any]:
    """The baseline: ``{"settings": {key: int}, "inputs": {...}, "reasons": {key: sentence}}``.

    ``buddyinfo`` and ``meminfo`` are the ``memfrag_buddyinfo`` and ``memfrag_meminfo`` facts (gathered
    with at least zoneinfo, pagetypeinfo and sysctl, and meminfo); ``options`` override DEFAULTS.
    Raises ValueError for facts without MemTotal or zones, and for invalid options.
    """
    opts = _options(options)
    if not isinstance(buddyinfo, dict) or not isinstance(meminfo, dict):
        raise ValueError("expected the memfrag_buddyinfo and memfrag_meminfo facts (dicts)")
    mem_total = _int((meminfo.get("meminfo") or {}).get("MemTotal"), 0)
    zones = buddyinfo.get("zones")
    if mem_total <= 0 or not isinstance(zones, list) or not zones:
        raise ValueError("the facts lack MemTotal or zones (gather memfrag_meminfo and memfrag_buddyinfo first)")
    tunables = buddyinfo.get("tunables") or {}
    page_size = _int(buddyinfo.get("page_size"), 4096) or 4096
    page_kb = max(page_size // 1024, 1)
    release = buddyinfo.get("kernel_release")

    ram_kb = mem_total // 1024
    nodes = max(len(set(z.get("node") for z in zones)), 1)
    low_zones = len([z for z in zones if z.get("zone") in LOWMEM_ZONES])
    block_pages, block_from = pageblock_pages(page_size, _int(buddyinfo.get("orders"), 0),
                                              buddyinfo.get("pages_per_block"))
    lowmem_pages, lowmem_from = _lowmem(zones, ram_kb, page_kb)
    kernel_default = kernel_default_min_free_kbytes(lowmem_pages * page_kb, release)
    thp_reserve = thp_reserve_kbytes(block_pages, low_zones, lowmem_pages, page_kb)
    upper = min(int(ram_kb * opts["min_free_max_percent"] / 100), opts["min_free_max_kbytes"])
    current_min_free = _int(tunables.get("min_free_kbytes"), 0)

    reasons = {}  # type: t.Dict[str, str]
    computed = {}  # type: t.Dict[str, int]

    # vm.min_free_kbytes: the largest of the rules, never above the upper bound.
    candidates = [
        (int(ram_kb * opts["min_free_percent"] / 100), "%g%% of MemTotal" % opts["min_free_percent"]),
        (nodes * opts["min_free_per_node_kbytes"], "%d NUMA node(s) x %d kB" % (nodes, opts["min_free_per_node_kbytes"])),
        (kernel_default, "the kernel's default int_sqrt(lowmem_kB x 16)"),
        (thp_reserve, "the kernel's THP reserve (11 pageblocks x %d zone(s))" % low_zones),
    ]
    if opts["keep_higher"] and current_min_free <= upper:
        candidates.append((current_min_free, "the running value"))
    wanted, wanted_from = max(candidates, key=lambda c: c[0])
    if opts["min_free_kbytes"] is not None:
        computed["vm.min_free_kbytes"] = opts["min_free_kbytes"]
        reasons["vm.min_free_kbytes"] = "%d: given explicitly" % opts["min_free_kbytes"]
    elif wanted > upper:
        computed["vm.min_free_kbytes"] = upper
        reasons["vm.min_free_kbytes"] = ("%d: the upper bound (%g%% of MemTotal, at most %d kB); %s would be %d"
                                         % (upper, opts["min_free_max_percent"], opts["min_free_max_kbytes"],
                                            wanted_from, wanted))
    else:
        computed["vm.min_free_kbytes"] = wanted
        reasons["vm.min_free_kbytes"] = "%d: %s; the other rules give %s" % (
            wanted, wanted_from, ", ".join("%d (%s)" % (value, name) for value, name in candidates
                                           if name != wanted_from))
    if current_min_free > upper and opts["min_free_kbytes"] is None:
        reasons["vm.min_free_kbytes"] += "; the running %d is above the upper bound and is lowered" % current_min_free

    # vm.watermark_scale_factor (4.6+): raised to the recommended value, never lowered.
    has_wsf = "watermark_scale_factor" in tunables
    if opts["watermark_scale_factor"] is not None:
        computed["vm.watermark_scale_factor"] = opts["watermark_scale_factor"]
        reasons["vm.watermark_scale_factor"] = "%d: given explicitly" % opts["watermark_scale_factor"]
    elif has_wsf:
        current = _int(tunables.get("watermark_scale_factor"), 0)
        value = max(current, opts["watermark_scale_factor_recommended"])
        computed["vm.watermark_scale_factor"] = value
        reasons["vm.watermark_scale_factor"] = ("%d: the recommended value (running %d)" % (value, current)
                                                if value != current else "%d: the running value, kept" % value)
    else:
        reasons["vm.watermark_scale_factor"] = "not set: this kernel has no vm.watermark_scale_factor (4.6+)"

    # vm.vfs_cache_pressure: raised only when reclaimable slab holds a large share of RAM.
    reclaimable = _int((meminfo.get("slab") or {}).get("reclaimable_bytes"), 0)
    slab_percent = round(reclaimable * 100.0 / max(mem_total, 1), 1)
    raise_vfs = slab_percent >= opts["slab_reclaimable_percent"]
    if opts["vfs_cache_pressure"] is not None:
        computed["vm.vfs_cache_pressure"] = opts["vfs_cache_pressure"]
        reasons["vm.vfs_cache_pressure"] = "%d: given explicitly" % opts["vfs_cache_pressure"]
    elif raise_vfs:
        current = _int(tunables.get("vfs_cache_pressure"), 100)
        value = max(current, opts["vfs_cache_pressure_raised"])
        computed["vm.vfs_cache_pressure"] = value
        reasons["vm.vfs_cache_pressure"] = ("%d: reclaimable slab is %g%% of MemTotal, at least %g%% (running %d)"
                                            % (value, slab_percent, opts["slab_reclaimable_percent"], current))
    else:
        reasons["vm.vfs_cache_pressure"] = ("not set: reclaimable slab is %g%% of MemTotal, below %g%%"
                                            % (slab_percent, opts["slab_reclaimable_percent"]))

    settings = {}  # type: t.Dict[str, t.Any]
    for key in sorted(computed):
        if key in opts["computed_keys"]:
            settings[key] = computed[key]
        else:
            reasons[key] = "not managed (not in computed_keys); computed: %s" % reasons[key]
    for key, value in opts["settings"].items():
        settings[key] = value
        reasons[key] = "%s: given in settings" % (value,)

    inputs = {
        "ram_kb": ram_kb,
        "numa_nodes": nodes,
        "low_zones": low_zones,
        "pageblock_kb": block_pages * page_size // 1024,
        "pageblock_from": block_from,
        "lowmem_kb": lowmem_pages * page_kb,
        "lowmem_from": lowmem_from,
        "kernel_default_min_free_kbytes": kernel_default,
        "thp_reserve_kbytes": thp_reserve,
        "min_free_upper_kbytes": upper,
        "slab_reclaimable_percent": slab_percent,
        "has_watermark_scale_factor": has_wsf,
        "raise_vfs_cache_pressure": raise_vfs,
    }
    return {"settings": settings, "inputs": inputs, "reasons": reasons}
