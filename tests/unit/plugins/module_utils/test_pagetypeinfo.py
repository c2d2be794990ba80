# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Parser for /proc/pagetypeinfo: every corpus file, the >100000 cap, malformed input."""

from __future__ import annotations

import os

import pytest
import yaml
from ansible_collections.memfrag.linux.tests.collection_tree import corpus_params

from ansible_collections.memfrag.linux.plugins.module_utils._procfs.pagetypeinfo import (
    PAGETYPEINFO_CAP,
    free_pages_of_types,
    parse_pagetypeinfo,
)
from ansible_collections.memfrag.linux.plugins.module_utils._procfs.files import ProcFileError, read_text
from ansible_collections.memfrag.linux.plugins.module_utils._mm.watermark import era_of_migrate_types

HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, "cases", "pagetypeinfo_corpus.yml")) as handle:
    CASES = yaml.safe_load(handle)


HEADER = ("Page block order: 9\nPages per block:  512\n\n"
          "Free pages count per migrate type at order       0      1      2 \n")


def test_every_corpus_file_has_a_case(corpus):
    assert sorted(os.listdir(os.path.join(corpus, "pagetypeinfo"))) == sorted(CASES)


@pytest.mark.parametrize("name", corpus_params(CASES))
def test_corpus_file(corpus, name):
    case = CASES[name]
    info = parse_pagetypeinfo(read_text(os.path.join(corpus, "pagetypeinfo"), name), name)
    assert info.pageblock_order == case["pageblock_order"]
    assert info.pages_per_block == case["pages_per_block"] == 1 << case["pageblock_order"]
    assert info.orders == case["orders"]
    assert ["%d/%s" % key for key in info.zones] == case["zones"]
    for zone in info.zones.values():
        assert list(zone.free_blocks) == case["types"]
        assert list(zone.pageblocks) == case["types"]
        assert zone.capped == {}
        assert all(len(counts) == info.orders for counts in zone.free_blocks.values())
    for key, rows in case["check"].items():
        node, name_ = key.split("/")
        for mtype, counts in rows.items():
            assert info.zones[(int(node), name_)].free_blocks[mtype] == counts
    for key, blocks in case["pageblocks"].items():
        node, name_ = key.split("/")
        assert info.zones[(int(node), name_)].pageblocks == blocks
    assert era_of_migrate_types(case["types"]) == case["era"]


@pytest.mark.parametrize("scenario", ["buddyinfo-x86-3zone-el8", "buddyinfo-rhel7-legacy-fragmented"])
def test_fixture_rows_add_up_to_buddyinfo(fixtures_dir, scenario):
    """A capture taken in one moment: per order, the migrate type rows sum to the buddyinfo column
    (a capped cell only bounds it from below). Real sosreports read the two files moments apart,
    so this holds for our fixture trees, not for the corpus."""
    from ansible_collections.memfrag.linux.plugins.module_utils._procfs.buddyinfo import parse_buddyinfo
    root = os.path.join(fixtures_dir, "proc", scenario)
    info = parse_pagetypeinfo(read_text(root, "pagetypeinfo"))
    zones, _unused = parse_buddyinfo(read_text(root, "buddyinfo"))
    for zone in zones:
        ptz = info.zones[(zone.node, zone.zone)]
        for order in range(info.orders):
            summed = sum(row[order] for row in ptz.free_blocks.values())
            if any(order in capped for capped in ptz.capped.values()):
                assert summed <= zone.free_blocks[order]
            else:
                assert summed == zone.free_blocks[order], (scenario, zone, order)


def test_capped_cell_is_a_lower_bound():
    text = HEADER + ("Node    0, zone   Normal, type      Movable >100000   2000      3 \n"
                     "Node    0, zone   Normal, type    Unmovable     12 >100000      0 \n")
    info = parse_pagetypeinfo(text)
    zone = info.zones[(0, "Normal")]
    assert zone.free_blocks["Movable"] == [PAGETYPEINFO_CAP, 2000, 3]
    assert zone.capped == {"Movable": [0], "Unmovable": [1]}
    # 100000 + 2000*2 + 3*4 pages at least
    assert free_pages_of_types(zone, ["Movable"]) == 100000 + 4000 + 12


def test_mixed_blocks_section_page_owner():
    text = HEADER + ("Node    0, zone   Normal, type      Movable      1      2      3 \n\n"
                     "Number of blocks type     Unmovable      Movable \n"
                     "Node 0, zone   Normal            4            5 \n\n"
                     "Number of mixed blocks    Unmovable      Movable \n"
                     "Node 0, zone   Normal            1            0 \n")
    zone = parse_pagetypeinfo(text).zones[(0, "Normal")]
    assert zone.pageblocks == {"Unmovable": 4, "Movable": 5}
    assert zone.mixed_pageblocks == {"Unmovable": 1, "Movable": 0}


def test_live_kernel_pagetypeinfo():
    if not os.access("/proc/pagetypeinfo", os.R_OK):
        pytest.skip("/proc/pagetypeinfo is not readable here (root only since ~5.4)")
    info = parse_pagetypeinfo(read_text("/proc", "pagetypeinfo"))
    assert info.orders >= 9
    assert info.pages_per_block == 1 << info.pageblock_order


# -- malformed -------------------------------------------------------------------------------

@pytest.mark.parametrize("text, line, words", [
    ("", None, "empty or not pagetypeinfo"),
    (HEADER + "Node    0, zone   Normal, type      Movable      1      2 \n", 5, "truncated"),
    (HEADER + "Node    0, zone   Normal, type      Movable      1     x2      3 \n", 5, "not a number"),
    ("Node    0, zone   Normal, type      Movable      1      2      3 \n", 1, "before the 'Free pages count' header"),
    (HEADER + "Node    0, zone   Normal, type      Movable      1      2      3 \n"
     "Number of blocks type     Unmovable      Movable \nNode 0, zone   Normal            4 \n", 7, "truncated"),
    (HEADER + "garbage here\n", 5, "not pagetypeinfo output"),
    ("Free pages count per migrate type at order       0      2 \n", 1, "order header"),
])
def test_malformed(text, line, words):
    with pytest.raises(ProcFileError) as info:
        parse_pagetypeinfo(text, "/proc/pagetypeinfo")
    assert info.value.line_number == line
    assert words in str(info.value)
    assert str(info.value).startswith("/proc/pagetypeinfo")
