# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fragmentation arithmetic, checked against values worked out by hand from real buddyinfo lines.

Each expected number below is written as the arithmetic a person does on paper (free pages are
sum(count * 2**order); the indexes follow mm/vmstat.c with integer division), never by calling
the code under test.
"""

from __future__ import annotations

import os

import pytest

from ansible_collections.memfrag.linux.plugins.module_utils._mm import fragmentation as frag
from ansible_collections.memfrag.linux.plugins.module_utils._procfs.buddyinfo import parse_buddyinfo
from ansible_collections.memfrag.linux.plugins.module_utils._procfs.files import read_text

# node_exporter fixture, Node 0 Normal (x86_64, 4 KiB pages)
NE_NORMAL = [4381, 1093, 185, 1530, 567, 102, 4, 0, 0, 0, 0]
# linux-xfs 2019 mail, Node 0 Normal: nothing at order >= 4 while XFS logged deadlocks
XFS_NORMAL = [33331, 3323, 582, 87, 0, 0, 0, 0, 0, 0, 0]
# HiSilicon D03, arm64 64 KiB pages, 14 orders
D03_NORMAL = [14, 22, 19, 6, 4, 4, 0, 3, 2, 4, 3, 4, 2, 114]
# ChromeOS DMA
CROS_DMA = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 3]


def test_free_pages_by_hand():
    assert frag.free_pages(NE_NORMAL) == 4381 + 1093 * 2 + 185 * 4 + 1530 * 8 + 567 * 16 + 102 * 32 + 4 * 64 == 32139
    assert frag.free_pages(XFS_NORMAL) == 33331 + 3323 * 2 + 582 * 4 + 87 * 8 == 43001
    assert frag.free_pages(D03_NORMAL) == (14 + 22 * 2 + 19 * 4 + 6 * 8 + 4 * 16 + 4 * 32 + 0 * 64 + 3 * 128 + 2 * 256
                                           + 4 * 512 + 3 * 1024 + 4 * 2048 + 2 * 4096 + 114 * 8192) == 956662
    assert frag.free_pages(CROS_DMA) == 256 + 512 + 3 * 1024 == 3840


def test_largest_free_order():
    assert frag.largest_free_order(NE_NORMAL) == 6
    assert frag.largest_free_order(XFS_NORMAL) == 3
    assert frag.largest_free_order(D03_NORMAL) == 13
    assert frag.largest_free_order([0] * 11) == -1
    assert frag.largest_free_order([]) == -1
    assert frag.largest_free_block_bytes(D03_NORMAL, 65536) == 65536 * 8192 == 512 * 1024 * 1024
    assert frag.largest_free_block_bytes(XFS_NORMAL, 4096) == 4096 * 8
    assert frag.largest_free_block_bytes([0] * 11, 4096) == 0


def test_free_bytes_at_or_above_order():
    got = frag.free_bytes_at_or_above_order(NE_NORMAL, 4096)
    assert len(got) == 11
    assert got[0] == 32139 * 4096
    assert got[5] == (102 * 32 + 4 * 64) * 4096 == 14417920
    assert got[6] == 4 * 64 * 4096 == 1048576
    assert got[7:] == [0, 0, 0, 0]
    assert frag.free_bytes_at_or_above_order(XFS_NORMAL, 4096)[3] == 87 * 8 * 4096
    d03 = frag.free_bytes_at_or_above_order(D03_NORMAL, 65536)
    assert d03[13] == 114 * 8192 * 65536
    assert d03[12] == (2 * 4096 + 114 * 8192) * 65536


def test_unusable_index_by_hand():
    # order 4 of NE_NORMAL: suitable = 567 + 102*2 + 4*4 = 787 blocks of 16 pages = 12592 pages
    # (32139 - 12592) * 1000 // 32139 = 19547000 // 32139 = 608
    assert frag.unusable_free_index(NE_NORMAL, 4) == 608
    assert frag.unusable_free_index(NE_NORMAL, 0) == 0
    assert frag.unusable_free_index(NE_NORMAL, 7) == 1000
    # XFS order 3: suitable = 87 -> (43001 - 696) * 1000 // 43001 = 42305000 // 43001 = 983
    assert frag.unusable_free_index(XFS_NORMAL, 3) == 983
    # XFS order 1: suitable = 3323 + 582*2 + 87*4 = 4835 -> (43001 - 9670) * 1000 // 43001 = 775
    assert frag.unusable_free_index(XFS_NORMAL, 1) == 775
    # CROS_DMA order 9: suitable = 1 + 3*2 = 7 -> (3840 - 3584) * 1000 // 3840 = 66 (the kernel printed 0.066)
    assert frag.unusable_free_index(CROS_DMA, 9) == 66
    assert frag.unusable_free_index(CROS_DMA, 10) == 200
    assert frag.unusable_free_index([0] * 11, 3) == 1000


def test_fragmentation_index_by_hand():
    # NE_NORMAL order 7: no suitable block; total blocks = 4381+1093+185+1530+567+102+4 = 7862
    # 1000 - (1000 + 32139000 // 128) // 7862 = 1000 - (1000 + 251085) // 7862 = 1000 - 32 = 968
    assert frag.fragmentation_index(NE_NORMAL, 7) == 968
    assert frag.fragmentation_index(NE_NORMAL, 6) == -1000
    # XFS order 4: total = 33331+3323+582+87 = 37323
    # 1000 - (1000 + 43001000 // 16) // 37323 = 1000 - 2688562 // 37323 = 1000 - 72 = 928
    assert frag.fragmentation_index(XFS_NORMAL, 4) == 928
    # XFS order 10: 1000 - (1000 + 43001000 // 1024) // 37323 = 1000 - (1000 + 41993) // 37323 = 999
    assert frag.fragmentation_index(XFS_NORMAL, 10) == 999
    # No free block at all: 0 ("lack of memory"), at every order.
    assert frag.fragmentation_index([0] * 11, 0) == 0
    # One order-0 block and a request of order 1: 1000 - (1000 + 1000 // 2) // 1 = -500,
    # the value the kernel's unsigned arithmetic also yields.
    assert frag.fragmentation_index([1, 0, 0], 1) == -500


def test_index_lists_are_fractions_per_order():
    unusable = frag.unusable_indexes(XFS_NORMAL)
    fragidx = frag.fragmentation_indexes(XFS_NORMAL)
    assert len(unusable) == len(fragidx) == 11
    assert unusable[0] == 0.0
    assert unusable[1] == 0.775
    assert unusable[3] == 0.983
    assert unusable[4:] == [1.0] * 7
    assert fragidx[:4] == [-1.0] * 4
    assert fragidx[4] == 0.928
    assert all(0 <= v <= 1 for v in fragidx[4:])
    assert len(frag.unusable_indexes(D03_NORMAL)) == 14
    assert frag.fragmentation_indexes(D03_NORMAL) == [-1.0] * 14
    assert frag.unusable_indexes([0] * 11) == [1.0] * 11
    assert frag.fragmentation_indexes([0] * 11) == [0.0] * 11


def test_contig_page_info():
    # order 2 of [4, 3, 2, 1]: free pages 4 + 6 + 8 + 8 = 26, blocks 10, suitable 2 + 1*2 = 4
    assert frag.contig_page_info([4, 3, 2, 1], 2) == (26, 10, 4)


def test_every_corpus_zone_is_consistent(corpus):
    """Invariants that must hold for every zone of every real capture."""
    directory = os.path.join(corpus, "buddyinfo")
    for name in sorted(os.listdir(directory)):
        zones, _unused = parse_buddyinfo(read_text(directory, name), name)
        for zone in zones:
            blocks = zone.free_blocks
            total = frag.free_pages(blocks)
            above = frag.free_pages_at_or_above_order(blocks)
            assert above[0] == total
            assert all(above[i] >= above[i + 1] for i in range(len(above) - 1))
            top = frag.largest_free_order(blocks)
            unusable = frag.unusable_indexes(blocks)
            fragidx = frag.fragmentation_indexes(blocks)
            for order in range(len(blocks)):
                assert 0.0 <= unusable[order] <= 1.0
                if order <= top:
                    assert fragidx[order] == -1.0, (name, zone)
                else:
                    assert fragidx[order] != -1.0
                    assert unusable[order] == 1.0


@pytest.mark.parametrize("order", range(11))
def test_unusable_matches_definition_on_cros_dma(order):
    suitable_pages = sum(CROS_DMA[o] << o for o in range(order, 11))
    assert frag.unusable_free_index(CROS_DMA, order) == (3840 - suitable_pages) * 1000 // 3840
