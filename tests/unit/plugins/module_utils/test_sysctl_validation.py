# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""vm.* validation (cases/sysctl_validation.yml) and the force / skip_missing decision."""

from __future__ import annotations

import os

import pytest
import yaml

from ansible_collections.memfrag.linux.plugins.module_utils._sysctl.validation import (
    decide, range_for, validate)
from ansible_collections.memfrag.linux.plugins.module_utils._procfs.release import parse_release

CASES_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cases", "sysctl_validation.yml")
with open(CASES_FILE) as _handle:
    CASES = yaml.safe_load(_handle)


def _assert_messages(got, wanted):
    assert len(got) == len(wanted), got
    for fragment in wanted:
        assert any(fragment in message for message in got), (fragment, got)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_validation_case(case):
    has = case.get("has")
    present = (lambda key: key in has) if has is not None else (lambda key: True)
    result = validate(case["settings"], parse_release(case["kernel"]), case["mem_total_kb"], present)
    expect = case["expect"]
    assert result.values == (expect.get("values") or {})
    _assert_messages(result.refused, expect.get("refused") or [])
    _assert_messages(result.forceable, expect.get("forceable") or [])
    _assert_messages(list(result.missing.values()), expect.get("missing") or [])


def test_unknown_kernel_uses_newest_range():
    assert range_for("vm.watermark_scale_factor", None).maximum == 3000
    assert range_for("vm.watermark_scale_factor", (4, 19, 0)).maximum == 1000
    assert range_for("vm.not_in_table", (6, 1, 0)) is None


def _checked(forceable=(), missing=None, refused=()):
    result = validate({}, None, None, lambda key: True)
    result.forceable.extend(forceable)
    result.refused.extend(refused)
    result.missing.update(missing or {})
    return result


def test_decide_force_lifts_policy_refusals_into_warnings():
    checked = _checked(forceable=["vm.vfs_cache_pressure = 0 ..."])
    assert decide(checked, False, False) == (["vm.vfs_cache_pressure = 0 ... (force: true applies it anyway)"], [])
    assert decide(checked, True, False) == ([], ["forced: vm.vfs_cache_pressure = 0 ..."])


def test_decide_skip_missing_warns_only_when_the_run_goes_on():
    checked = _checked(missing={"vm.b": "vm.b does not exist", "vm.a": "vm.a does not exist"})
    refusals, warnings = decide(checked, False, False)
    assert refusals == ["vm.a does not exist (skip_missing: true skips it with a warning)",
                        "vm.b does not exist (skip_missing: true skips it with a warning)"] and warnings == []
    assert decide(checked, False, True) == ([], ["skipped: vm.a does not exist", "skipped: vm.b does not exist"])
    checked.refused.append("vm.drop_caches is a one-shot trigger")
    assert decide(checked, True, True) == (["vm.drop_caches is a one-shot trigger"], [])
