# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Parser for /proc/buddyinfo: every corpus file, the odd captures, and malformed input."""

from __future__ import annotations

import os

import pytest
import yaml
from ansible_collections.memfrag.linux.tests.collection_tree import corpus_params

from ansible_collections.memfrag.linux.plugins.module_utils._procfs.buddyinfo import parse_buddyinfo
from ansible_collections.memfrag.linux.plugins.module_utils._procfs.files import ProcFileError, read_text

HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, "cases", "buddyinfo_corpus.yml")) as handle:
    CORPUS_CASES = yaml.safe_load(handle)


KNOWN_ZONES = {"DMA", "DMA32", "Normal", "HighMem", "Movable", "Device"}


def _parse_corpus(corpus, name):
    return parse_buddyinfo(read_text(os.path.join(corpus, "buddyinfo"), name), name)


def test_every_corpus_file_has_a_case(corpus):
    files = sorted(f for f in os.listdir(os.path.join(corpus, "buddyinfo")) if not f.startswith("."))
    assert files, "corpus/buddyinfo is empty"
    assert sorted(CORPUS_CASES) == files


@pytest.mark.parametrize("name", corpus_params(CORPUS_CASES))
def test_corpus_file(corpus, name):
    expected = CORPUS_CASES[name]
    zones, warnings = _parse_corpus(corpus, name)
    assert ["%d/%s" % (z.node, z.zone) for z in zones] == expected["zones"]
    assert len(warnings) == expected["warnings"], warnings
    for zone in zones:
        assert zone.zone in KNOWN_ZONES
        assert len(zone.free_blocks) == expected["orders"]
        assert all(isinstance(v, int) and v >= 0 for v in zone.free_blocks)
    assert zones[-1].free_blocks == expected["last"]


def test_column_t_seven_digit_counts(corpus):
    zones, _unused = _parse_corpus(corpus, "x86-4node-3TB-column-t-7digit-counts-leo-leung.txt")
    node2 = zones[4]
    assert (node2.node, node2.zone) == (2, "Normal")
    assert node2.free_blocks == [8662816, 6463200, 5923202, 2292623, 299873, 23766, 10924, 5156, 1101, 3, 54266]
    assert zones[0].free_blocks == [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 2]


def test_mail_wrapped_lines_are_joined(corpus):
    zones, warnings = _parse_corpus(corpus, "email-wrapped-2node-fragmented-centos7.6-linux-xfs-2019.txt")
    assert warnings == []
    # "Node 0, zone DMA 0 0 1 0 1 0 0" + "     0      0      1      3"
    assert zones[0].free_blocks == [0, 0, 1, 0, 1, 0, 0, 0, 0, 1, 3]
    assert zones[1].free_blocks == [31577, 88, 2, 0, 0, 0, 0, 0, 0, 0, 0]
    assert zones[2].free_blocks == [33331, 3323, 582, 87, 0, 0, 0, 0, 0, 0, 0]


def test_annotated_paste_uses_last_snapshot(corpus):
    zones, warnings = _parse_corpus(corpus, "x86-3zone-with-shell-prompt-and-annotation-oe5.txt")
    assert zones[1].free_blocks == [383, 281, 117, 81, 88, 21, 3, 2, 1, 4, 50]
    assert zones[2].free_blocks[:2] == [6291, 42324]
    assert [z.line_number for z in zones] == [10, 11, 12]
    assert any("new snapshot" in w for w in warnings)
    assert any("4k      8k" in w for w in warnings)


def test_arm64_annotation_header_skipped(corpus):
    zones, warnings = _parse_corpus(corpus, "arm64-14orders-4node-dma32-with-annotation-header.txt")
    assert zones[0].free_blocks == [105, 17, 6, 5, 4, 2, 1, 2, 1, 2, 2, 2, 2, 0]
    assert all("not kernel output" in w for w in warnings)
    assert "line 1" in warnings[0] and "line 2" in warnings[1]


def test_two_digit_node_ids(corpus):
    zones, _unused = _parse_corpus(corpus, "movable-node10-node11-hotplug-blog.txt")
    assert [z.node for z in zones] == [0, 0, 10, 11]
    assert zones[2].free_blocks == [0] * 10 + [7]


def test_kernel_format_with_trailing_spaces():
    text = ("Node 0, zone      DMA      1      0      1      0      2      1      1      0      1      1      3 \n"
            "Node 0, zone   Normal   4381   1093    185   1530    567    102      4      0      0      0      0 \n")
    zones, warnings = parse_buddyinfo(text)
    assert warnings == []
    assert zones[1].free_blocks == [4381, 1093, 185, 1530, 567, 102, 4, 0, 0, 0, 0]


def test_ppc64_nine_orders():
    zones, _unused = parse_buddyinfo("Node 0, zone   Normal    10     5     3     2     1     0     0     1     7 \n")
    assert len(zones[0].free_blocks) == 9


def test_wide_count_fills_the_field():
    # %6lu is a minimum width: 1234567 pushes the rest of the line right.
    zones, _unused = parse_buddyinfo("Node 0, zone   Normal 1234567 999999      1      0      0      0      0      0      0      0      0 \n")
    assert zones[0].free_blocks[:3] == [1234567, 999999, 1]


# -- malformed input -------------------------------------------------------------------------

def test_empty_file_fails():
    with pytest.raises(ProcFileError) as info:
        parse_buddyinfo("", "/x/proc/buddyinfo")
    assert "/x/proc/buddyinfo" in str(info.value)
    assert "empty or not buddyinfo" in str(info.value)


def test_only_garbage_fails():
    with pytest.raises(ProcFileError) as info:
        parse_buddyinfo("hello\nworld\n")
    assert "no 'Node N, zone NAME' lines" in str(info.value)


def test_truncated_last_line_names_the_line():
    text = ("Node 0, zone      DMA      1      0      1      0      2      1      1      0      1      1      3 \n"
            "Node 0, zone    DMA32    759    572    791    475    194     45     12      0      0      0      0 \n"
            "Node 0, zone   Normal   4381   1093    185   1530")
    with pytest.raises(ProcFileError) as info:
        parse_buddyinfo(text, "/proc/buddyinfo")
    assert info.value.line_number == 3
    assert str(info.value).startswith("/proc/buddyinfo line 3: ")
    assert "truncated" in str(info.value)


def test_non_numeric_count_names_the_line():
    text = ("Node 0, zone      DMA      1      0      1      0      2      1      1      0      1      1      3 \n"
            "Node 0, zone   Normal   4381   10x3    185   1530    567    102      4      0      0      0      0 \n")
    with pytest.raises(ProcFileError) as info:
        parse_buddyinfo(text, "/proc/buddyinfo")
    assert info.value.line_number == 2
    assert "10x3" in str(info.value)


def test_negative_count_is_malformed():
    with pytest.raises(ProcFileError) as info:
        parse_buddyinfo("Node 0, zone   Normal  -1  2  3\n")
    assert info.value.line_number == 1


def test_damaged_node_line_is_an_error_not_a_note():
    text = ("Node 0, zone      DMA      1      0      1\n"
            "Node X, zone   Normal      1      0      1\n")
    with pytest.raises(ProcFileError) as info:
        parse_buddyinfo(text, "/proc/buddyinfo")
    assert info.value.line_number == 2
    assert "malformed zone line" in str(info.value)


def test_zone_without_counts_fails():
    with pytest.raises(ProcFileError) as info:
        parse_buddyinfo("Node 0, zone   Normal\n")
    assert "no free block counts" in str(info.value)
    assert info.value.line_number == 1


def test_continuation_with_too_many_columns_fails():
    text = ("Node 0, zone      DMA      1      0      1      0\n"
            "Node 0, zone   Normal      1      0      1      0\n"
            "     5      5\n")
    with pytest.raises(ProcFileError) as info:
        parse_buddyinfo(text)
    assert info.value.line_number == 2


def test_read_text_missing_file(tmp_path):
    with pytest.raises(ProcFileError) as info:
        read_text(str(tmp_path), "buddyinfo")
    assert info.value.missing
    assert "does not exist" in str(info.value)


def test_read_text_refuses_escape(tmp_path):
    os.symlink("/etc/hostname", str(tmp_path / "buddyinfo"))
    with pytest.raises(ProcFileError) as info:
        read_text(str(tmp_path), "buddyinfo")
    assert "outside" in str(info.value)
    assert not info.value.missing


def test_invalid_utf8_does_not_raise():
    zones, warnings = parse_buddyinfo(b"\xff\xfe junk\nNode 0, zone DMA 1 2 3\n".decode("utf-8", "replace"))
    assert zones[0].free_blocks == [1, 2, 3]
    assert len(warnings) == 1
