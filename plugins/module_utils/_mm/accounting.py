# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where the used memory went: the arithmetic behind "free says 14 GiB used, ps says 0.6 GiB".

Everything here works on the ``{field: value}`` dict of _meminfo.parse_meminfo (bytes for kB
fields, counts for HugePages_*), so it runs the same on a live host, a sosreport or a paste.

How the kernel's numbers fit together (fs/proc/meminfo.c):

* ``Cached`` = file pages - swap cache - Buffers. File pages include **Shmem** (tmpfs, shared
  anonymous mappings, SysV/POSIX shared memory, DRM/GPU buffers): shmem pages live in the page
  cache, so Shmem is *inside* Cached. Unlike the rest of Cached it cannot be dropped, only swapped,
  so counting all of Cached as "cache" (as old ``free`` did) hides a full tmpfs. Here the page
  cache that can be reclaimed is ``Cached - Shmem`` and Shmem is a part of used memory.
* used = MemTotal - MemFree - Buffers - (Cached - Shmem).
* The parts of used memory that the kernel counts separately: AnonPages (process private memory,
  THP included), Shmem, slab (SReclaimable + SUnreclaim, or only ``Slab:`` before 2.6.19),
  other reclaimable kernel memory (KReclaimable - SReclaimable, 4.20+), PageTables (+ SecPageTables
  for KVM/IOMMU page tables, 6.3+), KernelStack, Percpu (4.16+), vmalloc, the hugetlb pool
  (allocated from RAM whether or not a process uses it) and the zswap pool. Whatever is left is
  memory allocated straight from the page allocator by drivers or the kernel (alloc_pages without
  a counter: GPU drivers, network buffers, balloon...), which /proc/meminfo does not name.
* Process RSS counts anonymous *and* mapped file/shmem pages, shared pages once per process, and
  never kernel memory: summing it over-counts shared memory and misses slab entirely.
"""


import typing as t

from ansible_collections.memfrag.linux.plugins.module_utils._procfs.slabinfo import top_caches, total_bytes
from ansible_collections.memfrag.linux.plugins.module_utils._units import format_bytes


# Parts of used memory, in the order the explanation and the facts list them: (fact key, label).
PARTS = (
    ("anon_bytes", "anonymous"),
    ("shmem_bytes", "shmem/tmpfs"),
    ("slab_reclaimable_bytes", "reclaimable slab"),
    ("slab_unreclaimable_bytes", "unreclaimable slab"),
    ("kernel_reclaimable_other_bytes", "other reclaimable kernel memory"),
    ("page_tables_bytes", "page tables"),
    ("kernel_stack_bytes", "kernel stacks"),
    ("percpu_bytes", "per-cpu"),
    ("vmalloc_bytes", "vmalloc"),
    ("hugepages_bytes", "hugetlb pool"),
    ("zswap_bytes", "zswap pool"),
)


def _get(meminfo: t.Mapping[str, int], *names: str) -> t.Optional[int]:
    """Sum of the named fields present; None when none of them is present (kernel too old)."""
    values = [meminfo[name] for name in names if name in meminfo]
    return sum(values) if values else None


def _slab_split(meminfo: t.Mapping[str, int]) -> t.Tuple[t.Optional[int], t.Optional[int], t.Optional[int]]:
    """(total, reclaimable, unreclaimable); before 2.6.19 only ``Slab:`` exists and the split is unknown."""
    reclaimable = meminfo.get("SReclaimable")
    unreclaimable = meminfo.get("SUnreclaim")
    total = meminfo.get("Slab")
    if total is None and reclaimable is not None and unreclaimable is not None:
        total = reclaimable + unreclaimable
    return total, reclaimable, unreclaimable


def _vmalloc(meminfo: t.Mapping[str, int]) -> t.Optional[int]:
    """vmalloc'd RAM not already counted as kernel stacks, or None where VmallocUsed does not mean RAM.

    Before 4.4 VmallocUsed summed the size of vmalloc *address ranges*, ioremap'd device memory
    included, so it is not RAM; 4.4 to 5.2 printed 0; from 5.3 it counts vmalloc'd pages. The
    Percpu field (4.16+) marks the kernels where the value is either 0 or pages. With
    CONFIG_VMAP_STACK (the x86_64/arm64 default) kernel stacks are vmalloc'd and already in
    KernelStack, so they are taken out to avoid counting them twice.
    """
    used = meminfo.get("VmallocUsed")
    if used is None or "Percpu" not in meminfo:
        return None
    return max(0, used - meminfo.get("KernelStack", 0))


def _hugepages(meminfo: t.Mapping[str, int]) -> t.Optional[int]:
    """The hugetlb pool: Hugetlb (4.17+, all page sizes) or HugePages_Total * Hugepagesize (default size only)."""
    if "Hugetlb" in meminfo:
        return meminfo["Hugetlb"]
    if "HugePages_Total" in meminfo and "Hugepagesize" in meminfo:
        return meminfo["HugePages_Total"] * meminfo["Hugepagesize"]
    return None


def account(meminfo: t.Mapping[str, int], process_rss_bytes: t.Optional[int] = None) -> t.Dict[str, t.Any]:
    """The accounting of used memory from meminfo (and optionally the summed process RSS).

    Parts the kernel does not report are None, never 0, so "absent on this kernel" stays visible;
    they count as 0 in the sum. ``unexplained_bytes`` is used minus the known parts; it can be
    negative when parts overlap (swap cache pages still mapped, non-vmapped stacks), by that much.
    """
    total = meminfo["MemTotal"]
    free = meminfo["MemFree"]
    buffers = meminfo.get("Buffers", 0)
    cached = meminfo.get("Cached", 0)
    shmem = meminfo.get("Shmem")
    # Shmem is inside Cached (see module docstring); the reclaimable page cache is the rest.
    page_cache = max(0, cached - (shmem or 0))
    used = total - free - buffers - page_cache

    slab_total, slab_reclaimable, slab_unreclaimable = _slab_split(meminfo)
    kreclaimable = meminfo.get("KReclaimable")
    kernel_reclaimable_other = None
    if kreclaimable is not None:
        kernel_reclaimable_other = max(0, kreclaimable - (slab_reclaimable or 0))

    result = {
        "total_bytes": total,
        "free_bytes": free,
        "buffers_bytes": buffers,
        "page_cache_bytes": page_cache,
        "used_bytes": used,
        "anon_bytes": meminfo.get("AnonPages"),
        "shmem_bytes": shmem,
        "slab_bytes": slab_total,
        "slab_reclaimable_bytes": slab_reclaimable,
        "slab_unreclaimable_bytes": slab_unreclaimable,
        "kernel_reclaimable_other_bytes": kernel_reclaimable_other,
        "page_tables_bytes": _get(meminfo, "PageTables", "SecPageTables"),
        "kernel_stack_bytes": meminfo.get("KernelStack"),
        "percpu_bytes": meminfo.get("Percpu"),
        "vmalloc_bytes": _vmalloc(meminfo),
        "hugepages_bytes": _hugepages(meminfo),
        "zswap_bytes": meminfo.get("Zswap"),
    }  # type: t.Dict[str, t.Any]

    if "MemAvailable" in meminfo:
        result["available_bytes"] = meminfo["MemAvailable"]
        result["available_source"] = "meminfo"
    else:
        # Before 3.14: the usual estimate, free + reclaimable cache + reclaimable slab
        # (over-estimates: not all of the cache can be dropped, and watermarks are kept free).
        result["available_bytes"] = free + buffers + page_cache + (slab_reclaimable or 0)
        result["available_source"] = "estimate"

    explained = 0
    for key, _label in PARTS:
        value = result[key]
        if value is not None:
            explained += value
    if slab_reclaimable is None and slab_total is not None:
        # Only "Slab:" on this kernel: count the total once, as a single part.
        explained += slab_total
    result["explained_bytes"] = explained
    result["unexplained_bytes"] = used - explained

    result["process_rss_bytes"] = process_rss_bytes
    result["rss_gap_bytes"] = None if process_rss_bytes is None else used - process_rss_bytes
    result["explanation"] = explain(result)
    return result


def explain(acc: t.Mapping[str, t.Any]) -> str:
    """One plain sentence with the numbers, largest parts first."""
    parts = []  # type: t.List[t.Tuple[int, str]]
    for key, label in PARTS:
        value = acc.get(key)
        if value:
            parts.append((value, label))
    if acc.get("slab_reclaimable_bytes") is None and acc.get("slab_bytes"):
        parts.append((acc["slab_bytes"], "slab"))
    parts.sort(key=lambda item: -item[0])
    used = acc["used_bytes"]
    # Keep the sentence readable: name the parts that matter (>= 1% of used), at most six.
    shown = [item for item in parts if used > 0 and item[0] * 100 >= used][:6] or parts[:1]
    listing = ", ".join("%s %s" % (label, format_bytes(value)) for value, label in shown)
    sentence = "%s of %s is used (%s free, %s of file cache and buffers not counted)" % (
        format_bytes(used), format_bytes(acc["total_bytes"]), format_bytes(acc["free_bytes"]),
        format_bytes(acc["page_cache_bytes"] + acc["buffers_bytes"]))
    if listing:
        sentence += ": %s" % listing
    sentence += "; %s is not explained by /proc/meminfo" % format_bytes(acc["unexplained_bytes"])
    if acc.get("anon_bytes") is None:
        sentence += " (this kernel does not report AnonPages)"
    rss = acc.get("process_rss_bytes")
    if rss is not None:
        kernel = sum(value for value, label in parts if label != "anonymous" and label != "shmem/tmpfs")
        if rss < used:
            sentence += "; process RSS adds up to only %s, %s less than used, because %s of it is kernel memory" \
                        " (slab, page tables, stacks...) that belongs to no process" % (
                            format_bytes(rss), format_bytes(used - rss), format_bytes(kernel))
        else:
            sentence += "; process RSS adds up to %s, more than used, because shared and file-backed pages are" \
                        " counted in every process that maps them" % format_bytes(rss)
    return sentence + "."


def slab_facts(meminfo: t.Mapping[str, int], caches: t.Optional[t.Sequence[t.Any]], top: int) -> t.Dict[str, t.Any]:
    """The ``slab`` fact: totals from meminfo when it has them, else from slabinfo; top caches from slabinfo."""
    total, reclaimable, unreclaimable = _slab_split(meminfo)
    source = "meminfo"
    if total is None:
        if caches is not None:
            total = total_bytes(caches)
            source = "slabinfo"
        else:
            source = "none"
    return {
        "total_bytes": total,
        "reclaimable_bytes": reclaimable,
        "unreclaimable_bytes": unreclaimable,
        "top_caches": [cache.as_fact() for cache in top_caches(caches or [], top)],
        "caches_bytes": None if caches is None else total_bytes(caches),
        "source": source,
    }
