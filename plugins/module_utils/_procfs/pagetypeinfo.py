# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Parser for /proc/pagetypeinfo (mm/vmstat.c pagetypeinfo_show).

Layout::

    Page block order: 9
    Pages per block:  512

    Free pages count per migrate type at order       0      1 ...     10
    Node    0, zone    DMA32, type      Movable    169    152 ...    452
    ...
    Number of blocks type     Unmovable      Movable  Reclaimable   HighAtomic      Isolate
    Node 0, zone    DMA32           41          967            6            0            0
    [Number of mixed blocks ... (CONFIG_PAGE_OWNER with page_owner=on): same shape]

Despite its header, a "free pages count" cell is the number of free *blocks* of that order on
that migrate type's list. Since ~5.4 the kernel stops counting a list at 100000 entries and
prints ``>100000``: such a cell is returned as 100000 and listed in ``capped`` (a lower bound).
The file is mode 0400 (root only) on those kernels. Type names are taken from the file, since
their set and order changed (Reserve before 4.4, HighAtomic after; CMA and Isolate by config).
"""


import re
import typing as t

from ansible_collections.memfrag.linux.plugins.module_utils._procfs.files import ProcFileError

PAGETYPEINFO_CAP = 100000

_BLOCK_ORDER = re.compile(r"^\s*Page block order:\s*(\d+)\s*$")
_PER_BLOCK = re.compile(r"^\s*Pages per block:\s*(\d+)\s*$")
_FREE_HEADER = re.compile(r"^\s*Free pages count per migrate type at order\s+([\d\s]+)$")
_FREE_ROW = re.compile(r"^\s*Node\s+(\d+)\s*,\s*zone\s+(\S+)\s*,\s*type\s+(\S+)\s+(.*)$")
_BLOCKS_HEADER = re.compile(r"^\s*Number of (mixed )?blocks type\s+(.*)$|^\s*Number of mixed blocks\s+(.*)$")
_BLOCKS_ROW = re.compile(r"^\s*Node\s+(\d+)\s*,\s*zone\s+(\S+)\s+([\d\s]+)$")
_CELL = re.compile(r"^(>?)(\d+)$")


class PageTypeZone(object):
    """Per (node, zone): free blocks per migrate type per order, capped cells, pageblocks per type."""

    __slots__ = ("node", "zone", "free_blocks", "capped", "pageblocks", "mixed_pageblocks")

    def __init__(self, node: int, zone: str) -> None:
        self.node = node
        self.zone = zone
        self.free_blocks = {}  # type: t.Dict[str, t.List[int]]
        self.capped = {}  # type: t.Dict[str, t.List[int]]
        self.pageblocks = {}  # type: t.Dict[str, int]
        self.mixed_pageblocks = {}  # type: t.Dict[str, int]


class PageTypeInfo(object):
    __slots__ = ("pageblock_order", "pages_per_block", "orders", "zones")

    def __init__(self) -> None:
        self.pageblock_order = None  # type: t.Optional[int]
        self.pages_per_block = None  # type: t.Optional[int]
        self.orders = 0
        self.zones = {}  # type: t.Dict[t.Tuple[int, str], PageTypeZone]

    def zone(self, node: int, name: str) -> PageTypeZone:
        key = (node, name)
        if key not in self.zones:
            self.zones[key] = PageTypeZone(node, name)
        return self.zones[key]


def parse_pagetypeinfo(text: str, path: str = "/proc/pagetypeinfo") -> PageTypeInfo:
    """Parse pagetypeinfo text. Raises ProcFileError naming the line for anything malformed."""
    info = PageTypeInfo()
    block_types = None  # type: t.Optional[t.List[str]]
    mixed = False
    for line_number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        match = _BLOCK_ORDER.match(raw)
        if match:
            info.pageblock_order = int(match.group(1))
            continue
        match = _PER_BLOCK.match(raw)
        if match:
            info.pages_per_block = int(match.group(1))
            continue
        match = _FREE_HEADER.match(raw)
        if match:
            orders = [int(v) for v in match.group(1).split()]
            if orders != list(range(len(orders))):
                raise ProcFileError(path, "order header is not 0, 1, 2, ...: %r" % line[:80], line_number)
            info.orders = len(orders)
            block_types = None
            continue
        match = _FREE_ROW.match(raw)
        if match:
            if not info.orders:
                raise ProcFileError(path, "free block row before the 'Free pages count' header", line_number)
            cells = match.group(4).split()
            if len(cells) != info.orders:
                raise ProcFileError(path, "%d order columns, the header has %d; the file is truncated"
                                    % (len(cells), info.orders), line_number)
            counts = []
            capped = []
            for order, cell in enumerate(cells):
                cell_match = _CELL.match(cell)
                if cell_match is None:
                    raise ProcFileError(path, "free block count %r is not a number" % cell, line_number)
                counts.append(int(cell_match.group(2)))
                if cell_match.group(1):
                    capped.append(order)
            zone = info.zone(int(match.group(1)), match.group(2))
            zone.free_blocks[match.group(3)] = counts
            if capped:
                zone.capped[match.group(3)] = capped
            continue
        match = _BLOCKS_HEADER.match(raw)
        if match:
            mixed = bool(match.group(1)) or match.group(3) is not None
            block_types = (match.group(2) if match.group(2) is not None else match.group(3)).split()
            continue
        match = _BLOCKS_ROW.match(raw)
        if match and block_types is not None:
            counts = [int(v) for v in match.group(3).split()]
            if len(counts) != len(block_types):
                raise ProcFileError(path, "%d pageblock counts, the header names %d types; the file is truncated"
                                    % (len(counts), len(block_types)), line_number)
            zone = info.zone(int(match.group(1)), match.group(2))
            target = zone.mixed_pageblocks if mixed else zone.pageblocks
            target.update(zip(block_types, counts))
            continue
        raise ProcFileError(path, "not pagetypeinfo output: %r" % line[:80], line_number)
    if not info.zones:
        raise ProcFileError(path, "no 'Node N, zone NAME, type T' rows; the file is empty or not pagetypeinfo")
    return info


def free_pages_of_types(zone: PageTypeZone, types: t.Iterable[str]) -> int:
    """Free base pages on the lists of ``types`` (capped cells count as their lower bound)."""
    total = 0
    for name in types:
        for order, blocks in enumerate(zone.free_blocks.get(name, ())):
            total += blocks << order
    return total
