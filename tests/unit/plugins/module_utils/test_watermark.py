# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Watermark verdicts (approximation of __zone_watermark_ok) and the kernel-era helpers."""

from __future__ import annotations

import os

import pytest
import yaml

from ansible_collections.memfrag.linux.plugins.module_utils._mm import watermark as wm

HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, "cases", "watermark.yml")) as handle:
    CASES = yaml.safe_load(handle)


@pytest.mark.parametrize("name", sorted(CASES))
def test_case(name):
    case = CASES[name]
    got = wm.watermark_verdicts(case["era"], case["free_blocks"], case["pages_free"], case["watermarks"],
                                case["reserve"], case.get("free_cma", 0), case.get("highatomic", 0),
                                case.get("usable_blocks"))
    for mark, expected in case["expect"].items():
        assert got[mark] == expected, (name, mark)
    assert set(got) == set(case["watermarks"]) & set(wm.MARKS)


@pytest.mark.parametrize("release, era, free_only", [
    ("3.10.0-1160.el7.x86_64", wm.ERA_LEGACY, False),
    ("2.6.32-431.el6.x86_64", wm.ERA_LEGACY, False),
    ("4.3.3", wm.ERA_LEGACY, False),
    ("4.4.0-21-generic", wm.ERA_MODERN, False),
    ("4.18.0-80.el8.x86_64", wm.ERA_MODERN, False),
    ("6.11.11", wm.ERA_MODERN, False),
    ("6.12.0", wm.ERA_MODERN, True),
    ("6.18.44-fc", wm.ERA_MODERN, True),
    ("garbage", None, False),
    (None, None, False),
])
def test_release_helpers(release, era, free_only):
    assert wm.era_of_release(release) == era
    assert wm.subtracts_free_highatomic(release) is free_only


def test_era_of_migrate_types():
    assert wm.era_of_migrate_types(["Unmovable", "Reclaimable", "Movable", "Reserve", "Isolate"]) == wm.ERA_LEGACY
    assert wm.era_of_migrate_types(["Unmovable", "Movable", "Reclaimable", "HighAtomic"]) == wm.ERA_MODERN
    assert wm.era_of_migrate_types(["Unmovable"]) is None


def test_legacy_verdict_never_better_than_free_blocks():
    """In the old algorithm a pass at order k needs enough pages in blocks >= k, however free memory looks."""
    blocks = [5000, 0, 0, 0, 1]
    pages_free = 5000 + 16
    got = wm.watermark_verdicts(wm.ERA_LEGACY, blocks, pages_free, {"min": 100}, 0)["min"]
    # order 1: 5015 > 100; minus 5000 order-0 pages -> 15 <= 50 -> fail, although an order-4 block is free
    assert got == [True, False, False, False, False]
    assert wm.watermark_verdicts(wm.ERA_MODERN, blocks, pages_free, {"min": 100}, 0)["min"] == [True] * 5
