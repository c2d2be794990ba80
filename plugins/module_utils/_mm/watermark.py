# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Would an allocation of each order pass the zone's watermark check right now?

This is an approximation of the kernel's ``__zone_watermark_ok()`` (mm/page_alloc.c) computed
from the numbers /proc exposes; it is not the kernel's own answer. The allocation modelled is
an ordinary kernel allocation of the GFP_KERNEL / GFP_NOFS kind: no ``__GFP_HIGH``, no access
to reserves (no ALLOC_HARDER / ALLOC_HIGHATOMIC / ALLOC_OOM), not movable (so free CMA pages do
not count), whose highest usable zone is Normal (for zones above Normal - HighMem, Movable - the
zone itself). ``lowmem_reserve`` is that class's entry of the zone's ``protection`` array.

Two algorithms, by kernel era:

``2.6-4.3`` (also RHEL 7's 3.10)::

    free = pages_free - (2**order - 1)
    fail if free - free_cma <= mark + lowmem_reserve
    for o < order: free -= nr_free[o] << o; mark >>= 1; fail if free <= mark

  Pages in blocks smaller than the request stop counting, and the bar halves per order: this is
  the "memory is free but fragmented" failure seen in /proc/buddyinfo.

``4.4+`` (Mel Gorman, "mm, page_alloc: only enforce watermarks for order-0 allocations")::

    free = pages_free - (2**order - 1) - highatomic - free_cma
    fail if free <= mark + lowmem_reserve
    order 0 passes; order > 0 passes if some order >= it has a free block on the
    Unmovable, Movable or Reclaimable list

  ``highatomic`` is the HighAtomic reserve the caller may not use: before ~6.12 the kernel
  subtracted the whole reserve (``nr_reserved_highatomic``: HighAtomic pageblocks times pages
  per block), since ~6.12 only its free pages (``nr_free_highatomic``). From 6.5 to 6.11, with
  CONFIG_UNACCEPTED_MEMORY (TDX/SEV-SNP guests), zoneinfo's ``nr_unaccepted`` is subtracted too
  (__zone_watermark_unusable_free); 6.12 ("mm: accept to promo watermark") accepts such memory
  before the check instead, so from then on it counts as free.

What /proc cannot tell, and how it is approximated:

* ``pages_free`` is zoneinfo's ``pages free`` (NR_FREE_PAGES); per-order counts come from a
  buddyinfo read at a slightly different moment.
* Without a readable pagetypeinfo, the per-order test of 4.4+ uses all free lists (HighAtomic,
  CMA and Isolate included) and the HighAtomic reserve counts as 0: the verdict can be optimistic.
* The kernel era comes from the kernel release when known, else from the migrate type names
  (Reserve: before 4.4; HighAtomic: 4.4+), else from zoneinfo's layout (4.4-4.7 look legacy).
* Watermarks printed since 5.0 include watermark_boost, as the kernel's check does.
* Per-cpu lists, cpusets, mempolicies, ``__GFP_HIGH`` and OOM reserves are not modelled.

``ok[mark]`` is a list with one bool per order. ``min`` is the watermark that matters: failing
it means the allocation needs direct reclaim or compaction (a stall, or a failure for
GFP_NOFS / costly orders). ``low`` is the fast-path check (failing it wakes kswapd), ``high``
is where kswapd stops.
"""


import typing as t
from ansible_collections.memfrag.linux.plugins.module_utils._procfs.release import parse_release

ERA_LEGACY = "2.6-4.3"
ERA_MODERN = "4.4+"
MARKS = ("min", "low", "high")
# Migrate types whose free lists an ordinary allocation may take from (MIGRATE_PCPTYPES).
PCP_TYPES = ("Unmovable", "Movable", "Reclaimable")


def release_version(release: t.Optional[str]) -> t.Optional[t.Tuple[int, int]]:
    """``(major, minor)`` of a kernel release string such as ``4.18.0-80.el8.x86_64``."""
    version = parse_release(release)
    return None if version is None else version[:2]


def era_of_release(release: t.Optional[str]) -> t.Optional[str]:
    version = release_version(release)
    if version is None:
        return None
    return ERA_MODERN if version >= (4, 4) else ERA_LEGACY


def era_of_migrate_types(types: t.Iterable[str]) -> t.Optional[str]:
    """HighAtomic exists from 4.4, Reserve until 4.3."""
    names = set(types)
    if "HighAtomic" in names:
        return ERA_MODERN
    if "Reserve" in names:
        return ERA_LEGACY
    return None


def era_of_zoneinfo_layout(has_node_stats: bool, field_names: t.Iterable[str], tail_names: t.Iterable[str]) -> t.Optional[str]:
    """per-node stats and node_unreclaimable are 4.8+, boost/promo/cma later still; all_unreclaimable is <= 4.7."""
    fields = set(field_names)
    tail = set(tail_names)
    if has_node_stats or "node_unreclaimable" in tail or fields & {"boost", "promo", "cma"}:
        return ERA_MODERN
    if "all_unreclaimable" in tail or "scanned" in fields:
        return ERA_LEGACY
    return None


def subtracts_free_highatomic(release: t.Optional[str]) -> bool:
    """True when the kernel subtracts only free HighAtomic pages (~6.12+), not the whole reserve."""
    version = release_version(release)
    return version is not None and version >= (6, 12)


def subtracts_unaccepted(release: t.Optional[str]) -> bool:
    """True for 6.5-6.11, whose __zone_watermark_unusable_free() counts NR_UNACCEPTED as unusable."""
    version = release_version(release)
    return version is not None and (6, 5) <= version < (6, 12)


def order_ok(era: str, order: int, free_blocks: t.Sequence[int], pages_free: int, mark: int, lowmem_reserve: int,
             free_cma: int = 0, highatomic: int = 0, usable_blocks: t.Optional[t.Sequence[int]] = None,
             unaccepted: int = 0) -> bool:
    """One verdict: would ``__zone_watermark_ok(zone, order, mark, class, 0, pages_free)`` pass (see module doc)."""
    free = pages_free - ((1 << order) - 1)
    if era == ERA_LEGACY:
        if free - free_cma <= mark + lowmem_reserve:
            return False
        for lower in range(order):
            free -= free_blocks[lower] << lower
            mark >>= 1
            if free <= mark:
                return False
        return True
    free -= highatomic + free_cma + unaccepted
    if free <= mark + lowmem_reserve:
        return False
    if order == 0:
        return True
    blocks = free_blocks if usable_blocks is None else usable_blocks
    return any(blocks[higher] > 0 for higher in range(order, len(blocks)))


def watermark_verdicts(era: str, free_blocks: t.Sequence[int], pages_free: int, watermarks: t.Mapping[str, int],
                       lowmem_reserve: int, free_cma: int = 0, highatomic: int = 0,
                       usable_blocks: t.Optional[t.Sequence[int]] = None,
                       unaccepted: int = 0) -> t.Dict[str, t.List[bool]]:
    """``{mark: [verdict per order]}`` for each of min, low and high present in ``watermarks``."""
    result = {}  # type: t.Dict[str, t.List[bool]]
    for name in MARKS:
        if name not in watermarks:
            continue
        result[name] = [order_ok(era, order, free_blocks, pages_free, watermarks[name], lowmem_reserve,
                                 free_cma, highatomic, usable_blocks, unaccepted)
                        for order in range(len(free_blocks))]
    return result
