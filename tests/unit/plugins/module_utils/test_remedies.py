# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Remedies: every warning and critical finding says what to run on which host, with the host's values."""

from __future__ import annotations

import shlex

import pytest

from ansible_collections.memfrag.linux.plugins.module_utils._findings.judge import SEVERITIES, fails, host_findings, verdict
from ansible_collections.memfrag.linux.plugins.module_utils._findings.remedies import remedy
from ansible_collections.memfrag.linux.plugins.module_utils._kernel_log.kinds import KINDS

ZONE_CODES = ("no_high_order_blocks", "high_order_unusable", "high_order_scarce", "watermark_fails_at_order")
CODES = ZONE_CODES + tuple("%s_logged" % kind for kind in KINDS) + ("slab_reclaimable_large", "unexplained_memory")


@pytest.mark.parametrize("code", CODES)
@pytest.mark.parametrize("severity", ["warning", "critical"])
def test_every_warning_and_critical_code_has_a_remedy_naming_the_host(code, severity):
    text = remedy({"severity": severity, "code": code, "numbers": {"order": 3}}, "web-7", {"min_free_kbytes": 67584})
    assert text and "web-7" in text
    if code in ZONE_CODES:
        assert "memfrag.linux.reclaim --limit web-7 -e reclaim_target_order=3" in text
        assert "vm.min_free_kbytes=67584" in text


@pytest.mark.parametrize("severity", ["info", "ok"])
def test_no_remedy_below_warning(severity):
    assert remedy({"severity": severity, "code": "high_order_available"}, "web-7") is None


def test_a_hostile_inventory_name_is_quoted_as_one_shell_word():
    name = "x; rm -rf / #"
    text = remedy({"severity": "critical", "code": "no_high_order_blocks", "numbers": {"order": 4}}, name)
    assert "--limit %s " % shlex.quote(name) in text
    command = text.split("now: ", 1)[1].split(" (compacts", 1)[0]
    assert shlex.split(command)[3] == name


def test_without_a_host_the_remedy_says_host():
    assert "--limit HOST" in remedy({"severity": "critical", "code": "no_high_order_blocks", "numbers": {"order": 4}})


def test_host_findings_attach_remedies_and_the_verdict_prints_them():
    buddyinfo = {"page_size": 4096, "tunables": {"min_free_kbytes": 90112},
                 "zones": [{"node": 0, "zone": "Normal", "free_blocks": [1000, 0, 0, 0, 0], "free_bytes": 4096000,
                            "free_bytes_at_or_above_order": [4096000, 0, 0, 0, 0], "unusable_index": [0, 1, 1, 1, 1],
                            "largest_free_order": 0}]}
    findings = host_findings(buddyinfo, host="db1")
    assert findings[0]["code"] == "no_high_order_blocks" and "--limit db1" in findings[0]["remedy"]
    assert "vm.min_free_kbytes=90112" in findings[0]["remedy"]
    result = verdict(findings)
    assert result["lines"][2] == "  remedy: " + findings[0]["remedy"]
    assert result["remedies"] == [findings[0]["remedy"]]


@pytest.mark.parametrize("severity, fail_on, expected", [
    ("critical", "critical", True), ("warning", "critical", False), ("warning", "warning", True),
    ("critical", "warning", True), ("ok", "warning", False), ("critical", "none", False), ("ok", "none", False),
])
def test_fails(severity, fail_on, expected):
    assert severity in SEVERITIES
    assert fails(severity, fail_on) is expected
