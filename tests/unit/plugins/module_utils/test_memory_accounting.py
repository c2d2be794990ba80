# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""_memory_accounting: the split of used memory checked by hand on corpus files; gather() on fixture trees."""

from __future__ import annotations

import os

import pytest
import yaml

from ansible_collections.memfrag.linux.tests.collection_tree import corpus_dir

from ansible_collections.memfrag.linux.plugins.module_utils._facts import meminfo as meminfo_facts
from ansible_collections.memfrag.linux.plugins.module_utils._mm import accounting
from ansible_collections.memfrag.linux.plugins.module_utils._procfs.meminfo import parse_meminfo
from ansible_collections.memfrag.linux.plugins.module_utils._procfs.files import ProcFileError

with open(os.path.join(os.path.dirname(__file__), "cases", "memory_accounting.yml")) as handle:
    CASES = yaml.safe_load(handle)

_CORPUS = corpus_dir()
CORPUS_FILES = sorted(os.listdir(os.path.join(_CORPUS, "meminfo"))) if _CORPUS else []
KIB = 1024


def _bytes(value):
    return None if value is None else value * KIB


def _meminfo(corpus, name):
    with open(os.path.join(corpus, "meminfo", name), encoding="utf-8") as handle:
        return parse_meminfo(handle.read())[0]


def _check(result, case):
    for key, value in case["expect_kib"].items():
        assert result[key] == _bytes(value), key
    for text in case.get("explanation_contains", []):
        assert text in result["explanation"]


@pytest.mark.parametrize("case", CASES["corpus"], ids=[case["file"] for case in CASES["corpus"]])
def test_corpus_accounting_by_hand(corpus, case):
    result = accounting.account(_meminfo(corpus, case["file"]))
    _check(result, case)
    assert result["available_source"] == case["available_source"]


@pytest.mark.parametrize("case", CASES["synthetic"], ids=[case["name"] for case in CASES["synthetic"]])
def test_synthetic_accounting(case):
    meminfo = {key: value if key in case.get("counts", []) else value * KIB for key, value in case["meminfo_kib"].items()}
    _check(accounting.account(meminfo), case)


@pytest.mark.parametrize("name", CORPUS_FILES or ["corpus-absent"])
def test_every_corpus_file_balances(corpus, name):
    """used = explained + unexplained, and the parts never exceed what MemTotal allows, on every file."""
    result = accounting.account(_meminfo(corpus, name))
    assert result["used_bytes"] == result["explained_bytes"] + result["unexplained_bytes"]
    assert result["total_bytes"] == result["free_bytes"] + result["buffers_bytes"] + result["page_cache_bytes"] + result["used_bytes"]
    assert 0 < result["used_bytes"] < result["total_bytes"]
    assert result["explanation"].endswith(".") and "is used" in result["explanation"]


def test_rss_gap_is_the_ps_case():
    # The classic case: 14 GiB used, almost all of it reclaimable slab, ps adds up to 0.6 GiB.
    gib = 1 << 30
    meminfo = {"MemTotal": 16 * gib, "MemFree": gib, "Buffers": 0, "Cached": gib, "Shmem": 0,
               "AnonPages": gib // 2, "SReclaimable": 13 * gib, "SUnreclaim": gib // 4, "Slab": 13 * gib + gib // 4}
    rss = int(0.6 * gib)
    result = accounting.account(meminfo, rss)
    assert result["used_bytes"] == 14 * gib
    assert result["process_rss_bytes"] == rss
    assert result["rss_gap_bytes"] == 14 * gib - rss
    assert result["unexplained_bytes"] == gib // 4
    assert result["explanation"].startswith("14 GiB of 16 GiB is used")
    assert "reclaimable slab 13 GiB" in result["explanation"]
    assert "process RSS adds up to only 614.4 MiB" in result["explanation"]
    # kernel memory named in the sentence: both slab parts, not anon
    assert "13.25 GiB of it is kernel memory" in result["explanation"]


def test_rss_above_used_is_explained_by_sharing():
    meminfo = {"MemTotal": 1000 * KIB, "MemFree": 900 * KIB, "AnonPages": 100 * KIB}
    result = accounting.account(meminfo, 500 * KIB)
    assert result["rss_gap_bytes"] == -400 * KIB
    assert "more than used" in result["explanation"]


def test_gather_slab_heavy_fixture(fixtures_dir):
    root = os.path.join(fixtures_dir, "proc", "meminfo-slab-heavy")
    facts, warnings = meminfo_facts.gather(root, 4096, top=2)
    assert warnings == []
    assert facts["sources"] == {"meminfo": "ok", "slabinfo": "ok", "pid/statm": "ok"}
    slab = facts["slab"]
    assert slab["source"] == "meminfo"
    assert slab["total_bytes"] == 14155776 * KIB
    assert slab["reclaimable_bytes"] == 13631488 * KIB
    assert [cache["name"] for cache in slab["top_caches"]] == ["dentry", "ext4_inode_cache"]
    assert slab["top_caches"][1]["bytes"] == 8738 * 8 * 4096
    # pid 1: 1280 pages from statm; pid 2: kernel thread; pid 315: 51200 kB from status
    assert facts["processes"] == {"count": 3, "rss_bytes": 1280 * 4096 + 51200 * KIB, "without_rss": 1}
    acc = facts["accounting"]
    # 16777216 - 409600 - 20480 - (1048576 - 10240) = 15308800 kB used
    assert acc["used_bytes"] == 15308800 * KIB
    # 563200 + 10240 + 13631488 + 524288 + 0 + 20480 + 12288 + 8192 + (40960 - 12288) = 14798848 kB
    assert acc["explained_bytes"] == 14798848 * KIB
    assert acc["unexplained_bytes"] == 509952 * KIB
    assert acc["rss_gap_bytes"] == 15308800 * KIB - (1280 * 4096 + 51200 * KIB)


def test_gather_old_kernel_fixture_warns_and_still_accounts(fixtures_dir):
    root = os.path.join(fixtures_dir, "proc", "meminfo-2.6-slab-only")
    facts, warnings = meminfo_facts.gather(root, 4096)
    assert facts["sources"] == {"meminfo": "ok", "slabinfo": "missing", "pid/statm": "missing"}
    assert len(warnings) == 2
    assert "slabinfo: does not exist" in warnings[0]
    assert facts["slab"] == {"total_bytes": 603744 * KIB, "reclaimable_bytes": None, "unreclaimable_bytes": None,
                             "top_caches": [], "caches_bytes": None, "source": "meminfo"}
    acc = facts["accounting"]
    # 2074924 - 61320 - 88432 - 1225660 = 699512 kB; Slab 603744 + PageTables 2868 = 606612 kB
    assert acc["used_bytes"] == 699512 * KIB
    assert acc["unexplained_bytes"] == (699512 - 606612) * KIB
    assert acc["available_source"] == "estimate"
    assert acc["process_rss_bytes"] is None


def test_gather_subsets_skip_sources(fixtures_dir):
    root = os.path.join(fixtures_dir, "proc", "meminfo-slab-heavy")
    facts, warnings = meminfo_facts.gather(root, 4096, gather_subset=["meminfo"])
    assert warnings == []
    assert facts["sources"] == {"meminfo": "ok", "slabinfo": "skipped", "pid/statm": "skipped"}
    assert facts["processes"] is None and facts["slab"]["top_caches"] == []


def test_gather_malformed_slabinfo_is_a_warning(tmp_path, fixtures_dir):
    with open(os.path.join(fixtures_dir, "proc", "meminfo-slab-heavy", "meminfo")) as handle:
        (tmp_path / "meminfo").write_text(handle.read())
    (tmp_path / "slabinfo").write_text("slabinfo - version: 2.1\ndentry 1 2\n")
    facts, warnings = meminfo_facts.gather(str(tmp_path), 4096)
    assert facts["sources"]["slabinfo"].startswith("unreadable: %s line 2: " % (tmp_path / "slabinfo"))
    assert any("slab caches not listed" in warning for warning in warnings)


def test_gather_malformed_meminfo_raises(fixtures_dir):
    with pytest.raises(ProcFileError) as info:
        meminfo_facts.gather(os.path.join(fixtures_dir, "proc", "meminfo-malformed"), 4096)
    assert info.value.line_number == 6


def test_gather_live_kernel():
    facts, _warnings = meminfo_facts.gather("/proc", os.sysconf("SC_PAGE_SIZE"))
    acc = facts["accounting"]
    assert acc["used_bytes"] == acc["explained_bytes"] + acc["unexplained_bytes"]
    assert facts["processes"]["count"] > 1 and acc["process_rss_bytes"] == facts["processes"]["rss_bytes"]
    assert facts["slab"]["source"] == "meminfo"


def test_negative_top_is_refused_before_reading():
    with pytest.raises(ValueError) as info:
        meminfo_facts.gather("/nonexistent-proc-root", 4096, top=-1)
    assert str(info.value) == "top_slab_caches must be 0 or more, got -1"


@pytest.mark.parametrize("subset, wanted", [
    (["all"], ["slabinfo", "processes"]), (["meminfo"], []), (["!processes"], ["slabinfo"]),
    (["all", "!slabinfo"], ["processes"]), (["processes"], ["processes"]), (["!all"], []),
])
def test_gather_subset_is_the_setup_grammar(subset, wanted):
    from ansible_collections.memfrag.linux.plugins.module_utils._facts.subsets import resolve_subsets
    assert resolve_subsets(subset, "meminfo", meminfo_facts.OPTIONAL_SUBSETS) == wanted


@pytest.mark.parametrize("subset, message", [(["!meminfo"], "meminfo is always gathered"),
                                             (["zoneinfo"], "unknown gather_subset 'zoneinfo'")])
def test_gather_subset_refusals(subset, message):
    with pytest.raises(ValueError, match=message):
        meminfo_facts.gather("/nonexistent-proc-root", 4096, gather_subset=subset)
