# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""vm.* validation (cases/sysctl_validation.yml) and the /proc/sys read/write helpers."""

from __future__ import annotations

import os

import pytest
import yaml

from ansible_collections.memfrag.linux.plugins.module_utils._procfs.release import parse_release as parse_kernel_release
from ansible_collections.memfrag.linux.plugins.module_utils._sysctl.validation import (
    range_for, read_runtime, runtime_has, validate, write_runtime)

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
    result = validate(case["settings"], parse_kernel_release(case["kernel"]), case["mem_total_kb"], present)
    expect = case["expect"]
    assert result.values == (expect.get("values") or {})
    _assert_messages(result.refused, expect.get("refused") or [])
    _assert_messages(result.forceable, expect.get("forceable") or [])
    _assert_messages(list(result.missing.values()), expect.get("missing") or [])


@pytest.mark.parametrize("text,version", [
    ("6.18.44-fc-v595\n", (6, 18, 44)), ("2.6.32-754.el6.x86_64", (2, 6, 32)), ("5.10", (5, 10, 0)),
    ("garbage", None), ("", None),
])
def test_parse_kernel_release(text, version):
    assert parse_kernel_release(text) == version


def test_unknown_kernel_uses_newest_range():
    assert range_for("vm.watermark_scale_factor", None).maximum == 3000
    assert range_for("vm.watermark_scale_factor", (4, 19, 0)).maximum == 1000
    assert range_for("vm.not_in_table", (6, 1, 0)) is None


def _proc(tmp_path, values):
    vm = tmp_path / "sys" / "vm"
    vm.mkdir(parents=True)
    for name, value in values.items():
        (vm / name).write_text(value)
    return str(tmp_path)


def test_runtime_roundtrip_truncates_and_never_creates(tmp_path):
    proc = _proc(tmp_path, {"min_free_kbytes": "1234567\n", "lowmem_reserve_ratio": "256\t256\t32\n"})
    assert read_runtime(proc, "vm.lowmem_reserve_ratio") == "256 256 32"
    assert write_runtime(proc, "vm.min_free_kbytes", "90112") is None
    assert read_runtime(proc, "vm.min_free_kbytes") == "90112"
    error = write_runtime(proc, "vm.swappiness", "10")
    assert error and "No such file" in error
    assert not os.path.exists(os.path.join(proc, "sys", "vm", "swappiness"))
    assert runtime_has(proc, "vm.min_free_kbytes") and not runtime_has(proc, "vm.swappiness")


def test_runtime_link_out_of_root_is_refused(tmp_path):
    target = tmp_path / "elsewhere"
    target.write_text("1\n")
    proc = tmp_path / "proc"
    (proc / "sys" / "vm").mkdir(parents=True)
    os.symlink(str(target), str(proc / "sys" / "vm" / "swappiness"))
    assert not runtime_has(str(proc), "vm.swappiness")
    error = write_runtime(str(proc), "vm.swappiness", "99")
    assert error and "outside" in error
    assert target.read_text() == "1\n"


@pytest.mark.skipif(not os.access("/proc/sys/vm/compact_memory", os.F_OK), reason="needs a live /proc/sys/vm")
def test_runtime_live_rejection_is_reported():
    # Harmless on a live kernel: -1 is rejected with EINVAL by every kernel with minmax on this file.
    if os.geteuid() != 0:
        pytest.skip("needs root to write /proc/sys")
    before = read_runtime("/proc", "vm.watermark_scale_factor")
    error = write_runtime("/proc", "vm.watermark_scale_factor", "0")
    assert error and "EINVAL" in error
    assert read_runtime("/proc", "vm.watermark_scale_factor") == before
