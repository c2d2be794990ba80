# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import os

import pytest
import yaml

from ansible_collections.memfrag.linux.plugins.module_utils._findings import judge as _findings

with open(os.path.join(os.path.dirname(__file__), "cases", "findings.yml")) as handle:
    CASES = yaml.safe_load(handle)


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_findings(case):
    found = _findings.host_findings(case.get("buddyinfo"), case.get("meminfo"), case.get("log_scan"), case.get("thresholds"))
    assert [(item["severity"], item["code"], item["message"]) for item in found] == [
        (item["severity"], item["code"], item["message"]) for item in case["expect"]]
    assert _findings.verdict(found)["severity"] == case["verdict"]


def test_zone_finding_carries_the_numbers():
    zone = {"node": 3, "zone": "Normal", "free_blocks": [8, 0, 0, 0, 0], "managed_pages": 10 ** 6, "free_bytes": 32768,
            "free_bytes_at_or_above_order": [32768, 0, 0, 0, 0], "unusable_index": [0, 1, 1, 1, 1],
            "fragmentation_index": [-1, 0.9, 0.95, 0.97, 0.98], "largest_free_order": 0}
    (finding,) = _findings.zone_findings({"page_size": 4096, "zones": [zone]})
    assert finding["node"] == 3 and finding["zone"] == "Normal"
    assert finding["numbers"]["fragmentation_index"] == 0.98
    assert finding["numbers"]["free_bytes"] == 32768


def test_verdict_summarises_several_findings():
    found = [{"severity": "critical", "message": "a"}, {"severity": "critical", "message": "b"}, {"severity": "info", "message": "c"}]
    result = _findings.verdict(found)
    assert result == {"severity": "critical", "summary": "a (and 1 more critical findings)",
                      "counts": {"critical": 2, "warning": 0, "info": 1},
                      "lines": ["CRITICAL: a (and 1 more critical findings)", "critical: a", "critical: b", "info: c"],
                      "remedies": []}


def test_verdict_without_findings():
    assert _findings.verdict([]) == {"severity": "ok", "summary": "no memory fragmentation problem found",
                                     "counts": {"critical": 0, "warning": 0, "info": 0},
                                     "lines": ["OK: no memory fragmentation problem found"], "remedies": []}


@pytest.mark.parametrize("thresholds, text", [
    ({"unusable_warning": 1.5}, "unusable_warning is a share of memory between 0 and 1, got 1.5"),
    ({"slab_reclaimable_warning": -0.1}, "slab_reclaimable_warning is a share of memory between 0 and 1, got -0.1"),
    ({"order": -1}, "threshold order must be 0 or more, got -1"),
    ({"min_high_order_free_mb": -64}, "threshold min_high_order_free_mb must be 0 or more"),
    ({"unusable_warning": 0.9, "unusable_critical": 0.8}, "unusable_warning (0.9) is above unusable_critical (0.8)"),
    ({"ordr": 3}, "unknown threshold ordr"),
])
def test_thresholds_out_of_range_are_refused(thresholds, text):
    with pytest.raises(ValueError) as info:
        _findings.host_findings({"page_size": 4096, "zones": []}, None, None, thresholds)
    assert text in str(info.value)


def test_thresholds_unset_keys_keep_the_defaults():
    # memory_facts passes every suboption, None where the user gave nothing.
    unset = dict((key, None) for key in _findings.THRESHOLD_OPTIONS)
    _findings.check_thresholds(unset)
    assert _findings._merged(unset) == _findings.DEFAULT_THRESHOLDS
    assert set(_findings.THRESHOLD_OPTIONS) == set(_findings.DEFAULT_THRESHOLDS)


def test_every_kernel_log_kind_has_a_severity_and_a_description():
    from ansible_collections.memfrag.linux.plugins.module_utils._kernel_log.kinds import DESCRIPTIONS, KINDS
    assert set(_findings.LOG_SEVERITY) == set(KINDS) == set(DESCRIPTIONS)
    assert all(_findings.LOG_SEVERITY[kind] in _findings.SEVERITIES for kind in KINDS)


@pytest.mark.parametrize("mem_free_gib, zone_free_gib, expected", [(22.65, 3, True), (3.5, 3, False), (30, 28, False)])
def test_free_outside_zones_explains_lazy_struct_page_init(mem_free_gib, zone_free_gib, expected):
    gib = 1 << 30
    buddyinfo = {"zones": [{"zone": "Normal", "node": 0, "free_bytes": int(zone_free_gib * gib)}]}
    meminfo = {"meminfo": {"MemFree": int(mem_free_gib * gib)}}
    found = _findings.free_outside_zones(buddyinfo, meminfo)
    assert bool(found) is expected
    if expected:
        assert found[0]["severity"] == "info" and found[0]["code"] == "free_outside_zones"
        assert found[0]["message"].startswith("MemFree says 22.65 GiB free but the zones' free lists (buddyinfo) hold 3 GiB")
