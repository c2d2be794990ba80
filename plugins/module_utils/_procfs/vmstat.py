# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Parser for /proc/vmstat and the counters that tell a fragmentation story.

The kernel (mm/vmstat.c vmstat_show) writes one ``"%s %lu"`` line per counter. Names differ by
era (2.6.38 had compact_blocks_moved / compact_pages_moved; 4.8+ split allocstall per zone as
allocstall_dma, allocstall_normal, ...), so counters are selected by prefix, never by a fixed list.
"""


import re
import typing as t

from ansible_collections.memfrag.linux.plugins.module_utils._procfs.files import ProcFileError
from ansible_collections.memfrag.linux.plugins.module_utils._procfs.numbers import NumberError, parse_signed

_LINE = re.compile(r"^\s*([A-Za-z0-9_]+)\s+(-?\d+)\s*$")

# Prefixes of the counters that matter for fragmentation, compaction and reclaim stalls.
FRAGMENTATION_COUNTER_PREFIXES = (
    "compact_",              # compaction attempts, outcomes and daemon (kcompactd) wakes
    "pgmigrate_",            # page migration done by compaction
    "thp_migration_",
    "allocstall",            # direct reclaim entered (allocstall, or allocstall_<zone> on 4.8+)
    "drop_pagecache",        # writes to /proc/sys/vm/drop_caches
    "drop_slab",
    "pageoutrun",            # kswapd balancing runs
    "kswapd_low_wmark_hit_quickly",
    "kswapd_high_wmark_hit_quickly",
    "pgscan_direct",
    "pgsteal_direct",
    "pgscan_kswapd",
    "pgsteal_kswapd",
    "slabs_scanned",
    "thp_fault_fallback",    # a huge page could not be allocated at fault time
    "thp_collapse_alloc_failed",
    "htlb_buddy_alloc_",
    "oom_kill",
    "nr_free_pages",
)


def parse_vmstat(text: str, path: str = "/proc/vmstat") -> t.Tuple[t.Dict[str, int], t.List[str]]:
    """All counters as ``{name: int}`` and warnings for lines that are not ``name value`` or hold a
    value past 64 bits (those lines are skipped).

    Raises ProcFileError when no counter at all can be read (empty or not vmstat).
    """
    counters = {}  # type: t.Dict[str, int]
    warnings = []  # type: t.List[str]
    for line_number, raw in enumerate(text.splitlines(), 1):
        if not raw.strip():
            continue
        match = _LINE.match(raw)
        if match is None:
            warnings.append("%s line %d: not a 'name value' counter, skipped: %r" % (path, line_number, raw.strip()[:80]))
            continue
        try:
            counters[match.group(1)] = parse_signed(match.group(2), match.group(1))
        except NumberError as exc:
            warnings.append("%s line %d: %s; counter skipped" % (path, line_number, exc))
    if not counters:
        raise ProcFileError(path, "no 'name value' counters; the file is empty or not vmstat")
    return counters, warnings


def fragmentation_counters(counters: t.Mapping[str, int]) -> t.Dict[str, int]:
    """The subset of ``counters`` named by FRAGMENTATION_COUNTER_PREFIXES, in the kernel's order."""
    return dict((name, value) for name, value in counters.items() if name.startswith(FRAGMENTATION_COUNTER_PREFIXES))
