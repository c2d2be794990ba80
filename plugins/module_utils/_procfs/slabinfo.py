# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Parser for /proc/slabinfo (format version 2.x, written by both SLAB and SLUB).

mm/slab_common.c writes a ``slabinfo - version: 2.1`` line, a ``# name <active_objs> ...`` header,
then per cache ``"%-17s %6lu %6lu %6u %4u %4d"`` followed by ``" : tunables %4u %4u %4u"`` and
``" : slabdata %6lu %6lu %6lu"``. SLUB prints zero tunables; SLAB prints real ones, and with
CONFIG_DEBUG_SLAB adds ``" : globalstat ..."`` and ``" : cpustat ..."`` sections (version
``2.1 (statistics)``), which are ignored. ``%-17s`` is a minimum width: a name of 17 characters
and more pushes every column right (``nvidia_p2p_page_cache      0 ...``), so the numbers are
matched from the right of the name, never by column. Names are taken as everything before the
five numbers, so a name with a space would still parse.

The file is mode 0400 since 2.6.x kernels with SLUB (and root-only everywhere today): callers
treat "unreadable" as a warning, not a failure.
"""


import os
import re
import typing as t

from ansible_collections.memfrag.linux.plugins.module_utils._procfs.files import ProcFileError, read_text
from ansible_collections.memfrag.linux.plugins.module_utils._procfs.numbers import NumberError, parse_count

_VERSION = re.compile(r"^slabinfo - version:\s*(\d+)\.(\d+)\b")
_CACHE = re.compile(
    r"^(?P<name>\S.*?)\s+(?P<active_objs>\d+)\s+(?P<num_objs>\d+)\s+(?P<objsize>\d+)\s+(?P<objperslab>\d+)\s+(?P<pagesperslab>\d+)"
    r"\s*:\s*tunables\s+(?P<limit>\d+)\s+(?P<batchcount>\d+)\s+(?P<sharedfactor>\d+)"
    r"\s*:\s*slabdata\s+(?P<active_slabs>\d+)\s+(?P<num_slabs>\d+)\s+(?P<sharedavail>\d+)"
    r"(?P<rest>\s*:.*)?\s*$"
)

_NUMBERS = ("active_objs", "num_objs", "objsize", "objperslab", "pagesperslab", "active_slabs", "num_slabs")


class SlabCache(object):
    """One line of slabinfo. ``bytes`` is the memory its slabs hold: num_slabs * pagesperslab * page size.

    That is what slabtop calls the cache size, and what Slab: in meminfo sums (slab pages, including
    free objects and padding), unlike ``num_objs * objsize`` which leaves the padding out.
    """

    __slots__ = ("name", "active_objects", "objects", "object_size", "objects_per_slab",
                 "pages_per_slab", "active_slabs", "slabs", "bytes", "line_number")

    def __init__(self, name: str, active_objects: int, objects: int, object_size: int, objects_per_slab: int,
                 pages_per_slab: int, active_slabs: int, slabs: int, page_size: int, line_number: int) -> None:
        self.name = name
        self.active_objects = active_objects
        self.objects = objects
        self.object_size = object_size
        self.objects_per_slab = objects_per_slab
        self.pages_per_slab = pages_per_slab
        self.active_slabs = active_slabs
        self.slabs = slabs
        self.bytes = slabs * pages_per_slab * page_size
        self.line_number = line_number

    def as_fact(self) -> t.Dict[str, t.Any]:
        return {
            "name": self.name,
            "active_objects": self.active_objects,
            "objects": self.objects,
            "object_size": self.object_size,
            "bytes": self.bytes,
        }

    def __repr__(self) -> str:
        return "SlabCache(name=%r, objects=%d, bytes=%d)" % (self.name, self.objects, self.bytes)


def parse_slabinfo(text: str, page_size: int, path: str = "/proc/slabinfo") -> t.Tuple[t.List[SlabCache], t.List[str]]:
    """Parse slabinfo text into caches (file order) and warnings.

    ``page_size`` is the base page size of the host that wrote the file (pagesperslab is in pages).
    Raises ProcFileError naming ``path`` and the line for a missing or unsupported version line
    and for cache lines that are not in the 2.x format (for example a line cut short).
    """
    if page_size <= 0:
        raise ValueError("page_size must be positive, got %d" % page_size)
    caches = []  # type: t.List[SlabCache]
    warnings = []  # type: t.List[str]
    version_seen = False

    for line_number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        if not version_seen:
            match = _VERSION.match(line)
            if match is None:
                raise ProcFileError(path, "expected 'slabinfo - version: 2.x' first, got %r" % line[:80], line_number)
            if match.group(1) != "2":
                # 1.x (Linux 2.4) has other columns; guessing them would give wrong sizes.
                raise ProcFileError(path, "slabinfo version %s.%s is not supported (only 2.x)"
                                    % (match.group(1), match.group(2)), line_number)
            version_seen = True
            continue
        if line.startswith("#"):
            continue
        match = _CACHE.match(line)
        if match is None:
            raise ProcFileError(path, "expected '<name> <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab>"
                                " : tunables ... : slabdata ...', got %r" % line[:120], line_number)
        try:
            numbers = dict((key, parse_count(match.group(key), key)) for key in _NUMBERS)
        except NumberError as exc:
            # One cache line the kernel cannot have written is left out; the other caches still count.
            warnings.append("%s line %d: %s; cache %r skipped" % (path, line_number, exc, match.group("name")[:40]))
            continue
        caches.append(SlabCache(
            name=match.group("name"),
            active_objects=numbers["active_objs"],
            objects=numbers["num_objs"],
            object_size=numbers["objsize"],
            objects_per_slab=numbers["objperslab"],
            pages_per_slab=numbers["pagesperslab"],
            active_slabs=numbers["active_slabs"],
            slabs=numbers["num_slabs"],
            page_size=page_size,
            line_number=line_number,
        ))

    if not version_seen:
        raise ProcFileError(path, "empty file; expected 'slabinfo - version: 2.x'")
    if not caches:
        warnings.append("%s: no slab caches listed" % path)
    return caches, warnings


def top_caches(caches: t.Sequence[SlabCache], count: int) -> t.List[SlabCache]:
    """The ``count`` caches holding the most memory, largest first (name breaks ties, for stable output)."""
    if count <= 0:
        return []
    return sorted(caches, key=lambda cache: (-cache.bytes, cache.name))[:count]


def total_bytes(caches: t.Sequence[SlabCache]) -> int:
    """Memory held by all listed caches."""
    return sum(cache.bytes for cache in caches)


def read_slabinfo(proc_root: str, page_size: int) -> t.Tuple[t.List[SlabCache], t.List[str]]:
    """Read and parse ``proc_root/slabinfo``; raises ProcFileError when missing, unreadable or malformed."""
    return parse_slabinfo(read_text(proc_root, "slabinfo"), page_size, os.path.join(proc_root, "slabinfo"))
