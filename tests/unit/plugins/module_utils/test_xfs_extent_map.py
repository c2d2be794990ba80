# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Per-era sizes of a file's extent map (module docstring of _xfs/extent_map.py has the sources)."""

from __future__ import annotations

import ctypes

import pytest

from ansible_collections.memfrag.linux.plugins.module_utils._procfs.release import require_release
from ansible_collections.memfrag.linux.plugins.module_utils._xfs import extent_map as em

LIST, TREE = em.ERA_EXTENT_LIST, em.ERA_IEXT_BTREE
# The indirection array entry is a pointer and two 32-bit counts.
IREC = ctypes.sizeof(ctypes.c_void_p) + 8


@pytest.mark.parametrize("release, era", [
    ("2.6.18-419.el5", None),            # one linear array, not modelled
    ("2.6.19", LIST),                    # the indirection array arrived with 2.6.19
    ("2.6.32-754.el6.x86_64", LIST),
    ("3.10.0-1160.el7.x86_64", LIST),
    ("4.14.336", LIST),
    ("4.15.0-213-generic", TREE),         # "xfs: use a b+tree for the in-core extent list"
    ("4.18.0-553.el8_10.x86_64", TREE),   # RHEL 8
    ("6.1.0-50-amd64", TREE),
])
def test_era_by_release(release, era):
    assert em.era_for_release(require_release(release)) == era


@pytest.mark.parametrize("extents, expected", [
    (0, 0), (2, 0),                  # XFS_INLINE_EXTS: inside the inode fork
    (3, 64),                         # direct list rounded up to a power of two: 48 -> 64
    (100, 2048), (256, 4096),        # up to XFS_LINEAR_EXTS records
    (257, 4096),                     # two 4 KiB buffers; the 2-entry array is smaller than a buffer
    (65536, 4096),                   # 256 lists: the array is exactly one page
])
def test_extent_list_small_maps(extents, expected):
    assert em.incore_alloc_bytes(extents, LIST) == expected


def test_extent_list_array_outgrows_a_page():
    assert em.incore_alloc_bytes(65537, LIST) == 257 * IREC
    assert em.incore_alloc_bytes(1048576, LIST) == 4096 * IREC
    assert em.incore_alloc_bytes(1048577, LIST) == 4097 * IREC


def test_the_famous_65552_is_an_order_5_array_of_a_million_extents():
    if IREC != 16:
        pytest.skip("64-bit layout")
    assert em.incore_alloc_bytes(1048577, LIST) == 65552
    assert em.alloc_order(65552, 4096) == 5
    first, last = em.extents_for_irec_size(65552)
    assert (first, last) == (1048577, 1048832)
    # The inverse really is the inverse, at both ends and just outside.
    assert em.incore_alloc_bytes(first, LIST) == em.incore_alloc_bytes(last, LIST) == 65552
    assert em.incore_alloc_bytes(first - 1, LIST) < 65552 < em.incore_alloc_bytes(last + 1, LIST)


@pytest.mark.parametrize("size", [4096, 100, 65550, 0])
def test_sizes_that_are_no_indirection_array(size):
    assert em.extents_for_irec_size(size) is None


@pytest.mark.parametrize("extents, expected", [(0, 0), (1, 16), (14, 224), (15, 256), (1048577, 256), (10 ** 9, 256)])
def test_iext_tree_never_needs_more_than_a_node(extents, expected):
    assert em.incore_alloc_bytes(extents, TREE) == expected
    assert em.alloc_order(em.incore_alloc_bytes(extents, TREE), 4096) == 0


def test_unmodelled_era_gives_none():
    assert em.incore_alloc_bytes(1000, None) is None
    assert em.getbmap_bytes(1000, None) is None
    assert em.alloc_order(None, 4096) is None
    assert em.file_alloc(1000, None, 4096) == {"alloc_bytes": None, "alloc_order": None,
                                               "getbmap_bytes": None, "getbmap_order": None}


@pytest.mark.parametrize("size, page, order", [
    (1, 4096, 0), (4096, 4096, 0), (4097, 4096, 1), (8192, 4096, 1), (8193, 4096, 2), (65552, 65536, 1), (65536, 65536, 0)])
def test_get_order(size, page, order):
    assert em.alloc_order(size, page) == order


def test_getbmap_buffer_per_era():
    # xfs_bmap asks for 2 * (nextents + 1) records: getbmapx (48 bytes) up to 4.14, kgetbmap (32) after.
    assert em.getbmap_bytes(20000, LIST) == 40002 * 48
    assert em.getbmap_bytes(20000, TREE) == 40002 * 32
    assert em.file_alloc(20000, TREE, 4096)["getbmap_order"] == 9  # 1.2 MiB -> 512 pages
