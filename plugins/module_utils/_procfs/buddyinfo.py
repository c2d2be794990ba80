# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Parser for /proc/buddyinfo.

The kernel (mm/vmstat.c frag_show_print) writes, per online node and populated zone:
``"Node %d, zone %8s "`` then ``"%6lu "`` per order. ``%6lu`` is a minimum width, so counts of
seven digits and more shift the columns; the number of orders is a build option (11 on x86_64,
14 on arm64 with 64K pages, 9 on ppc64), so it is learned from the file, never assumed.

Real captures (sosreports, mails, pastes) add things the kernel never wrote: mail wrapping that
moves trailing counts to an indented continuation line, shell prompts and hand-written header rows.
Continuations are joined; lines that are not kernel output are skipped with a warning. Anything
that looks like kernel output but is not well formed is an error naming the line.
"""


import re
import typing as t

from ansible_collections.memfrag.linux.plugins.module_utils._procfs.files import ProcFileError
from ansible_collections.memfrag.linux.plugins.module_utils._procfs.numbers import NumberError, parse_count, parse_counts

# The most order columns any kernel prints is its MAX_ORDER (NR_PAGE_ORDERS since 6.8): 11 on x86_64,
# 14 on arm64 with 64K pages, 16 when arm64 4K is configured to the section size (MAX_PAGE_ORDER +
# PAGE_SHIFT <= SECTION_SIZE_BITS), 17 on ia64 with hugetlb and 18 on SGI SN2 (FORCE_MAX_ZONEORDER=18).
# Past this, a line is not buddyinfo; without a cap a crafted 10,000-column line cost minutes.
MAX_ORDERS = 24

# "Node 0, zone   Normal" then the counts. Node ids can be sparse and multi-digit (0, 10, 11).
_ZONE_LINE = re.compile(r"^\s*Node\s+(\d+)\s*,\s*zone\s+(\S+)(.*)$")
_COUNTS = re.compile(r"^[\s\d]*$")
# A line that begins like kernel output ("Node 0, zone ...") but does not parse is damage, not a note.
# Each run of blanks can be taken only one way: "\s*\S*\s*,?\s*" backtracked cubically on a line of blanks.
_NODE_PREFIX = re.compile(r"^\s*Node\b\s*(?:[^\s,]+\s*)?(?:,\s*)?zone\b")


class BuddyZone(object):
    """Free blocks of one (node, zone): ``free_blocks[order]`` is the number of free 2**order-page blocks."""

    __slots__ = ("node", "zone", "free_blocks", "line_number")

    def __init__(self, node: int, zone: str, free_blocks: t.List[int], line_number: int) -> None:
        self.node = node
        self.zone = zone
        self.free_blocks = free_blocks
        self.line_number = line_number

    def __repr__(self) -> str:
        return "BuddyZone(node=%d, zone=%r, free_blocks=%r)" % (self.node, self.zone, self.free_blocks)


def _number(text: str, what: str, path: str, line_number: int) -> int:
    try:
        return parse_count(text, what)
    except NumberError as exc:
        raise ProcFileError(path, str(exc), line_number)


def _counts(text: str, before: t.List[int], path: str, line_number: int) -> t.List[int]:
    """``before`` followed by the free block counts in ``text``; a count past 64 bits or too many orders is an error."""
    fields = text.split(None, MAX_ORDERS + 1 - len(before))
    if len(before) + len(fields) > MAX_ORDERS:
        raise ProcFileError(path, "more than %d order columns; no kernel has that many orders (MAX_ORDER), "
                            "so this is not buddyinfo" % MAX_ORDERS, line_number)
    try:
        return before + parse_counts(fields, "free block count")
    except NumberError as exc:
        raise ProcFileError(path, str(exc), line_number)


def parse_buddyinfo(text: str, path: str = "/proc/buddyinfo") -> t.Tuple[t.List[BuddyZone], t.List[str]]:
    """Parse buddyinfo text into zones (file order) and warnings.

    Raises ProcFileError naming ``path`` and the line for malformed kernel lines, an empty file,
    or zones that disagree on the number of orders (a truncated file).

    When the same (node, zone) appears again, the text holds more than one snapshot (two ``cat``
    runs pasted one after the other): a new snapshot starts there and only the last one is
    returned, with a warning, as an operator comparing two cats would read it.
    """
    snapshots = [[]]  # type: t.List[t.List[BuddyZone]]
    warnings = []  # type: t.List[str]
    current = None  # type: t.Optional[BuddyZone]
    seen = {}  # type: t.Dict[t.Tuple[int, str], int]

    for line_number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            current = None
            continue
        match = _ZONE_LINE.match(raw)
        if match:
            rest = match.group(3)
            if not _COUNTS.match(rest):
                raise ProcFileError(path, "expected free block counts after the zone name, got %r" % rest.strip()[:80], line_number)
            key = (_number(match.group(1), "node id", path, line_number), match.group(2))
            if key in seen:
                warnings.append("%s line %d: node %d zone %s appears again (first at line %d); a new snapshot starts "
                                "here and the earlier one is ignored" % (path, line_number, key[0], key[1], seen[key]))
                snapshots.append([])
                seen = {}
            seen[key] = line_number
            current = BuddyZone(key[0], key[1], _counts(rest, [], path, line_number), line_number)
            snapshots[-1].append(current)
            continue
        if current is not None and _COUNTS.match(raw):
            # Continuation of a mail-wrapped zone line: the remaining orders.
            current.free_blocks = _counts(line, current.free_blocks, path, line_number)
            continue
        if _NODE_PREFIX.match(raw):
            # Starts like kernel output but is not: a damaged line, not a human annotation.
            raise ProcFileError(path, "malformed zone line, expected 'Node N, zone NAME' then counts: %r" % line[:80], line_number)
        current = None
        warnings.append("%s line %d: not kernel output, skipped: %r" % (path, line_number, line[:80]))

    zones = snapshots[-1]
    if not zones:
        raise ProcFileError(path, "no 'Node N, zone NAME' lines; the file is empty or not buddyinfo")

    first = zones[0]
    if not first.free_blocks:
        raise ProcFileError(path, "zone %s of node %d has no free block counts" % (first.zone, first.node), first.line_number)
    for zone in zones:
        if len(zone.free_blocks) != len(first.free_blocks):
            raise ProcFileError(
                path,
                "node %d zone %s has %d order columns but node %d zone %s has %d; the file is truncated or mixed"
                % (zone.node, zone.zone, len(zone.free_blocks), first.node, first.zone, len(first.free_blocks)),
                zone.line_number,
            )
    return zones, warnings
