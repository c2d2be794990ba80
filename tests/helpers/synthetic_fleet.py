# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Synthetic fleets for the report at scale: per host the variables the diagnose role leaves behind.

Every host starts from real facts of one fixture tree (tests/fixtures/proc/buddyinfo-x86-3zone-el8, gathered with
the collection's own code, so the shape and size are what memory_facts returns) and gets its own free blocks per
zone, from healthy to shattered; its findings and verdict are then made by the collection's judge, so the
severities are the ones a real run would give. Some hosts have kernel-log events, reclaim results, tunables off
the baseline, or no data at all (unreachable). Deterministic for a given count and seed.
"""

from __future__ import annotations

import json
import os
import random
import typing as t

from collection_tree import REPO_ROOT
from ansible_collections.memfrag.linux.plugins.module_utils._facts.buddyinfo import gather, node_summaries
from ansible_collections.memfrag.linux.plugins.module_utils._findings.judge import host_findings, verdict
from ansible_collections.memfrag.linux.plugins.module_utils._mm import fragmentation as frag
from ansible_collections.memfrag.linux.plugins.module_utils._mm.accounting import account
from ansible_collections.memfrag.linux.plugins.module_utils._procfs.meminfo import read_meminfo

FIXTURE = os.path.join(REPO_ROOT, "tests", "fixtures", "proc", "buddyinfo-x86-3zone-el8")
KERNELS = ("4.18.0-553.el8_10.x86_64", "5.14.0-427.el9.x86_64", "6.1.0-26-amd64", "5.10.0-32-amd64", "3.10.0-1160.el7.x86_64")
# Inventory names nobody should trust: each must stay one contained file in the report.
# Free blocks per order of a healthy host (the fixture's own are a fragmented snapshot).
HEALTHY = {"DMA32": [900, 700, 600, 500, 400, 300, 200, 120, 80, 40, 180],
           "Normal": [30000, 20000, 12000, 7000, 4000, 2000, 1000, 500, 250, 120, 900]}
HOSTILE_NAMES = ("../../x", "a/b", "..", ".hidden", "<script>alert(1)</script>", "web\u00e9 \u4e2d", "%41", "~",
                 "x" * 300, "CaseHost", "casehost")


def _template() -> t.Tuple[t.Dict[str, t.Any], t.Dict[str, t.Any]]:
    buddy, _warnings = gather(FIXTURE)
    meminfo, _warnings = read_meminfo(FIXTURE)
    return buddy, {"meminfo": meminfo, "accounting": account(meminfo)}


def _zone_facts(zone: t.Dict[str, t.Any], free_blocks: t.List[int], page_size: int) -> None:
    zone["free_blocks"] = free_blocks
    zone["free_pages"] = frag.free_pages(free_blocks)
    zone["free_bytes"] = zone["free_pages"] * page_size
    zone["free_bytes_at_or_above_order"] = frag.free_bytes_at_or_above_order(free_blocks, page_size)
    zone["unusable_index"] = frag.unusable_indexes(free_blocks)
    zone["fragmentation_index"] = frag.fragmentation_indexes(free_blocks)
    zone["largest_free_order"] = frag.largest_free_order(free_blocks)
    zone["largest_free_block_bytes"] = frag.largest_free_block_bytes(free_blocks, page_size)
    # The watermark verdict per order: enough pages in blocks of at least that order above the min mark.
    low = (zone.get("watermarks") or {}).get("min", 64)
    at_or_above = frag.free_pages_at_or_above_order(free_blocks)
    zone["watermark_ok"] = [pages > low for pages in at_or_above]


def host_vars(index: int, count: int, rng: random.Random, template: t.Tuple[t.Dict[str, t.Any], t.Dict[str, t.Any]],
              when: str = "2026-11-20T10:00:00+00:00") -> t.Dict[str, t.Any]:
    """One diagnosed host: ``{'ansible_facts': {memfrag_buddyinfo, memfrag_meminfo, memfrag_findings, memfrag_verdict,
    memfrag_log_counts}}`` and sometimes ``memfrag_reclaim``; ``{}`` for an unreachable host (about 1%)."""
    if rng.random() < 0.01:
        return {}
    buddy = dict(template[0], zones=[dict(z) for z in template[0]["zones"]])
    page_size = buddy["page_size"]
    # Fragmentation from none to total: most hosts healthy, a tail shattered.
    damage = rng.random() ** 10
    for zone in buddy["zones"]:
        base = HEALTHY.get(zone["zone"], zone["free_blocks"])
        blocks = []
        for order in range(len(base)):
            scale = rng.uniform(0.3, 3.0)
            if order >= 3:
                scale *= (1.0 - damage) ** (order * 2)
            blocks.append(int(base[order] * scale) + (int(damage * 40000) if order == 0 and zone["zone"] in HEALTHY else 0))
        _zone_facts(zone, blocks, page_size)
    buddy["nodes"] = node_summaries(buddy["zones"])
    buddy["kernel_release"] = KERNELS[index % len(KERNELS)]
    if rng.random() < 0.1:
        buddy["tunables"] = dict(buddy["tunables"], min_free_kbytes=rng.choice((11264, 45056, 90112)))
    counts = dict((kind, 0) for kind in ("xfs_alloc_deadlock", "page_alloc_failure", "page_alloc_stall", "hung_task", "oom_kill"))
    last_seen = dict((kind, None) for kind in counts)
    if damage > 0.3 or rng.random() < 0.03:
        for kind in rng.sample(sorted(counts), rng.randint(1, 3)):
            counts[kind] = rng.randint(1, 500)
            last_seen[kind] = "2026-11-%02dT%02d:%02d:00+00:00" % (rng.randint(1, 20), rng.randint(0, 23), rng.randint(0, 59))
    log = {"counts": counts, "first_seen": dict(last_seen), "last_seen": last_seen}
    findings = host_findings(buddy, None, log)  # the template meminfo is only there for its size
    facts = {"memfrag_buddyinfo": buddy, "memfrag_meminfo": template[1], "memfrag_findings": findings,
             "memfrag_verdict": verdict(findings), "memfrag_log_counts": log}
    out = {"ansible_facts": facts}  # type: t.Dict[str, t.Any]
    if damage > 0.2 and rng.random() < 0.5:
        before = sum(z["free_bytes_at_or_above_order"][4] for z in buddy["zones"])
        out["memfrag_reclaim"] = {
            "needed": True, "reason": "Normal zone below target", "check_mode": False, "order": 4, "target_mb": 256,
            "target_met": rng.random() < 0.5, "before_high_order_bytes": before, "after_high_order_bytes": before * 3,
            "actions": [{"action": "compact_memory", "changed": True, "refused": None, "summary": "compacted in 0.4 s"},
                        {"action": "drop_caches pagecache", "changed": True, "refused": None, "summary": "dropped 2 GiB"}]}
    return out


def fleet(count: int, seed: int = 14, hostile: bool = True) -> t.Dict[str, t.Dict[str, t.Any]]:
    """``count`` hosts (name -> variables); with ``hostile`` the first names are HOSTILE_NAMES."""
    rng = random.Random(seed)
    template = _template()
    names = list(HOSTILE_NAMES[:count]) if hostile else []
    names += ["host%05d" % i for i in range(count - len(names))]
    return dict((name, host_vars(i, count, rng, template)) for i, name in enumerate(names))


def write_fact_cache(directory: str, hosts: t.Mapping[str, t.Mapping[str, t.Any]]) -> None:
    """The hosts' facts as ansible's jsonfile fact cache (one file per host), for a playbook run without modules.

    Only the facts go there (as a module's ansible_facts would); ``memfrag_reclaim`` is a set_fact and is returned
    by ``extra_host_vars`` for the inventory instead."""
    os.makedirs(directory, exist_ok=True)
    for name, hv in hosts.items():
        if "/" in name or name.startswith("."):
            raise ValueError("the jsonfile cache keeps one file per host name: %r cannot be one" % name)
        if hv.get("ansible_facts"):
            with open(os.path.join(directory, name), "w") as f:
                json.dump(hv["ansible_facts"], f)


def extra_host_vars(hv: t.Mapping[str, t.Any]) -> t.Dict[str, t.Any]:
    return dict((k, v) for k, v in hv.items() if k != "ansible_facts")
