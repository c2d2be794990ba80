# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Parser for /proc/zoneinfo, every layout from 2.6 to 6.x (mm/vmstat.c zoneinfo_show_print).

What changes by era (kernel-formats.md section 3), and how this parser copes:

* Header ``Node %d, zone %8s`` in every era; a zone block runs to the next header.
* ``pages free`` then the ``%lu`` lines ``boost`` (~5.16+), ``min``, ``low``, ``high``,
  ``promo`` (6.12/6.13+), ``scanned`` (<= 3.x, ``scanned  0 (a: 0 i: 0)`` on 2.6), ``spanned``,
  ``present``, ``managed`` (3.8+), ``cma`` (~5.12+): read by name, so any subset works.
* ``protection: (a, b, ...)`` is lowmem_reserve[] indexed by zone index (every configured zone).
* Zone counters (``nr_free_pages``, ``nr_free_cma`` ...) come before ``protection`` up to 3.x and
  after it from 4.8; a ``per-node stats`` block (4.8+) precedes ``pages free`` in the first zone of
  each node. Counters are read by name wherever they are; per-node stats are kept apart.
* ``pagesets`` (``cpu:``, ``count:``, ``high:``, ``batch:``, ``vm stats threshold:``) are skipped.
  Their ``high:`` has a colon, which is what tells it from the ``high`` watermark.
* Tail lines ``all_unreclaimable:``, ``node_unreclaimable:``, ``start_pfn:``, ``inactive_ratio:``,
  ``prev_priority:``, ``reserved_highatomic:``, ``free_highatomic:`` are kept as ``tail`` values.
* Unpopulated zones are absent up to 4.9 and printed with zeros from 4.19 on.
* RHEL 8 prints an unnamed per-node counter (``%-12s`` of an empty name): a line holding only a
  number, ignored.
"""


import re
import typing as t

from ansible_collections.memfrag.linux.plugins.module_utils._procfs.files import ProcFileError
from ansible_collections.memfrag.linux.plugins.module_utils._procfs.numbers import NumberError, parse_count, parse_signed

_HEADER = re.compile(r"^Node\s+(\d+)\s*,\s*zone\s+(\S+)\s*$")
_PAGES_FREE = re.compile(r"^pages free\s+(\d+)\s*$")
_PROTECTION = re.compile(r"^protection:\s*\(([-\d,\s]*)\)\s*$")
_KEY_VALUE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\s+(-?\d+)(\s.*)?$")
_COLON_VALUE = re.compile(r"^([A-Za-z_][A-Za-z0-9_ ]*?):\s*(.*)$")
_NUMBER_ONLY = re.compile(r"^-?\d+$")

# Per-zone values printed as "name value" (not counters): watermarks and sizes.
ZONE_FIELDS = ("boost", "min", "low", "high", "promo", "scanned", "spanned", "present", "managed", "cma",
               "active", "inactive")
_PAGESET_KEYS = frozenset(("cpu", "count", "high", "batch", "high_min", "high_max", "vm stats threshold"))
# protection has one entry per configured zone (MAX_NR_ZONES: at most 6 names exist); a longer list is not zoneinfo.
MAX_PROTECTION_ENTRIES = 8


class ZoneInfo(object):
    """One ``Node N, zone NAME`` block."""

    __slots__ = ("node", "zone", "line_number", "pages_free", "fields", "protection", "counters", "tail",
                 "node_stats")

    def __init__(self, node: int, zone: str, line_number: int) -> None:
        self.node = node
        self.zone = zone
        self.line_number = line_number
        self.pages_free = None  # type: t.Optional[int]
        self.fields = {}  # type: t.Dict[str, int]
        self.protection = None  # type: t.Optional[t.List[int]]
        self.counters = {}  # type: t.Dict[str, int]
        self.tail = {}  # type: t.Dict[str, str]
        self.node_stats = {}  # type: t.Dict[str, int]

    @property
    def populated(self) -> bool:
        return self.fields.get("present", 1) > 0

    def __repr__(self) -> str:
        return "ZoneInfo(node=%d, zone=%r, pages_free=%r, fields=%r)" % (self.node, self.zone, self.pages_free, self.fields)


def _zone_line(current: ZoneInfo, line: str, line_number: int, path: str, warnings: t.List[str],
               in_node_stats: bool, in_pagesets: bool) -> t.Tuple[bool, bool]:
    """Apply one line of a zone block to ``current``; returns the new (in_node_stats, in_pagesets).

    A counter past 64 bits is skipped with a warning. Raises NumberError for such a number where the
    zone needs it (pages free, a watermark or size, protection) and ProcFileError for a damaged
    protection line.
    """
    if line == "per-node stats":
        return True, in_pagesets
    if line == "pagesets":
        return False, True
    match = _PAGES_FREE.match(line)
    if match:
        current.pages_free = parse_count(match.group(1), "pages free")
        return False, False
    if line.startswith("protection:"):
        match = _PROTECTION.match(line)
        if match is None:
            raise ProcFileError(path, "malformed protection line: %r" % line[:80], line_number)
        entries = match.group(1).replace(",", " ").split(None, MAX_PROTECTION_ENTRIES)
        if len(entries) > MAX_PROTECTION_ENTRIES:
            raise NumberError("protection has more than %d entries; no kernel has that many zones" % MAX_PROTECTION_ENTRIES)
        current.protection = [parse_signed(v, "protection") for v in entries]
        return in_node_stats, in_pagesets
    match = _COLON_VALUE.match(line)
    if match:
        key = match.group(1)
        if key in _PAGESET_KEYS:
            in_pagesets = True
        else:
            current.tail[key] = match.group(2).strip()
        return in_node_stats, in_pagesets
    match = _KEY_VALUE.match(line)
    if match:
        key = match.group(1)
        is_field = not in_node_stats and key in ZONE_FIELDS and current.pages_free is not None and not in_pagesets
        try:
            value = parse_signed(match.group(2), key)
        except NumberError as exc:
            if is_field:
                raise  # a watermark or size: the zone cannot be judged without it
            warnings.append("%s line %d: %s; counter skipped" % (path, line_number, exc))
            return in_node_stats, in_pagesets
        if in_node_stats:
            current.node_stats[key] = value
        elif is_field:
            current.fields[key] = value
        else:
            current.counters[key] = value
        return in_node_stats, in_pagesets
    if not _NUMBER_ONLY.match(line):  # an unnamed counter (RHEL 8 per-node stats) is ignored
        warnings.append("%s line %d: not zoneinfo output, skipped: %r" % (path, line_number, line[:80]))
    return in_node_stats, in_pagesets


def parse_zoneinfo(text: str, path: str = "/proc/zoneinfo") -> t.Tuple[t.List[ZoneInfo], t.List[str]]:
    """Parse zoneinfo text into zone blocks (file order) and warnings.

    Raises ProcFileError naming the line for a damaged header or watermark line, and when the
    file has no zone at all.
    """
    zones = []  # type: t.List[ZoneInfo]
    warnings = []  # type: t.List[str]
    current = None  # type: t.Optional[ZoneInfo]
    skipping = False  # inside a zone block left out for a number the kernel cannot print
    in_node_stats = False
    in_pagesets = False
    for line_number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        match = _HEADER.match(line)
        if match:
            in_node_stats = in_pagesets = skipping = False
            try:
                current = ZoneInfo(parse_count(match.group(1), "node id"), match.group(2), line_number)
            except NumberError as exc:
                current, skipping = None, True
                warnings.append("%s line %d: %s; this zone block is left out" % (path, line_number, exc))
                continue
            zones.append(current)
            continue
        if line.startswith("Node"):
            raise ProcFileError(path, "malformed zone header, expected 'Node N, zone NAME': %r" % line[:80], line_number)
        if skipping:
            continue
        if current is None:
            raise ProcFileError(path, "text before the first 'Node N, zone NAME' header: %r" % line[:80], line_number)
        try:
            state = _zone_line(current, line, line_number, path, warnings, in_node_stats, in_pagesets)
        except NumberError as exc:
            # An optional file: the zone whose block holds the bad number is left out, the rest is kept.
            warnings.append("%s line %d: %s; node %d zone %s is left out" % (path, line_number, exc, current.node, current.zone))
            zones.pop()  # current is always the last block appended
            current, skipping = None, True
            continue
        in_node_stats, in_pagesets = state
    if not zones:
        raise ProcFileError(path, "no 'Node N, zone NAME' headers; the file is empty or not zoneinfo")
    for zone in zones:
        for key in ("min", "low", "high"):
            if zone.populated and key not in zone.fields:
                raise ProcFileError(path, "node %d zone %s has no '%s' watermark; the file is truncated"
                                    % (zone.node, zone.zone, key), zone.line_number)
    return zones, warnings


def zone_indexes(zones: t.Sequence[ZoneInfo]) -> t.Dict[t.Tuple[int, str], int]:
    """Map (node, zone) to the kernel's zone index, the index into ``protection``.

    From ~4.19 every configured zone is printed, so a node's blocks give the indexes directly.
    Older kernels print populated zones only; then the configured zone list is rebuilt from the
    kernel's fixed order (DMA, DMA32, Normal, HighMem, Movable, Device): the names seen, plus
    Normal and Movable (always configured), plus zones after Normal (HighMem, Device) to reach
    the length of ``protection`` - never HighMem beside DMA32 or DMA32 beside HighMem, since no
    kernel configures both (32-bit has HighMem, 64-bit DMA32). Zones whose index cannot be placed
    are left out.
    """
    canonical = ("DMA", "DMA32", "Normal", "HighMem", "Movable", "Device")
    result = {}  # type: t.Dict[t.Tuple[int, str], int]
    by_node = {}  # type: t.Dict[int, t.List[ZoneInfo]]
    for zone in zones:
        by_node.setdefault(zone.node, []).append(zone)
    seen = set(zone.zone for zone in zones)
    nr_zones = max([len(zone.protection) for zone in zones if zone.protection] or [0])
    configured = [name for name in canonical if name in seen or name in ("Normal", "Movable")]
    for extra in ("HighMem", "Device", "DMA32", "DMA"):
        if len(configured) >= nr_zones:
            break
        # HighMem is configured only on 32-bit kernels and DMA32 only on 64-bit ones: one seen rules out the other.
        if (extra == "HighMem" and "DMA32" in seen) or (extra == "DMA32" and "HighMem" in seen):
            continue
        if extra not in configured:
            configured.append(extra)
            configured.sort(key=canonical.index)
    for node, node_zones in by_node.items():
        names = [zone.zone for zone in node_zones]
        if len(names) == nr_zones and len(set(names)) == len(names):
            for index, name in enumerate(names):
                result[(node, name)] = index
        elif len(configured) == nr_zones:
            for name in names:
                if name in configured:
                    result[(node, name)] = configured.index(name)
    return result
