# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""gather(): the whole facts shape from fixture trees, corpus files and the live kernel."""

from __future__ import annotations

import errno
import os
import shutil

import pytest

from ansible_collections.memfrag.linux.plugins.module_utils._procfs import files as _procfs
from ansible_collections.memfrag.linux.plugins.module_utils._facts.buddyinfo import gather, resolve_subsets
from ansible_collections.memfrag.linux.plugins.module_utils._procfs.files import ProcFileError

# Keys the diagnose role reads: keep them stable.
ROLE_ZONE_KEYS = ("node", "zone", "free_bytes", "free_bytes_at_or_above_order", "unusable_index",
                  "fragmentation_index", "largest_free_order", "watermark_ok", "watermarks", "managed_pages")


def _tree(fixtures_dir, name):
    return os.path.join(fixtures_dir, "proc", name)


def test_x86_el8_tree(fixtures_dir):
    facts, warnings = gather(_tree(fixtures_dir, "buddyinfo-x86-3zone-el8"))
    assert warnings == []
    assert facts["sources"] == {"buddyinfo": "ok", "pagetypeinfo": "ok", "zoneinfo": "ok", "vmstat": "ok", "sys/vm": "ok"}
    assert facts["page_size"] == 4096
    assert facts["page_size_source"].startswith("meminfo")
    assert facts["orders"] == 11
    assert facts["kernel_release"] == "4.18.0-80.el8.x86_64"
    assert (facts["pageblock_order"], facts["pages_per_block"]) == (9, 512)
    assert [z["zone"] for z in facts["zones"]] == ["DMA", "DMA32", "Normal"]
    normal = facts["zones"][2]
    for key in ROLE_ZONE_KEYS:
        assert key in normal
    # by hand: 120345 + 2210*2 + 571*4 + 302*8 + 143*16 + 14*32 + 7*64 + 4*128 + 3*256 + 2*512
    assert normal["free_pages"] == 120345 + 4420 + 2284 + 2416 + 2288 + 448 + 448 + 512 + 768 + 1024 == 134953
    assert normal["free_bytes"] == 134953 * 4096
    assert normal["pages_free"] == 134953
    assert normal["largest_free_order"] == 9
    assert normal["largest_free_block_bytes"] == 512 * 4096
    assert normal["free_bytes_at_or_above_order"][9] == 2 * 512 * 4096
    assert normal["free_bytes_at_or_above_order"][10] == 0
    assert normal["fragmentation_index"][9] == -1.0
    # order 10: total blocks 120345+2210+571+302+143+14+7+4+3+2 = 123601
    # 1000 - (1000 + 134953000 // 1024) // 123601 = 1000 - (1000 + 131790) // 123601 = 1000 - 1 = 999
    assert normal["fragmentation_index"][10] == 0.999
    assert normal["unusable_index"][10] == 1.0
    # The zoneinfo is an 8 GiB x86 guest worked out by hand with 4.18's rules (mm/page_alloc.c):
    # min_free_kbytes 45056 -> 11264 pages, shared by managed pages (3976 + 765915 + 1271246 = 2041137,
    # meminfo MemTotal 8164548 kB): Normal min = 11264 * 1271246 // 2041137 = 7015; the low/high step is
    # max(min >> 2, managed * watermark_scale_factor 10 // 10000) = max(1753, 1271) = 1753.
    assert normal["watermarks"] == {"min": 7015, "low": 7015 + 1753, "high": 7015 + 2 * 1753}
    assert (normal["managed_pages"], normal["present_pages"], normal["spanned_pages"]) == (1271246, 1310720, 1310720)
    assert normal["protection"] == [0, 0, 0, 0, 0]
    assert normal["migrate_types"]["Movable"][0] == 100000
    assert normal["migrate_types_capped"] == {"Movable": [0]}
    assert normal["pageblocks"]["HighAtomic"] == 1
    # 4.4+ check: 134953 - (2**k - 1) - 512 (one HighAtomic pageblock) > 7015 for all k; no block at order 10
    assert normal["watermark_ok"] == [True] * 10 + [False]
    check = normal["watermark_check"]
    assert (check["algorithm"], check["algorithm_from"], check["class_zone"]) == ("4.4+", "kernel release", "Normal")
    assert (check["highatomic_pages"], check["lowmem_reserve_pages"]) == (512, 0)
    dma, dma32 = facts["zones"][0], facts["zones"][1]
    # by hand: DMA 2 + 4 + 8 + 16 + 32 + 64 + 256 + 512 + 3*1024; DMA32 182 + 59*2 + 61*4 + 55*8 + 29*16 + 15*32
    # + 11*64 + 12*128 + 7*256 + 6*512 + 109*1024
    assert dma["free_pages"] == 3966 and dma32["free_pages"] == 120648
    # lowmem_reserve_ratio 256 256 32: DMA keeps (765915 + 1271246) // 256 = 7957 pages from Normal-class
    # requests, DMA32 keeps 1271246 // 256 = 4965; DMA min 11264 * 3976 // 2041137 = 21, DMA32 min 4226.
    assert dma["watermark_ok"] == [False] * 11          # 3966 <= 21 + 7957 (Normal-class reserve)
    assert dma["watermark_check"]["lowmem_reserve_pages"] == 7957
    assert dma32["watermark_ok"] == [True] * 11         # 120648 > 4226 + 4965 and order-10 blocks exist
    assert dma32["protection"] == [0, 0, 4965, 4965, 4965]
    assert facts["nodes"] == [{"node": 0, "zones": ["DMA", "DMA32", "Normal"],
                               "free_bytes": (3966 + 120648 + 134953) * 4096, "largest_free_order": 10,
                               "watermark_ok": [True] * 11}]
    assert facts["vmstat"]["compact_stall"] == 21
    assert facts["vmstat"]["allocstall_normal"] == 17
    assert "pgpgin" not in facts["vmstat"]
    assert facts["tunables"]["min_free_kbytes"] == 45056
    assert facts["tunables"]["lowmem_reserve_ratio"] == "256 256 32 0 0"
    assert "compaction_proactiveness" not in facts["tunables"]   # 4.18 has none


def test_legacy_fragmented_tree(fixtures_dir):
    facts, warnings = gather(_tree(fixtures_dir, "buddyinfo-rhel7-legacy-fragmented"), page_size=4096)
    assert warnings == []
    assert facts["kernel_release"] is None
    assert facts["page_size_source"] == "option"
    normal = facts["zones"][2]
    check = normal["watermark_check"]
    assert (check["algorithm"], check["algorithm_from"]) == ("2.6-4.3", "pagetypeinfo migrate types")
    # order 3 fails although 80 order-3 blocks are free (see cases/watermark.yml for the arithmetic)
    assert normal["free_blocks"][3] == 80
    assert normal["watermark_ok"][:4] == [True, True, True, False]
    assert normal["watermark_ok_by_mark"]["high"][:3] == [True, True, False]
    assert check["highatomic_pages"] == 0
    assert facts["tunables"] == {"min_free_kbytes": 11456, "extfrag_threshold": 500, "vfs_cache_pressure": 100,
                                 "swappiness": 60, "overcommit_memory": 0, "zone_reclaim_mode": 0,
                                 "lowmem_reserve_ratio": "256 256 32"}
    assert facts["vmstat"]["allocstall"] == 8563


def test_arm64_tree_infers_64k_pages(fixtures_dir):
    facts, warnings = gather(_tree(fixtures_dir, "buddyinfo-arm64-64k-14orders"))
    assert facts["page_size"] == 65536
    assert facts["orders"] == 14
    normal = facts["zones"][1]
    assert normal["free_pages"] == 956662
    assert normal["free_bytes"] == 956662 * 65536
    assert normal["largest_free_block_bytes"] == 512 * 1024 * 1024
    assert len(normal["unusable_index"]) == len(normal["watermark_ok"]) == 14
    assert normal["watermark_check"]["per_order_lists"] == "all (buddyinfo)"
    assert normal["watermark_check"]["algorithm_from"] == "zoneinfo layout"
    assert "migrate_types" not in normal
    assert facts["sources"]["pagetypeinfo"] == "missing"
    assert facts["sources"]["vmstat"] == "missing"
    assert facts["pageblock_order"] is None
    assert len(warnings) == 3
    assert any(w.endswith("pagetypeinfo: does not exist; facts from it are left out") for w in warnings)


def test_page_size_option_wins(fixtures_dir):
    facts, _unused = gather(_tree(fixtures_dir, "buddyinfo-arm64-64k-14orders"), page_size=4096)
    assert facts["page_size"] == 4096
    assert facts["zones"][1]["free_bytes"] == 956662 * 4096


def test_buddyinfo_only_tree(fixtures_dir):
    facts, warnings = gather(_tree(fixtures_dir, "buddyinfo-only"))
    assert facts["sources"] == {"buddyinfo": "ok", "pagetypeinfo": "missing", "zoneinfo": "missing",
                                "vmstat": "missing", "sys/vm": "missing"}
    assert len(warnings) == 4
    zone = facts["zones"][2]
    assert "watermark_ok" not in zone and "watermarks" not in zone
    assert zone["free_pages"] == 32139
    assert facts["vmstat"] == {} and facts["tunables"] == {}
    assert "watermark_ok" not in facts["nodes"][0]


def test_truncated_buddyinfo_fails_naming_the_line(fixtures_dir):
    root = _tree(fixtures_dir, "buddyinfo-truncated")
    with pytest.raises(ProcFileError) as info:
        gather(root)
    assert str(info.value).startswith(os.path.join(root, "buddyinfo") + " line 3: ")


def test_missing_buddyinfo_fails(tmp_path):
    with pytest.raises(ProcFileError) as info:
        gather(str(tmp_path))
    assert info.value.missing
    assert "buddyinfo" in str(info.value)


def test_malformed_optional_file_is_a_warning(fixtures_dir, tmp_path):
    root = str(tmp_path / "proc")
    shutil.copytree(_tree(fixtures_dir, "buddyinfo-x86-3zone-el8"), root)
    with open(os.path.join(root, "zoneinfo"), "w") as handle:
        handle.write("Node 0, zone   Normal\n  pages free     1234\n        min      5\n")
    with open(os.path.join(root, "pagetypeinfo"), "a") as handle:
        handle.write("rubbish\n")
    facts, warnings = gather(root)
    assert facts["sources"]["zoneinfo"].startswith("malformed: ")
    assert "no 'low' watermark" in facts["sources"]["zoneinfo"]
    assert facts["sources"]["pagetypeinfo"].startswith("malformed: ")
    assert "line 25" in facts["sources"]["pagetypeinfo"]
    assert len(warnings) == 2
    assert "watermark_ok" not in facts["zones"][0]
    assert facts["zones"][2]["free_pages"] == 134953


def test_unreadable_pagetypeinfo_is_a_warning(fixtures_dir, monkeypatch):
    real_read_bytes = _procfs.read_bytes

    def denied(root, relative, limit=_procfs.MAX_PROC_FILE_BYTES):
        if relative == "pagetypeinfo":
            exc = PermissionError(errno.EACCES, "Permission denied")
            raise ProcFileError(os.path.join(root, relative),
                                "permission denied (this file is root-only on newer kernels)") from exc
        return real_read_bytes(root, relative, limit)

    monkeypatch.setattr(_procfs, "read_bytes", denied)
    facts, warnings = gather(_tree(fixtures_dir, "buddyinfo-x86-3zone-el8"))
    assert facts["sources"]["pagetypeinfo"] == "unreadable: permission denied (this file is root-only on newer kernels)"
    assert len(warnings) == 1 and "pagetypeinfo" in warnings[0]
    normal = facts["zones"][2]
    assert "migrate_types" not in normal
    assert normal["watermark_check"]["per_order_lists"] == "all (buddyinfo)"
    assert normal["watermark_check"]["highatomic_from"] == "none"
    assert normal["watermark_ok"] == [True] * 10 + [False]


@pytest.mark.parametrize("subsets, expected", [
    (["all"], ["pagetypeinfo", "zoneinfo", "vmstat", "sysctl"]),
    (["zoneinfo"], ["zoneinfo"]),
    (["buddyinfo"], []),
    (["all", "!pagetypeinfo"], ["zoneinfo", "vmstat", "sysctl"]),
    (["!vmstat"], ["pagetypeinfo", "zoneinfo", "sysctl"]),
    (["!all"], []),
])
def test_resolve_subsets(subsets, expected):
    assert resolve_subsets(subsets) == expected


@pytest.mark.parametrize("subsets", [["bogus"], ["!buddyinfo"]])
def test_resolve_subsets_rejects(subsets):
    with pytest.raises(ValueError):
        resolve_subsets(subsets)


def test_subset_skips_files(fixtures_dir):
    facts, warnings = gather(_tree(fixtures_dir, "buddyinfo-x86-3zone-el8"), subsets=["zoneinfo"])
    assert facts["sources"] == {"buddyinfo": "ok", "zoneinfo": "ok", "pagetypeinfo": "skipped", "vmstat": "skipped",
                                "sys/vm": "skipped"}
    assert facts["vmstat"] == {} and facts["tunables"] == {}
    assert "watermark_ok" in facts["zones"][2]


def test_corpus_sosreport_as_tree(corpus, tmp_path):
    """A tree assembled from one real sosreport (4.18 RHEL 8): everything parses and adds up."""
    name = "rhel8.0-4.18.0-80-sosreport.txt"
    root = tmp_path / "proc"
    root.mkdir()
    for kind in ("buddyinfo", "pagetypeinfo", "zoneinfo", "vmstat", "meminfo"):
        shutil.copy(os.path.join(corpus, kind, name), str(root / kind))
    facts, warnings = gather(str(root))
    assert warnings[-1].endswith("sys/vm: does not exist; vm tunables are left out")
    assert facts["page_size"] == 4096 and facts["page_size_source"].startswith("meminfo")
    normal = facts["zones"][2]
    # 356 + 154*2 + 571*4 + 302*8 + 143*16 + 14*32 + 7*64 + 4*128 + 3*256 + 2*512
    assert normal["free_pages"] == 356 + 308 + 2284 + 2416 + 2288 + 448 + 448 + 512 + 768 + 1024 == 10852
    assert normal["pages_free"] == 10852
    assert normal["watermark_check"]["algorithm_from"] == "pagetypeinfo migrate types"
    # 10852 - 0 - 0 <= 8684 + 0? no: order 0 passes; order 9 blocks exist, order 10 none
    assert normal["watermark_ok"][0] is True
    assert normal["watermark_ok"][10] is False
    assert facts["vmstat"]["compact_stall"] == 0


def test_live_kernel():
    facts, _unused = gather("/proc")
    assert facts["page_size"] == os.sysconf("SC_PAGE_SIZE")
    assert facts["page_size_source"] == "host"
    assert facts["sources"]["buddyinfo"] == "ok"
    for zone in facts["zones"]:
        # consistency, not absolute numbers: the live files change between reads
        assert zone["free_pages"] == sum(count << order for order, count in enumerate(zone["free_blocks"]))
        assert zone["free_bytes"] == zone["free_pages"] * facts["page_size"]
        assert zone["free_bytes_at_or_above_order"][0] == zone["free_bytes"]
        assert len(zone["unusable_index"]) == facts["orders"]
        if "watermarks" in zone:
            assert zone["watermarks"]["min"] <= zone["watermarks"]["low"] <= zone["watermarks"]["high"]
            assert len(zone["watermark_ok"]) == facts["orders"]
    assert isinstance(facts["tunables"]["min_free_kbytes"], int)


def test_every_corpus_buddyinfo_as_a_tree(corpus, tmp_path):
    """Each real capture, dropped into an otherwise empty proc tree, gives facts for every zone."""
    directory = os.path.join(corpus, "buddyinfo")
    for name in sorted(os.listdir(directory)):
        root = tmp_path / name
        root.mkdir()
        shutil.copy(os.path.join(directory, name), str(root / "buddyinfo"))
        facts, warnings = gather(str(root), page_size=4096)
        assert len(warnings) >= 4  # the four optional sources are missing
        assert facts["orders"] in (11, 14)
        for zone in facts["zones"]:
            assert len(zone["free_blocks"]) == facts["orders"]
            assert zone["free_bytes"] == zone["free_pages"] * 4096
            assert zone["free_bytes_at_or_above_order"][0] == zone["free_bytes"]
            assert -1 <= zone["largest_free_order"] < facts["orders"]


def test_14_orders_alone_warn_which_page_sizes_fit(fixtures_dir, tmp_path, monkeypatch):
    """A 64 KiB-page arm64 buddyinfo with nothing beside it, read on a 4 KiB host: say so, and what fits."""
    root = tmp_path / "proc"
    root.mkdir()
    shutil.copy(os.path.join(_tree(fixtures_dir, "buddyinfo-arm64-64k-14orders"), "buddyinfo"), str(root / "buddyinfo"))
    monkeypatch.setattr("ansible_collections.memfrag.linux.plugins.module_utils._facts.buddyinfo.page_size_of_host",
                        lambda: 4096)
    facts, warnings = gather(str(root))
    assert (facts["orders"], facts["page_size"], facts["page_size_source"]) == (14, 4096, "host")
    found = [w for w in warnings if "buddyinfo has" in w]
    assert len(found) == 1
    assert "buddyinfo has 14 orders, which no default kernel with 4 KiB pages has" in found[0]
    assert "14 orders fit 64 KiB (arm64 with 64 KiB pages)" in found[0] and "set page_size" in found[0]
    # The option, an inferable capture, or a count that fits 4 KiB pages: no such warning.
    for kwargs in ({"page_size": 65536}, {"page_size": 4096}):
        assert not [w for w in gather(str(root), **kwargs)[1] if "buddyinfo has" in w]
    assert not [w for w in gather(_tree(fixtures_dir, "buddyinfo-arm64-64k-14orders"))[1] if "buddyinfo has" in w]
    assert not [w for w in gather(_tree(fixtures_dir, "buddyinfo-only"))[1] if "buddyinfo has" in w]


@pytest.mark.parametrize("orders,page_size,fits", [
    (11, 4096, None), (13, 4096, None), (14, 65536, None), (9, 65536, None), (12, 16384, None),
    (14, 4096, "64 KiB (arm64"), (12, 4096, "16 KiB (arm64"), (11, 65536, "4 KiB (x86"),
    (9, 4096, "64 KiB (ppc64"), (7, 4096, "no default configuration has 7 orders"),
])
def test_orders_page_size_problem(orders, page_size, fits):
    problem = _procfs.orders_page_size_problem(orders, page_size)
    if fits is None:
        assert problem is None
    else:
        assert fits in problem
