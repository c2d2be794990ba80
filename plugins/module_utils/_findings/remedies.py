# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What to do about a finding: the one home of the remedies the verdict, the facts and the report print.

Private to the collection. Every warning or critical finding gets a ``remedy``: the command to run, with this host's
name and values, and why it helps. The host name comes from an inventory and is untrusted: it is shell-quoted, so a
remedy pasted into a shell names exactly that host.
"""

import json
import shlex
import typing as t


def _limit(host: t.Optional[str]) -> str:
    return shlex.quote(host) if host else "HOST"


def _tunable(tunables: t.Mapping[str, t.Any], name: str) -> str:
    value = tunables.get(name)
    return "unknown" if value is None else str(value)


def remedy(finding: t.Mapping[str, t.Any], host: t.Optional[str] = None,
           tunables: t.Optional[t.Mapping[str, t.Any]] = None) -> t.Optional[str]:
    """The remedy for one finding, or None (info findings, and codes without one)."""
    if finding.get("severity") not in ("warning", "critical"):
        return None
    limit = _limit(host)
    tunables = tunables or {}
    code = finding.get("code", "")
    order = (finding.get("numbers") or {}).get("order")
    reclaim = "ansible-playbook memfrag.linux.reclaim --limit %s -e reclaim_target_order=%s" % (limit, order if order is not None else 4)
    values = (limit, _tunable(tunables, "min_free_kbytes"), _tunable(tunables, "watermark_scale_factor"))
    tune = ("ansible-playbook memfrag.linux.tune --limit %s --check --diff (shows the baseline for this host; today "
            "vm.min_free_kbytes=%s, vm.watermark_scale_factor=%s): higher watermarks make kswapd and kcompactd keep "
            "high-order blocks free before allocations need them" % values)
    if code in ("no_high_order_blocks", "high_order_unusable", "high_order_scarce", "watermark_fails_at_order"):
        return "now: %s (compacts first, drops clean page cache only if still needed); to keep it from coming back: %s" % (
            reclaim, tune)
    if code == "xfs_alloc_deadlock_logged":
        return ("find the files behind it: memfrag.linux.xfs_extent_scan on %s (with the pids the events name) lists the "
                "files whose extent maps need the large allocations XFS retries, and role memfrag.linux.xfs_extents "
                "defragments them; meanwhile: %s" % (limit, reclaim))
    if code == "xfs_fragmented_files":
        paths = [item.get("path") for item in (finding.get("numbers") or {}).get("files") or [] if item.get("path")]
        args = shlex.quote(json.dumps({"files": paths}, separators=(",", ":")))
        return ("ansible %s -b -m memfrag.linux.xfs_defrag -a %s (xfs_fsr rewrites each file into few extents at idle I/O "
                "priority, refuses files open for writing, and returns the extents before and after; the role "
                "memfrag.linux.xfs_extents does the same for the worst files); files created later stay contiguous with an "
                "extent size hint on their directory (xfs_defrag dirs, extsize 16m)" % (limit, args))
    if code in ("page_alloc_failure_logged", "page_alloc_stall_logged"):
        return "%s; then %s" % (reclaim, tune)
    if code == "hung_task_logged":
        return ("read the events (memfrag.linux.kernel_log_scan on %s): a task blocked in memory allocation or XFS "
                "points at fragmentation (%s); blocked in I/O points at storage" % (limit, reclaim))
    if code == "oom_kill_logged":
        return ("memory ran out, not only high-order blocks: read the killed processes (memfrag.linux.kernel_log_scan "
                "on %s) and size the workload or the host; reclaim cannot help here" % limit)
    if code == "slab_reclaimable_large":
        return ("ansible-playbook memfrag.linux.tune --limit %s -e '{\"sysctl_tuning_settings\": "
                "{\"vm.vfs_cache_pressure\": 200}}' (today %s): the kernel reclaims dentries and inodes sooner"
                % (limit, _tunable(tunables, "vfs_cache_pressure")))
    if code == "unexplained_memory":
        return ("memory no counter explains is held by drivers (GPU, network buffers, balloon drivers): compare "
                "memfrag_meminfo.accounting on %s with the drivers loaded; reclaim cannot free it" % limit)
    return None


def add_remedies(findings: t.List[t.Dict[str, t.Any]], host: t.Optional[str] = None,
                 tunables: t.Optional[t.Mapping[str, t.Any]] = None) -> t.List[t.Dict[str, t.Any]]:
    """Set ``remedy`` on every finding that has one (in place; returns ``findings``)."""
    for finding in findings:
        text = remedy(finding, host, tunables)
        if text:
            finding["remedy"] = text
    return findings
