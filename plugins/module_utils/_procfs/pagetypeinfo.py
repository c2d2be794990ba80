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

from ansible_collections.memfrag.linux.plugins.module_utils._procfs.buddyinfo import MAX_ORDERS
from ansible_collections.memfrag.linux.plugins.module_utils._procfs.files import ProcFileError
from ansible_collections.memfrag.linux.plugins.module_utils._procfs.numbers import NumberError, parse_count, parse_counts

PAGETYPEINFO_CAP = 100000
# MIGRATE_TYPES is at most 7 (Unmovable, Movable, Reclaimable, HighAtomic or Reserve, CMA, Isolate, PCPTYPES era names).
MAX_BLOCK_TYPES = 16

_BLOCK_ORDER = re.compile(r"^\s*Page block order:\s*(\d+)\s*$")
_PER_BLOCK = re.compile(r"^\s*Pages per block:\s*(\d+)\s*$")
# Rows are matched by their fixed prefix and the rest is split: a regex like "\s+([\d\s]+)$" backtracks
# quadratically on a long line that fails at its end.
_FREE_HEADER = re.compile(r"^\s*Free pages count per migrate type at order(\s.*)$")
_FREE_ROW = re.compile(r"^\s*Node\s+(\d+)\s*,\s*zone\s+(\S+)\s*,\s*type\s+(\S+)\s+(.*)$")
_BLOCKS_HEADER = re.compile(r"^\s*Number of (mixed )?blocks type\s+(.*)$|^\s*Number of mixed blocks\s+(.*)$")
_BLOCKS_ROW = re.compile(r"^\s*Node\s+(\d+)\s*,\s*zone\s+(\S+)(\s.*)$")


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
    """The whole file; ``warnings`` name the rows left out for a number the kernel cannot print."""

    __slots__ = ("pageblock_order", "pages_per_block", "orders", "zones", "warnings")

    def __init__(self) -> None:
        self.pageblock_order = None  # type: t.Optional[int]
        self.pages_per_block = None  # type: t.Optional[int]
        self.orders = 0
        self.zones = {}  # type: t.Dict[t.Tuple[int, str], PageTypeZone]
        self.warnings = []  # type: t.List[str]

    def zone(self, node: int, name: str) -> PageTypeZone:
        key = (node, name)
        if key not in self.zones:
            self.zones[key] = PageTypeZone(node, name)
        return self.zones[key]


def _cell(cell: str) -> t.Tuple[int, bool]:
    """A free block count and whether the kernel capped it (``>100000``)."""
    capped = cell.startswith(">")
    return parse_count(cell[1:] if capped else cell, "free block count"), capped


def parse_pagetypeinfo(text: str, path: str = "/proc/pagetypeinfo") -> PageTypeInfo:
    """Parse pagetypeinfo text. Raises ProcFileError naming the line for anything malformed.

    A number the kernel cannot print (past 64 bits, not ASCII digits in a numeric row) leaves that
    line out with a warning in ``warnings``: the file is optional, the rest is still used.
    """
    info = PageTypeInfo()
    block_types = None  # type: t.Optional[t.List[str]]
    mixed = False
    for line_number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        try:
            block_types, mixed = _parse_line(info, raw, line, line_number, path, block_types, mixed)
        except NumberError as exc:
            info.warnings.append("%s line %d: %s; line skipped" % (path, line_number, exc))
    if not info.zones:
        raise ProcFileError(path, "no 'Node N, zone NAME, type T' rows; the file is empty or not pagetypeinfo")
    return info


def _parse_line(info: PageTypeInfo, raw: str, line: str, line_number: int, path: str,
                block_types: t.Optional[t.List[str]], mixed: bool) -> t.Tuple[t.Optional[t.List[str]], bool]:
    """Apply one non-blank line; returns the (block_types, mixed) in force after it."""
    match = _BLOCK_ORDER.match(raw)
    if match:
        info.pageblock_order = parse_count(match.group(1), "page block order")
        return block_types, mixed
    match = _PER_BLOCK.match(raw)
    if match:
        info.pages_per_block = parse_count(match.group(1), "pages per block")
        return block_types, mixed
    match = _FREE_HEADER.match(raw)
    if match:
        fields = match.group(1).split(None, MAX_ORDERS)
        if len(fields) > MAX_ORDERS:
            raise ProcFileError(path, "more than %d orders in the header; no kernel has that many" % MAX_ORDERS, line_number)
        if fields != [str(order) for order in range(len(fields))] or not fields:
            raise ProcFileError(path, "order header is not 0, 1, 2, ...: %r" % line[:80], line_number)
        info.orders = len(fields)
        return None, mixed
    match = _FREE_ROW.match(raw)
    if match:
        if not info.orders:
            raise ProcFileError(path, "free block row before the 'Free pages count' header", line_number)
        cells = match.group(4).split(None, info.orders)
        if len(cells) != info.orders:
            raise ProcFileError(path, "%s order columns, the header has %d; the file is truncated"
                                % (len(cells) if len(cells) <= info.orders else "more", info.orders), line_number)
        counts = []
        capped = []
        for order, cell in enumerate(cells):
            if not cell.lstrip(">").isdigit():
                raise ProcFileError(path, "free block count %r is not a number" % cell[:40], line_number)
            count, was_capped = _cell(cell)
            counts.append(count)
            if was_capped:
                capped.append(order)
        zone = info.zone(parse_count(match.group(1), "node id"), match.group(2))
        zone.free_blocks[match.group(3)] = counts
        if capped:
            zone.capped[match.group(3)] = capped
        return block_types, mixed
    match = _BLOCKS_HEADER.match(raw)
    if match:
        names = (match.group(2) if match.group(2) is not None else match.group(3)).split(None, MAX_BLOCK_TYPES)
        if len(names) > MAX_BLOCK_TYPES:
            raise ProcFileError(path, "more than %d migrate types; no kernel has that many" % MAX_BLOCK_TYPES, line_number)
        return names, bool(match.group(1)) or match.group(3) is not None
    match = _BLOCKS_ROW.match(raw)
    if match and block_types is not None:
        fields = match.group(3).split(None, len(block_types))
        if not all(field.isdigit() for field in fields):
            raise ProcFileError(path, "not pagetypeinfo output: %r" % line[:80], line_number)
        if len(fields) != len(block_types):
            raise ProcFileError(path, "%s pageblock counts, the header names %d types; the file is truncated"
                                % (len(fields) if len(fields) <= len(block_types) else "more", len(block_types)), line_number)
        counts = parse_counts(fields, "pageblock count")
        zone = info.zone(parse_count(match.group(1), "node id"), match.group(2))
        target = zone.mixed_pageblocks if mixed else zone.pageblocks
        target.update(zip(block_types, counts))
        return block_types, mixed
    raise ProcFileError(path, "not pagetypeinfo output: %r" % line[:80], line_number)


def free_pages_of_types(zone: PageTypeZone, types: t.Iterable[str]) -> int:
    """Free base pages on the lists of ``types`` (capped cells count as their lower bound)."""
    total = 0
    for name in types:
        for order, blocks in enumerate(zone.free_blocks.get(name, ())):
            total += blocks << order
    return total
