# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import os

import pytest

from ansible_collections.memfrag.linux.plugins.module_utils._procfs.files import ProcFileError
from ansible_collections.memfrag.linux.plugins.module_utils._reclaim import measure

TREE = os.path.join(os.path.dirname(__file__), "..", "..", "..", "fixtures", "reclaim", "fragmented", "proc")


def test_buddy_snapshot_bytes_per_order():
    zones, warnings = measure.buddy_snapshot(TREE, 4096)
    assert warnings == []
    normal = zones[2]
    assert (normal["node"], normal["zone"]) == (0, "Normal")
    # 366684 order-0 + 233 order-1 ... + 8 order-10 blocks of 4 KiB pages
    expected = sum(n * (4096 << o) for o, n in enumerate([366684, 233, 142, 175, 64, 67, 28, 14, 9, 2, 8]))
    assert normal["free_bytes"] == expected
    assert normal["free_bytes_at_or_above_order"][0] == expected
    assert normal["free_bytes_at_or_above_order"][10] == 8 * (4096 << 10)
    assert normal["free_bytes_at_or_above_order"][9] == 8 * (4096 << 10) + 2 * (4096 << 9)


def test_page_size_scales_bytes():
    small = measure.buddy_snapshot(TREE, 4096)[0]
    large = measure.buddy_snapshot(TREE, 65536)[0]
    assert large[1]["free_bytes"] == 16 * small[1]["free_bytes"]


def test_meminfo_snapshot_keeps_only_the_fields_that_matter():
    mem = measure.meminfo_snapshot(TREE)[0]  # the default fields: what drop_caches reports
    assert mem == {"MemFree": 20218240 * 1024, "Cached": 2334940 * 1024, "SReclaimable": 181952 * 1024,
                   "Dirty": 12288 * 1024, "Writeback": 0}


def test_high_order_bytes_past_the_last_order_is_zero():
    zones = measure.buddy_snapshot(TREE, 4096)[0]
    assert measure.high_order_bytes(zones, 11) == 0
    assert measure.high_order_bytes(zones, 10) == (3 + 752 + 8) * (4096 << 10)


def test_summary_line():
    before = measure.buddy_snapshot(TREE, 4096)[0]
    after = [dict(z) for z in before]
    after[2] = dict(after[2], free_bytes_at_or_above_order=[v + 64 * 2 ** 20 for v in after[2]["free_bytes_at_or_above_order"]])
    line = measure.summary("compact_memory", before, after, 0.25, orders=(4, 9),
                           before_mem={"Cached": 100 * 2 ** 20}, after_mem={"Cached": 40 * 2 ** 20})
    assert line.startswith("compact_memory in 0.25s: order>=4 free ")
    assert "(+64 MiB)" in line
    assert "Cached 100 MiB -> 40 MiB" in line


def test_counters_from_vmstat(tmp_path):
    (tmp_path / "vmstat").write_text("nr_free_pages 5\npgmigrate_success 10\npgmigrate_fail 2\ncompact_migrate_scanned 700\n")
    before = measure.counters_snapshot(str(tmp_path))
    assert before == {"pgmigrate_success": 10, "pgmigrate_fail": 2, "compact_migrate_scanned": 700}
    (tmp_path / "vmstat").write_text("pgmigrate_success 15\npgmigrate_fail 2\ncompact_migrate_scanned 900\n")
    delta = measure.counters_delta(before, measure.counters_snapshot(str(tmp_path)))
    assert delta == {"pgmigrate_success": 5, "pgmigrate_fail": 0, "compact_migrate_scanned": 200}
    zones = measure.buddy_snapshot(TREE, 4096)[0]
    assert measure.summary("compact_memory", zones, zones, 0.1, orders=(4,), counters=delta).endswith(
        "5 pages migrated (0 failed; migrate scanner walked 200 pages)")


def test_counters_missing_vmstat_is_none(tmp_path):
    assert measure.counters_snapshot(str(tmp_path)) is None
    assert measure.counters_delta(None, {"pgmigrate_success": 1}) is None


def test_summary_reports_the_orders_asked_for():
    """Issue 15: with a target order of 3 every step reported orders 4 and 9."""
    zones = measure.buddy_snapshot(TREE, 4096)[0]
    line = measure.summary("compact_memory", zones, zones, 0.1, orders=(3,))
    assert "order>=3 free" in line and "order>=4" not in line and "order>=9" not in line


def test_huge_numbers_in_kernel_files_are_a_clean_error(tmp_path):
    """Issue 10: a 5,000-digit Dirty raised ValueError out of the module (and lost the audit line)."""
    (tmp_path / "meminfo").write_text("MemTotal: 1000 kB\nMemFree: 10 kB\nDirty: %s kB\n" % ("9" * 5000))
    with pytest.raises(ProcFileError):
        measure.meminfo_snapshot(str(tmp_path))
    (tmp_path / "buddyinfo").write_text("Node 0, zone   Normal %s 1 1\n" % ("9" * 5000))
    with pytest.raises(ProcFileError):
        measure.buddy_snapshot(str(tmp_path), 4096)
