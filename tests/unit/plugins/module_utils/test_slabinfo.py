# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""_slabinfo: every corpus file parses (SLAB and SLUB); hand-checked sizes; malformed input; unreadable file."""

from __future__ import annotations

import os

import pytest
import yaml

from ansible_collections.memfrag.linux.tests.collection_tree import corpus_dir

from ansible_collections.memfrag.linux.plugins.module_utils._procfs.files import ProcFileError
from ansible_collections.memfrag.linux.plugins.module_utils._procfs.slabinfo import (
    parse_slabinfo, read_slabinfo, top_caches, total_bytes)

with open(os.path.join(os.path.dirname(__file__), "cases", "slabinfo.yml")) as handle:
    CASES = yaml.safe_load(handle)

_CORPUS = corpus_dir()
CORPUS_FILES = sorted(os.listdir(os.path.join(_CORPUS, "slabinfo"))) if _CORPUS else []


def _read(corpus, name):
    with open(os.path.join(corpus, "slabinfo", name), encoding="utf-8") as handle:
        return handle.read()


@pytest.mark.parametrize("name", CORPUS_FILES or ["corpus-absent"])
def test_every_corpus_file_parses(corpus, name):
    text = _read(corpus, name)
    caches, warnings = parse_slabinfo(text, 4096, name)
    assert warnings == []
    rows = [line.split() for line in text.splitlines()[2:] if line.strip()]
    assert [cache.name for cache in caches] == [row[0] for row in rows]
    # Independent sum from the raw columns: num_slabs (third from the end) * pagesperslab (sixth).
    assert total_bytes(caches) == sum(int(row[-2]) * int(row[5]) * 4096 for row in rows)
    for cache in caches:
        assert cache.active_objects <= cache.objects


@pytest.mark.parametrize("case", CASES["corpus"], ids=[case["file"] for case in CASES["corpus"]])
def test_corpus_values_checked_by_hand(corpus, case):
    caches, _warnings = parse_slabinfo(_read(corpus, case["file"]), case["page_size"])
    assert len(caches) == case["caches"]
    by_name = {cache.name: cache for cache in caches}
    for expected in case["check"]:
        assert by_name[expected["name"]].as_fact() == expected
    assert [cache.name for cache in top_caches(caches, 3)] == case["top"]


@pytest.mark.parametrize("case", CASES["wellformed"], ids=[case["name"] for case in CASES["wellformed"]])
def test_wellformed(case):
    caches, warnings = parse_slabinfo(case["text"], 4096, "/x/slabinfo")
    assert [cache.as_fact() for cache in caches] == case["caches"]
    if "warning" in case:
        assert len(warnings) == 1 and case["warning"] in warnings[0]
    else:
        assert warnings == []


@pytest.mark.parametrize("case", CASES["malformed"], ids=[case["name"] for case in CASES["malformed"]])
def test_malformed_names_file_and_line(case):
    with pytest.raises(ProcFileError) as info:
        parse_slabinfo(case["text"], 4096, "/host/proc/slabinfo")
    assert info.value.path == "/host/proc/slabinfo"
    assert info.value.line_number == case["line"]
    assert case["message"] in info.value.message


def test_top_caches_orders_by_bytes_then_name_and_limits():
    text = ("slabinfo - version: 2.1\n"
            "b 1 1 64 64 1 : tunables 0 0 0 : slabdata 1 2 0\n"
            "a 1 1 64 64 1 : tunables 0 0 0 : slabdata 1 2 0\n"
            "c 1 1 64 64 1 : tunables 0 0 0 : slabdata 1 9 0\n")
    caches, _warnings = parse_slabinfo(text, 4096)
    assert [cache.name for cache in top_caches(caches, 2)] == ["c", "a"]
    assert top_caches(caches, 0) == []
    assert len(top_caches(caches, 50)) == 3


def test_page_size_must_be_positive():
    with pytest.raises(ValueError):
        parse_slabinfo("slabinfo - version: 2.1\n", 0)


def test_read_slabinfo_missing(tmp_path):
    with pytest.raises(ProcFileError) as info:
        read_slabinfo(str(tmp_path), 4096)
    assert info.value.missing


def test_read_slabinfo_unreadable_is_an_error_not_missing(tmp_path):
    # Root reads any mode, so a directory stands in for a file that cannot be read.
    (tmp_path / "slabinfo").mkdir()
    with pytest.raises(ProcFileError) as info:
        read_slabinfo(str(tmp_path), 4096)
    assert not info.value.missing
    assert info.value.path == os.path.join(str(tmp_path), "slabinfo")


def test_read_slabinfo_fixture_tree(fixtures_dir):
    caches, warnings = read_slabinfo(os.path.join(fixtures_dir, "proc", "meminfo-slab-heavy"), 4096)
    assert warnings == []
    (dentry,) = [cache for cache in caches if cache.name == "dentry"]
    assert dentry.bytes == 3145728 * 4096  # 3145728 one-page slabs: 12 GiB
    assert top_caches(caches, 1)[0].name == "dentry"


def test_read_slabinfo_live_kernel():
    if not os.access("/proc/slabinfo", os.R_OK):
        pytest.skip("/proc/slabinfo is not readable by this user (root-only)")
    caches, _warnings = read_slabinfo("/proc", os.sysconf("SC_PAGE_SIZE"))
    assert any(cache.name == "dentry" for cache in caches)
    assert total_bytes(caches) > 0
