# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""sysctl.d precedence model: cases/sysctl_precedence.yml, plus overlay, override and escape checks."""

from __future__ import annotations

import os

import pytest
import yaml

from ansible_collections.memfrag.linux.plugins.module_utils._sysctl.precedence import (
    _procps_glob_result, analyse, collect, overrides, resolve_in_root, shadow_of, values_equal)

CASES_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cases", "sysctl_precedence.yml")
with open(CASES_FILE) as _handle:
    CASES = yaml.safe_load(_handle)


def build_tree(root, case):
    for path in case.get("dirs") or []:
        os.makedirs(os.path.join(str(root), path.lstrip("/")))
    for path, text in (case.get("files") or {}).items():
        full = os.path.join(str(root), path.lstrip("/"))
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w") as handle:
            handle.write(text)
    for path, target in (case.get("links") or {}).items():
        full = os.path.join(str(root), path.lstrip("/"))
        os.makedirs(os.path.dirname(full), exist_ok=True)
        os.symlink(target, full)
    return str(root)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_precedence_case(tmp_path, case):
    root = build_tree(tmp_path, case)
    boot = collect(root)
    result = analyse(boot, sorted(case["expect"]))
    for key, (sd_file, sd_value, pp_file, pp_value) in case["expect"].items():
        got = result[key]
        assert (got["file"], got["value"]) == (sd_file, sd_value), key
        assert (got["procps"]["file"], got["procps"]["value"]) == (pp_file, pp_value), key
        excluded = (case.get("excluded") or {}).get(key)
        assert got["excluded_by"] == (dict(file=excluded[0], line=excluded[1]) if excluded else None), key
    shadowed = dict((s["path"], s["by"]) for s in boot.shadowed)
    assert shadowed == (case.get("shadowed") or {})
    assert sorted(boot.masked) == sorted(case.get("masked") or [])
    expected_warnings = case.get("warnings") or []
    assert len(boot.warnings) == len(expected_warnings)
    for fragment, warning in zip(expected_warnings, boot.warnings):
        assert fragment in warning


def test_overlay_is_evaluated_before_anything_is_written(tmp_path):
    root = build_tree(tmp_path, {"files": {"/usr/lib/sysctl.d/50-vendor.conf": "vm.swappiness = 30\n"}})
    planned = "vm.swappiness = 10\n"
    boot = collect(root, {"/etc/sysctl.d/60-memfrag.conf": planned})
    assert not os.path.exists(os.path.join(root, "etc/sysctl.d/60-memfrag.conf"))
    entry = analyse(boot, ["vm.swappiness"])["vm.swappiness"]
    assert (entry["file"], entry["value"]) == ("/etc/sysctl.d/60-memfrag.conf", "10")
    files = [a["file"] for a in entry["assignments"]]
    assert files == ["/usr/lib/sysctl.d/50-vendor.conf", "/etc/sysctl.d/60-memfrag.conf"]
    # A planned removal (None) takes the file out of the model.
    boot = collect(root, {"/usr/lib/sysctl.d/50-vendor.conf": None})
    assert analyse(boot, ["vm.swappiness"])["vm.swappiness"]["file"] is None


def test_overrides_name_the_winning_file_and_split_same_value(tmp_path):
    root = build_tree(tmp_path, {"files": {
        "/etc/sysctl.d/60-memfrag.conf": "vm.swappiness = 10\nvm.vfs_cache_pressure = 200\n",
        "/etc/sysctl.d/90-late.conf": "vm.swappiness = 60\nvm.vfs_cache_pressure = 200 # same as ours\n",
    }})
    precedence = analyse(collect(root), ["vm.swappiness", "vm.vfs_cache_pressure"])
    conflicting, redundant = overrides(precedence, "/etc/sysctl.d/60-memfrag.conf",
                                       {"vm.swappiness": "10", "vm.vfs_cache_pressure": "200"})
    assert len(conflicting) == 2 and all("/etc/sysctl.d/90-late.conf line 1" in m for m in conflicting)
    assert all("= 60" in m and "wanted 10" in m for m in conflicting)
    assert len(redundant) == 2 and all("vm.vfs_cache_pressure" in m for m in redundant)


def test_shadowed_dropin_is_reported(tmp_path):
    root = build_tree(tmp_path, {"files": {"/usr/lib/sysctl.d/60-memfrag.conf": "vm.swappiness = 10\n"},
                                 "links": {"/etc/sysctl.d/60-memfrag.conf": "/dev/null"}})
    boot = collect(root)
    assert "masked by /etc/sysctl.d/60-memfrag.conf" in shadow_of(boot, "/usr/lib/sysctl.d/60-memfrag.conf")
    conflicting = overrides(analyse(boot, ["vm.swappiness"]), "/usr/lib/sysctl.d/60-memfrag.conf",
                            {"vm.swappiness": "10"})[0]
    assert conflicting and "would not set vm.swappiness" in conflicting[0]


def test_links_resolve_inside_the_root_and_never_leave_it(tmp_path):
    outside = tmp_path / "outside.conf"
    outside.write_text("vm.swappiness = 99\n")
    root = tmp_path / "root"
    build_tree(root, {"files": {"/etc/site.conf": "vm.swappiness = 30\n"},
                      "links": {"/etc/sysctl.d/70-escape.conf": str(outside),
                                "/etc/sysctl.d/71-up.conf": "../../../../../../../etc/site.conf",
                                "/etc/sysctl.d/72-loop.conf": "72-loop.conf"}})
    boot = collect(str(root))
    # The absolute target is looked up under root, where it does not exist: the link is dangling
    # there, as in the booted image. The climbing relative link stops at root and finds /etc/site.conf.
    entry = analyse(boot, ["vm.swappiness"])["vm.swappiness"]
    assert (entry["file"], entry["value"]) == ("/etc/sysctl.d/71-up.conf", "30")
    assert [a["value"] for a in entry["assignments"]] == ["30"]
    assert resolve_in_root(str(root), "/etc/sysctl.d/72-loop.conf") is None
    assert resolve_in_root(str(root), "/etc/sysctl.d/71-up.conf") == os.path.join(str(root), "etc", "site.conf")


def test_later_exclusion_is_a_conflict_for_systemd_only(tmp_path):
    root = build_tree(tmp_path, {"files": {"/etc/sysctl.d/60-memfrag.conf": "vm.swappiness = 10\n",
                                           "/etc/sysctl.d/90-local.conf": "-vm.swappiness\n"}})
    precedence = analyse(collect(root), ["vm.swappiness"])
    conflicting, redundant = overrides(precedence, "/etc/sysctl.d/60-memfrag.conf", {"vm.swappiness": "10"})
    assert redundant == []
    assert len(conflicting) == 1
    assert "-vm.swappiness in /etc/sysctl.d/90-local.conf line 1" in conflicting[0]
    assert "systemd-sysctl does not set it at boot" in conflicting[0]


def test_fifo_is_never_opened(tmp_path):
    root = build_tree(tmp_path, {"files": {"/etc/sysctl.d/60-memfrag.conf": "vm.swappiness = 10\n"}})
    os.mkfifo(os.path.join(root, "etc", "sysctl.d", "70-fifo.conf"))
    boot = collect(root)
    assert any("70-fifo.conf" in w and "not a regular file" in w for w in boot.warnings)
    assert analyse(boot, ["vm.swappiness"])["vm.swappiness"]["value"] == "10"


@pytest.mark.parametrize("left,right,equal", [
    ("100", "100", True), ("0100", "64", True), ("0x40", "64", True), ("0100", "100", False),
    ("65536 # keep", "65536", True), ("65536#keep", "65536", False), ("256\t256  32", "256 256 32", True),
    ("1 2", "1 2 3", False), ("abc", "abd", False), ("abc", " abc ", True), (None, None, True), ("1", None, False),
    ("-1", "-1", True), ("08", "8", False),
])
def test_values_equal(left, right, equal):
    assert values_equal(left, right) is equal


def test_merged_usr_lib_link_is_read_once(tmp_path):
    root = build_tree(tmp_path, {"files": {"/usr/lib/sysctl.d/50-pid-max.conf": "kernel.pid_max = 4194304\n",
                                           "/usr/lib/sysctl.d/70-vendor.conf": "vm.swappiness = 30\n"},
                                 "links": {"/lib": "usr/lib"}})
    boot = collect(root)
    assert boot.shadowed == [] and boot.warnings == []
    assert [c.path for c in boot.order["systemd"]] == ["/usr/lib/sysctl.d/50-pid-max.conf",
                                                       "/usr/lib/sysctl.d/70-vendor.conf"]
    assert analyse(boot, ["vm.swappiness"])["vm.swappiness"]["value"] == "30"


@pytest.mark.parametrize("path, target, result", [
    ("/proc/sys/vm/swap*", "vm/swappiness", "/proc/sys/vm/swappiness"),
    ("/proc/sys/vm//swap*", "vm/swappiness", "/proc/sys/vm//swappiness"),
    ("/proc/sys//vm/./swap*", "vm/swappiness", "/proc/sys//vm/./swappiness"),
    ("/proc/sys/v?/swappiness", "vm/swappiness", "/proc/sys/vm/swappiness"),
    ("/proc/sys/vm/../vm/swap*", "vm/swappiness", "/proc/sys/vm/../vm/swappiness"),
    ("/proc/sys/vm/swap*/", "vm/swappiness", None),
    ("/proc/sys/vm/dirty_*", "vm/swappiness", None),
    ("/proc/sys/vm*", "vm/swappiness", None),
])
def test_procps_glob_keeps_the_pattern_spelling(path, target, result):
    assert _procps_glob_result(path, target) == result
