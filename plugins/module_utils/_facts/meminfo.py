# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The meminfo_facts assembler: read meminfo, slabinfo and the pid directories under a root, account used memory.

Private to the collection. The reading lives in _procfs, the arithmetic in _mm/accounting; this file only decides
what to read (``gather_subset``) and how a problem with an optional source becomes a warning.
"""

import typing as t

from ansible_collections.memfrag.linux.plugins.module_utils._facts.subsets import resolve_subsets
from ansible_collections.memfrag.linux.plugins.module_utils._mm.accounting import account, slab_facts
from ansible_collections.memfrag.linux.plugins.module_utils._procfs.files import ProcFileError
from ansible_collections.memfrag.linux.plugins.module_utils._procfs.meminfo import read_meminfo
from ansible_collections.memfrag.linux.plugins.module_utils._procfs.process_memory import process_rss
from ansible_collections.memfrag.linux.plugins.module_utils._procfs.slabinfo import read_slabinfo

OPTIONAL_SUBSETS = ("slabinfo", "processes")
ALL_SUBSETS = ("meminfo",) + OPTIONAL_SUBSETS


def _source_status(exc: ProcFileError) -> str:
    return "missing" if exc.missing else "unreadable: %s" % exc


def gather(proc_root: str, page_size: int, top: int = 10,
           gather_subset: t.Sequence[str] = ("all",)) -> t.Tuple[t.Dict[str, t.Any], t.List[str]]:
    """Build the ``memfrag_meminfo`` facts and warnings. meminfo is always read.

    Raises ProcFileError when meminfo is missing or malformed (nothing can be said without it);
    slabinfo and the pid directories are optional: a problem there is a warning and a ``sources``
    entry, never a failure. Raises ValueError for a negative ``top`` or a bad ``gather_subset``.
    """
    if top < 0:
        raise ValueError("top_slab_caches must be 0 or more, got %d" % top)
    subsets = resolve_subsets(gather_subset, "meminfo", OPTIONAL_SUBSETS)
    meminfo, warnings = read_meminfo(proc_root)
    sources = {"meminfo": "ok"}  # type: t.Dict[str, str]

    caches = None
    if "slabinfo" in subsets:
        try:
            caches, slab_warnings = read_slabinfo(proc_root, page_size)
            warnings.extend(slab_warnings)
            sources["slabinfo"] = "ok"
        except ProcFileError as exc:
            sources["slabinfo"] = _source_status(exc)
            warnings.append("slab caches not listed: %s" % exc)
    else:
        sources["slabinfo"] = "skipped"

    processes = None
    if "processes" in subsets:
        try:
            summed = process_rss(proc_root, page_size)
            warnings.extend(summed.warnings)
            processes = summed.as_fact()
            if processes["count"]:
                sources["pid/statm"] = "ok"
            else:
                # A sosreport or a fixture without pid directories: no RSS to compare with.
                sources["pid/statm"] = "missing"
                warnings.append("no process directories under %s; process RSS not compared" % proc_root)
        except OSError as exc:
            sources["pid/statm"] = "unreadable: %s" % (exc.strerror or exc)
            warnings.append("process RSS not summed: cannot list %s: %s" % (proc_root, exc.strerror or exc))
    else:
        sources["pid/statm"] = "skipped"

    facts = {
        "meminfo": dict(meminfo),
        "slab": slab_facts(meminfo, caches, top),
        "processes": processes,
        "accounting": account(meminfo, processes["rss_bytes"] if processes and processes["count"] else None),
        "page_size": page_size,
        "sources": sources,
    }
    return facts, warnings
