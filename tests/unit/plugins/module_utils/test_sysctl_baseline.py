# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""_sysctl/baseline.py: the sysctl_tuning baseline from cases worked out by hand
(cases/sysctl_baseline.yml), the kernel's own arithmetic, and the same facts read from fixture trees."""

from __future__ import annotations

import math
import os
import random

import pytest
import yaml

from ansible_collections.memfrag.linux.plugins.module_utils._facts.buddyinfo import gather as gather_buddyinfo
from ansible_collections.memfrag.linux.plugins.module_utils._facts.meminfo import gather as gather_meminfo
from ansible_collections.memfrag.linux.plugins.module_utils._sysctl.baseline import (
    compute, default_ceiling, int_sqrt, kernel_default_min_free_kbytes, pageblock_pages, thp_reserve_kbytes)

CASES_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cases", "sysctl_baseline.yml")
with open(CASES_FILE) as _handle:
    CASES = yaml.safe_load(_handle)


def _facts(case):
    zones = []
    for node, zone, managed in case["zones"]:
        entry = {"node": node, "zone": zone, "free_blocks": [0] * case["orders"]}
        if managed is not None:
            entry["managed_pages"] = managed
        zones.append(entry)
    buddyinfo = {"page_size": case["page_size"], "orders": case["orders"], "pages_per_block": case["pages_per_block"],
                 "kernel_release": case["kernel_release"], "zones": zones, "tunables": dict(case["tunables"])}
    meminfo = {"meminfo": {"MemTotal": case["mem_total_kb"] * 1024},
               "slab": {"reclaimable_bytes": case["slab_reclaimable_kb"] * 1024}}
    return buddyinfo, meminfo


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_baseline_case(case):
    buddyinfo, meminfo = _facts(case)
    result = compute(buddyinfo, meminfo, case.get("options"))
    expect = case["expect"]
    assert result["settings"] == expect["settings"]
    for name, value in (expect.get("inputs") or {}).items():
        assert result["inputs"][name] == value, (name, result["inputs"])
    for key, fragments in (expect.get("reasons") or {}).items():
        for fragment in fragments:
            assert fragment in result["reasons"][key], (key, fragment, result["reasons"][key])
    # Every computed key and every given setting says why.
    computed = {"vm.min_free_kbytes", "vm.watermark_scale_factor", "vm.vfs_cache_pressure"}
    assert set(result["reasons"]) >= set(result["settings"]) | computed


def test_int_sqrt_is_the_floor_of_the_square_root():
    rng = random.Random(15)
    values = list(range(0, 2000)) + [rng.randrange(1 << 70) for _n in range(2000)] + [(1 << 66) - 1, 1 << 66]
    for value in values:
        root = int_sqrt(value)
        assert root * root <= value < (root + 1) * (root + 1), value
        assert root == math.isqrt(value)
    with pytest.raises(ValueError):
        int_sqrt(-1)


@pytest.mark.parametrize("release,ceiling", [
    ("5.6.19", 65536), ("5.7.0", 262144), ("6.18.44-fc", 262144), ("4.18.0-553.el8_10.x86_64", 65536),
    ("3.10.0-1062.el7.x86_64", 65536), ("3.10.0-1160.119.1.el7.x86_64", 262144), (None, 262144), ("junk", 262144),
])
def test_default_ceiling_by_release(release, ceiling):
    assert default_ceiling(release) == ceiling


def test_kernel_default_clamps():
    # The table in mm/page_alloc.c's comment above init_per_zone_wmark_min: 16 MB -> 512k, 1024 MB -> 4096k,
    # 16384 MB -> 16384k; 4 MB of lowmem gives 256 (above the 128 floor), 256 kB gives int_sqrt(4096) = 64 -> 128.
    assert kernel_default_min_free_kbytes(16 * 1024, "6.1.0") == 512
    assert kernel_default_min_free_kbytes(1024 * 1024, "6.1.0") == 4096
    assert kernel_default_min_free_kbytes(16384 * 1024, "6.1.0") == 16384
    assert kernel_default_min_free_kbytes(256, "6.1.0") == 128
    # 65536 is reached at 256 GiB of lowmem, 262144 at 4 TiB.
    assert kernel_default_min_free_kbytes(256 * 1024 * 1024, "5.6.0") == 65536
    assert kernel_default_min_free_kbytes(8 * 1024 * 1024 * 1024, "5.6.0") == 65536
    assert kernel_default_min_free_kbytes(8 * 1024 * 1024 * 1024, "5.7.0") == 262144


def test_thp_reserve_and_pageblock():
    assert thp_reserve_kbytes(512, 3, 10 ** 9, 4) == 67584
    assert thp_reserve_kbytes(512, 2, 123000, 4) == 6150 * 4
    assert pageblock_pages(4096, 11, None) == (512, "assumed: pageblock order 9 (the PMD order for 4096-byte pages)")
    assert pageblock_pages(16384, 12, None)[0] == 2048
    assert pageblock_pages(65536, 14, None)[0] == 8192
    assert pageblock_pages(65536, 12, None)[0] == 2048  # capped by the highest order buddyinfo shows
    assert pageblock_pages(4096, 11, 1024) == (1024, "pagetypeinfo")


@pytest.mark.parametrize("options,message", [
    ({"min_free_percent": "lots"}, "min_free_percent must be a number"),
    ({"min_free_kbytes": -1}, "min_free_kbytes must be a whole number"),
    ({"min_free_kbytes": True}, "min_free_kbytes must be a whole number"),
    ({"settings": ["vm.swappiness"]}, "settings must be a dict"),
    ({"no_such_option": 1}, "unknown option 'no_such_option'"),
])
def test_bad_options(options, message):
    buddyinfo, meminfo = _facts(CASES[0])
    with pytest.raises(ValueError, match=message):
        compute(buddyinfo, meminfo, options)


def test_facts_without_memtotal_or_zones():
    buddyinfo, meminfo = _facts(CASES[0])
    with pytest.raises(ValueError, match="lack MemTotal or zones"):
        compute(buddyinfo, {"meminfo": {}}, None)
    with pytest.raises(ValueError, match="lack MemTotal or zones"):
        compute(dict(buddyinfo, zones=[]), meminfo, None)


@pytest.mark.parametrize("tree", ["buddyinfo-arm64-64k-14orders", "buddyinfo-x86-3zone-el8",
                                  "buddyinfo-rhel7-legacy-fragmented", "diagnose-fragmented"])
def test_baseline_from_fixture_trees(fixtures_dir, tree):
    """The facts modules' own output on our fixture trees goes through without surprises."""
    proc_root = os.path.join(fixtures_dir, "proc", tree)
    if not os.path.exists(os.path.join(proc_root, "meminfo")):
        pytest.skip("%s has no meminfo" % tree)
    buddyinfo, _warnings = gather_buddyinfo(proc_root, None, ["zoneinfo", "pagetypeinfo", "sysctl"])
    meminfo, _warnings = gather_meminfo(proc_root, buddyinfo["page_size"], 10, ["meminfo"])
    result = compute(buddyinfo, meminfo)
    inputs = result["inputs"]
    assert inputs["ram_kb"] * 1024 == meminfo["meminfo"]["MemTotal"]
    assert 128 <= inputs["kernel_default_min_free_kbytes"] <= 262144
    assert result["settings"]["vm.min_free_kbytes"] <= inputs["min_free_upper_kbytes"]
    assert ("vm.watermark_scale_factor" in result["settings"]) == inputs["has_watermark_scale_factor"]
    if tree == "buddyinfo-arm64-64k-14orders":
        assert buddyinfo["page_size"] == 65536 and inputs["pageblock_kb"] == 512 * 1024
        assert inputs["lowmem_kb"] == 69111808  # the hand-worked arm64 case above
