# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fragmentation arithmetic over one zone's free block counts.

Every function takes ``free_blocks``: ``free_blocks[order]`` is the number of free blocks of
``2**order`` pages, as /proc/buddyinfo prints them for one (node, zone). Nothing here assumes a
number of orders.

The two indexes follow mm/vmstat.c (2.6.35 and later) to the integer:

* ``fill_contig_page_info(zone, order)`` sums, over every order ``o``:
  ``free_blocks_total += nr_free[o]``, ``free_pages += nr_free[o] << o`` and, for ``o >= order``,
  ``free_blocks_suitable += nr_free[o] << (o - order)``.
* ``unusable_free_index``: 1000 when ``free_pages == 0``, else
  ``(free_pages - (free_blocks_suitable << order)) * 1000 // free_pages``.
* ``__fragmentation_index``: 0 when ``free_blocks_total == 0``; -1000 when any suitable block
  exists ("the allocation would succeed"); else
  ``1000 - (1000 + free_pages * 1000 // 2**order) // free_blocks_total``. The kernel's unsigned
  arithmetic is reproduced with floor division on non-negative numbers, so the result is the
  value the kernel prints in /sys/kernel/debug/extfrag/extfrag_index (which can be below 0 for
  tiny counts, exactly as in the kernel).

The public ``*_indexes`` functions return the kernel's value divided by 1000 (a float, three
decimals exact), one per order, which is what /sys/kernel/debug/extfrag prints.
"""


import typing as t


def contig_page_info(free_blocks: t.Sequence[int], order: int) -> t.Tuple[int, int, int]:
    """``(free_pages, free_blocks_total, free_blocks_suitable)`` for an allocation of ``order``."""
    free_pages = 0
    total = 0
    suitable = 0
    for block_order, blocks in enumerate(free_blocks):
        total += blocks
        free_pages += blocks << block_order
        if block_order >= order:
            suitable += blocks << (block_order - order)
    return free_pages, total, suitable


def unusable_free_index(free_blocks: t.Sequence[int], order: int) -> int:
    """The kernel's unusable_free_index(): 0..1000, share of free memory unusable for ``order``."""
    free_pages, _total, suitable = contig_page_info(free_blocks, order)
    if free_pages == 0:
        return 1000
    return (free_pages - (suitable << order)) * 1000 // free_pages


def fragmentation_index(free_blocks: t.Sequence[int], order: int) -> int:
    """The kernel's __fragmentation_index(): -1000 (would succeed), else towards 0 (no memory) or 1000 (fragmented)."""
    free_pages, total, suitable = contig_page_info(free_blocks, order)
    if not total:
        return 0
    if suitable:
        return -1000
    return 1000 - (1000 + free_pages * 1000 // (1 << order)) // total


def suitable_blocks_by_order(free_blocks: t.Sequence[int]) -> t.List[int]:
    """``result[order]``: free_blocks_suitable of contig_page_info for every order, in one pass.

    A block of order ``o`` holds ``2**(o - order)`` blocks of ``order``, so
    ``suitable[order] = free_blocks[order] + 2 * suitable[order + 1]``: linear in the number of
    orders, where calling contig_page_info per order is quadratic.
    """
    result = [0] * len(free_blocks)
    running = 0
    for order in range(len(free_blocks) - 1, -1, -1):
        running = free_blocks[order] + (running << 1)
        result[order] = running
    return result


def unusable_indexes(free_blocks: t.Sequence[int]) -> t.List[float]:
    """unusable_free_index / 1000 for every order of the zone."""
    pages = free_pages(free_blocks)
    if pages == 0:
        return [1.0] * len(free_blocks)
    return [((pages - (suitable << order)) * 1000 // pages) / 1000.0
            for order, suitable in enumerate(suitable_blocks_by_order(free_blocks))]


def fragmentation_indexes(free_blocks: t.Sequence[int]) -> t.List[float]:
    """__fragmentation_index / 1000 for every order of the zone (-1.0: a block of that order is free)."""
    pages = free_pages(free_blocks)
    total = sum(free_blocks)
    result = []  # type: t.List[float]
    for order, suitable in enumerate(suitable_blocks_by_order(free_blocks)):
        if not total:
            index = 0
        elif suitable:
            index = -1000
        else:
            index = 1000 - (1000 + pages * 1000 // (1 << order)) // total
        result.append(index / 1000.0)
    return result


def free_pages(free_blocks: t.Sequence[int]) -> int:
    """Free base pages: the sum of ``blocks << order``."""
    return sum(blocks << order for order, blocks in enumerate(free_blocks))


def largest_free_order(free_blocks: t.Sequence[int]) -> int:
    """The highest order with at least one free block, or -1 when the zone has none."""
    for order in range(len(free_blocks) - 1, -1, -1):
        if free_blocks[order] > 0:
            return order
    return -1


def largest_free_block_bytes(free_blocks: t.Sequence[int], page_size: int) -> int:
    """Size in bytes of the largest free block, 0 when the zone has none."""
    order = largest_free_order(free_blocks)
    return 0 if order < 0 else page_size << order


def free_pages_at_or_above_order(free_blocks: t.Sequence[int]) -> t.List[int]:
    """``result[order]``: free base pages held in blocks of ``order`` or larger (a suffix sum)."""
    result = [0] * len(free_blocks)
    running = 0
    for order in range(len(free_blocks) - 1, -1, -1):
        running += free_blocks[order] << order
        result[order] = running
    return result


def free_bytes_at_or_above_order(free_blocks: t.Sequence[int], page_size: int) -> t.List[int]:
    """``result[order]``: free bytes in blocks of ``order`` or larger; ``result[0]`` is all free memory."""
    return [pages * page_size for pages in free_pages_at_or_above_order(free_blocks)]
