# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""read_vm_tunables: values by name under a proc root; missing names absent; unreadable warned."""

from __future__ import annotations


import pytest

from ansible_collections.memfrag.linux.plugins.module_utils._procfs.vm_tunables import (
    FRAGMENTATION_TUNABLES,
    parse_tunable,
    read_vm_tunables,
)


@pytest.fixture
def proc(tmp_path):
    vm = tmp_path / "sys" / "vm"
    vm.mkdir(parents=True)
    (vm / "min_free_kbytes").write_text("67584\n")
    (vm / "lowmem_reserve_ratio").write_text("256\t256\t32\t0\t0\n")
    (vm / "vfs_cache_pressure").write_text("-5\n")
    (vm / "odd").write_text("  hello   world \n")
    (vm / "drop_caches").mkdir()  # reading it fails with EISDIR, as a 0200 file fails with EACCES
    return str(tmp_path)


def test_values_and_types(proc):
    values, warnings = read_vm_tunables(proc, ["min_free_kbytes", "lowmem_reserve_ratio", "vfs_cache_pressure", "odd"])
    assert values == {"min_free_kbytes": 67584, "lowmem_reserve_ratio": "256 256 32 0 0",
                      "vfs_cache_pressure": -5, "odd": "hello world"}
    assert warnings == []


def test_missing_names_are_absent_without_warning(proc):
    values, warnings = read_vm_tunables(proc, ["compaction_proactiveness", "min_free_kbytes"])
    assert values == {"min_free_kbytes": 67584}
    assert warnings == []


def test_unreadable_is_absent_with_warning(proc):
    values, warnings = read_vm_tunables(proc, ["drop_caches"])
    assert values == {}
    assert len(warnings) == 1 and "drop_caches" in warnings[0]


@pytest.mark.parametrize("name", ["../etc", "a/b", "", "Min"])
def test_bad_names_raise(proc, name):
    with pytest.raises(ValueError):
        read_vm_tunables(proc, [name])


def test_parse_tunable():
    assert parse_tunable("10\n") == 10
    assert parse_tunable("1 2\n") == "1 2"
    assert parse_tunable("") == ""


def test_live_kernel():
    values, warnings = read_vm_tunables("/proc", FRAGMENTATION_TUNABLES)
    assert isinstance(values["min_free_kbytes"], int) and values["min_free_kbytes"] > 0
    assert isinstance(values["extfrag_threshold"], int)
    assert warnings == []
