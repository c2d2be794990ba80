# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Parser for /proc/meminfo.

The kernel (fs/proc/meminfo.c show_val_kb) writes ``"%-16s%8lu kB\\n"`` style lines such as
``"MemTotal:       24684096 kB"``; the HugePages_* counters are plain counts without a unit,
and ``Hugepagesize``/``Hugetlb`` are in kB again. Field names keep the kernel's spelling,
including parentheses (``Active(anon)``). Values of eight digits and more push the unit right, so
the line is split on whitespace, never on columns.

Values are returned in bytes for kB fields (the kernel's "kB" is KiB: ``<< (PAGE_SHIFT - 10)``) and
as plain counts for unitless fields. Which fields exist depends on the kernel era and config
(MemAvailable from 3.14, SReclaimable/SUnreclaim from 2.6.19, SecPageTables from 6.3), so nothing
but MemTotal and MemFree is required here; consumers check for the fields they need.
"""


import os
import re
import typing as t

from ansible_collections.memfrag.linux.plugins.module_utils._procfs.files import ProcFileError, read_text
from ansible_collections.memfrag.linux.plugins.module_utils._units import KIB
from ansible_collections.memfrag.linux.plugins.module_utils._procfs.numbers import NumberError, parse_count

# "Name:  value" or "Name:  value kB". Names are kernel identifiers plus parentheses
# (Active(anon)); a missing colon, a non-numeric value or another unit is not kernel output.
_LINE = re.compile(r"^([A-Za-z0-9_()]+):\s*(\d+)(?:\s+(\S+))?\s*$")


# Without these two no question about memory can be answered; everything else is era-dependent.
REQUIRED_FIELDS = ("MemTotal", "MemFree")


def parse_meminfo(text: str, path: str = "/proc/meminfo") -> t.Tuple[t.Dict[str, int], t.List[str]]:
    """Parse meminfo text into ``{field: value}`` and warnings.

    kB fields are converted to bytes; unitless fields (HugePages_Total, HugePages_Free,
    HugePages_Rsvd, HugePages_Surp) stay counts. Blank lines are ignored. A repeated field (two
    snapshots concatenated) keeps the later value with a warning.

    Raises ProcFileError naming ``path`` and the line for a line that is not ``Name: number [kB]``,
    a value past 64 bits, a unit other than kB, and for an empty file or one without MemTotal/MemFree.
    """
    fields = {}  # type: t.Dict[str, int]
    seen_at = {}  # type: t.Dict[str, int]
    warnings = []  # type: t.List[str]

    for line_number, raw in enumerate(text.splitlines(), 1):
        if not raw.strip():
            continue
        match = _LINE.match(raw.strip())
        if match is None:
            raise ProcFileError(path, "expected 'Name: number [kB]', got %r" % raw.strip()[:80], line_number)
        name, unit = match.group(1), match.group(3)
        try:
            # A required file: a value the kernel cannot print makes every total after it wrong.
            number = parse_count(match.group(2), name)
        except NumberError as exc:
            raise ProcFileError(path, str(exc), line_number)
        if unit is None:
            value = number
        elif unit == "kB":
            value = number * KIB
        else:
            raise ProcFileError(path, "field %s has unit %r; the kernel only writes kB" % (name, unit[:20]), line_number)
        if name in seen_at:
            warnings.append("%s line %d: %s appears again (first at line %d); using the later value"
                            % (path, line_number, name, seen_at[name]))
        seen_at[name] = line_number
        fields[name] = value

    if not fields:
        raise ProcFileError(path, "no 'Name: value' lines; the file is empty or not meminfo")
    missing = [name for name in REQUIRED_FIELDS if name not in fields]
    if missing:
        raise ProcFileError(path, "required field(s) %s missing; the file is truncated or not meminfo" % ", ".join(missing))
    return fields, warnings


def read_meminfo(proc_root: str = "/proc") -> t.Tuple[t.Dict[str, int], t.List[str]]:
    """Read and parse ``proc_root/meminfo``; raises ProcFileError (``missing`` set when absent)."""
    path = os.path.join(proc_root, "meminfo")
    return parse_meminfo(read_text(proc_root, "meminfo"), path)


def mem_total_bytes(proc_root: str = "/proc") -> t.Tuple[t.Optional[int], t.Optional[str]]:
    """MemTotal in bytes (totalram_pages as the kernel counts them), or (None, why) when meminfo is unusable."""
    try:
        fields, _warnings = read_meminfo(proc_root)
    except ProcFileError as exc:
        return None, str(exc)
    return fields["MemTotal"], None
