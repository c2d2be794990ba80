# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Parser for /proc/zoneinfo: every corpus layout (2.6 to 5.14), the live kernel, malformed input."""

from __future__ import annotations

import os

import pytest
import yaml
from ansible_collections.memfrag.linux.tests.collection_tree import corpus_params

from ansible_collections.memfrag.linux.plugins.module_utils._procfs.files import ProcFileError, read_text
from ansible_collections.memfrag.linux.plugins.module_utils._mm.watermark import ERA_LEGACY, ERA_MODERN, era_of_zoneinfo_layout
from ansible_collections.memfrag.linux.plugins.module_utils._procfs.zoneinfo import parse_zoneinfo, zone_indexes

HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, "cases", "zoneinfo_corpus.yml")) as handle:
    CASES = yaml.safe_load(handle)


def _key(zone):
    return "%d/%s" % (zone.node, zone.zone)


def test_every_corpus_file_has_a_case(corpus):
    assert sorted(os.listdir(os.path.join(corpus, "zoneinfo"))) == sorted(CASES)


@pytest.mark.parametrize("name", corpus_params(CASES))
def test_corpus_file(corpus, name):
    case = CASES[name]
    zones, warnings = parse_zoneinfo(read_text(os.path.join(corpus, "zoneinfo"), name), name)
    assert warnings == []
    assert [_key(z) for z in zones] == case["zones"]
    by_key = dict((_key(z), z) for z in zones)
    for key, expected in case["check"].items():
        zone = by_key[key]
        for field, value in expected.items():
            if field == "pages_free":
                assert zone.pages_free == value
            elif field == "protection":
                assert zone.protection == value
            elif field == "tail":
                for tail_key, tail_value in value.items():
                    assert zone.tail[tail_key] == tail_value
            elif field == "node_stats":
                assert len(zone.node_stats) == value
            elif field.startswith("nr_"):
                assert zone.counters[field] == value
            else:
                assert zone.fields[field] == value, (key, field)
    indexes = zone_indexes(zones)
    assert dict(("%d/%s" % k, v) for k, v in indexes.items()) == case["indexes"]
    era = era_of_zoneinfo_layout(any(z.node_stats for z in zones), set(k for z in zones for k in z.fields),
                                 set(k for z in zones for k in z.tail))
    assert era == {"legacy": ERA_LEGACY, "modern": ERA_MODERN}[case["layout"]]


def test_corpus_pageset_high_is_not_the_watermark(corpus):
    zones, _unused = parse_zoneinfo(read_text(os.path.join(corpus, "zoneinfo"), "node_exporter-fixture.txt"))
    # DMA32 pagesets say "high:  378"; the watermark is "high     2122".
    assert zones[1].fields["high"] == 2122


def test_rhel8_unnamed_counter_line_is_ignored(corpus):
    zones, warnings = parse_zoneinfo(read_text(os.path.join(corpus, "zoneinfo"), "rhel8.0-4.18.0-80-sosreport.txt"))
    assert warnings == []
    assert zones[0].node_stats["nr_written"] == 260861
    assert 537792 not in zones[0].node_stats.values()


def test_live_kernel_zoneinfo():
    if not os.path.exists("/proc/zoneinfo"):
        pytest.skip("no /proc/zoneinfo on this machine")
    zones, warnings = parse_zoneinfo(read_text("/proc", "zoneinfo"))
    assert zones and warnings == []
    for zone in zones:
        assert zone.fields["min"] <= zone.fields["low"] <= zone.fields["high"]
        assert zone.protection is not None
    assert len(zone_indexes(zones)) == len(zones)


def test_pre_4_19_populated_only_with_highmem_gap():
    # A 2.6 ARM kernel printing DMA alone with 4 protection entries: DMA, Normal, HighMem, Movable.
    text = ("Node 0, zone      DMA\n  pages free     10\n        min      1\n        low      2\n"
            "        high     3\n        protection: (0, 0, 0, 0)\n")
    zones, _unused = parse_zoneinfo(text)
    assert zone_indexes(zones) == {(0, "DMA"): 0}


def test_two_nodes_numa():
    text = ("Node 0, zone   Normal\n  pages free     10\n        min      1\n        low      2\n        high     3\n"
            "        protection: (0, 0, 0)\n"
            "Node 1, zone   Normal\n  pages free     20\n        min      4\n        low      5\n        high     6\n"
            "        protection: (0, 0, 0)\n")
    zones, _unused = parse_zoneinfo(text)
    assert [(z.node, z.pages_free, z.fields["low"]) for z in zones] == [(0, 10, 2), (1, 20, 5)]
    # Normal, Movable plus one more configured zone: Normal stays index... the list is DMA-less here.
    assert zone_indexes(zones)[(1, "Normal")] == zone_indexes(zones)[(0, "Normal")]


# -- malformed -------------------------------------------------------------------------------

def test_empty_fails():
    with pytest.raises(ProcFileError) as info:
        parse_zoneinfo("", "/p/zoneinfo")
    assert "/p/zoneinfo" in str(info.value)


def test_text_before_header_fails():
    with pytest.raises(ProcFileError) as info:
        parse_zoneinfo("  pages free 1\nNode 0, zone DMA\n")
    assert info.value.line_number == 1


def test_damaged_header_fails():
    with pytest.raises(ProcFileError) as info:
        parse_zoneinfo("Node 0, zone   Normal\n  pages free     1\n        min 1\n        low 1\n        high 1\nNode 0 zone\n")
    assert info.value.line_number == 6


def test_truncated_zone_without_watermarks_fails():
    with pytest.raises(ProcFileError) as info:
        parse_zoneinfo("Node 0, zone   Normal\n  pages free     1234\n        min      5\n", "/proc/zoneinfo")
    assert "no 'low' watermark" in str(info.value)
    assert info.value.line_number == 1


def test_bad_protection_fails():
    with pytest.raises(ProcFileError) as info:
        parse_zoneinfo("Node 0, zone   Normal\n  pages free 1\n        min 1\n        low 1\n        high 1\n"
                       "        protection: (0, x)\n")
    assert info.value.line_number == 6


def test_unknown_line_is_a_warning():
    zones, warnings = parse_zoneinfo("Node 0, zone   Normal\n  pages free 1\n        min 1\n        low 1\n"
                                     "        high 1\n  ??? garbage\n")
    assert zones[0].fields["high"] == 1
    assert len(warnings) == 1 and "line 6" in warnings[0]
