# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import os

import pytest
import yaml

from ansible_collections.memfrag.linux.plugins.module_utils._reclaim import policy as _reclaim_policy

with open(os.path.join(os.path.dirname(__file__), "cases", "reclaim_policy.yml")) as handle:
    CASES = yaml.safe_load(handle)


def _zones(case):
    return [dict(z, free_bytes_at_or_above_order=[int(float(v)) for v in z["free_bytes_at_or_above_order"]]) for z in case["zones"]]


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_need(case):
    result = _reclaim_policy.need(_zones(case), case["order"], case["target_mb"], case.get("zone_names", ["Normal", "DMA32"]),
                                  case.get("log_scan"), case.get("guard_query_hit", False), case.get("guard_query", ""))
    expect = case["expect"]
    assert result["needed"] is expect["needed"]
    assert [z["zone"] for z in result["short_zones"]] == expect["short"]
    assert result["target_met"] is expect["target_met"]
    assert result["high_order_bytes"] == expect["high_order_bytes"]
    if "reason_contains" in case:
        assert case["reason_contains"] in result["reason"]


def test_sum_by_order_covers_judged_and_small_zones():
    zones = [{"node": 0, "zone": "Normal", "free_bytes": 10, "free_bytes_at_or_above_order": [10, 4, 1]},
             {"node": 0, "zone": "DMA32", "free_bytes": 5 * 2 ** 20, "free_bytes_at_or_above_order": [5 * 2 ** 20, 2 ** 20, 0]},
             {"node": 0, "zone": "DMA", "free_bytes": 99, "free_bytes_at_or_above_order": [99, 99, 99]}]
    result = _reclaim_policy.need(zones, 1, 2, ["Normal", "DMA32"])
    assert result["free_bytes_at_or_above_order"] == [10 + 5 * 2 ** 20, 4 + 2 ** 20, 1]
    assert [z["zone"] for z in result["short_zones"]] == ["DMA32"]


def test_malformed_events_are_ignored():
    assert _reclaim_policy.allocation_events({"events": ["text", None, {"origin": "kmsg"}]}) == []
