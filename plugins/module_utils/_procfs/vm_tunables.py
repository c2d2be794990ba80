# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Current values of /proc/sys/vm tunables, read by name under a proc root.

Shared by every module that reports or checks vm.* settings. A name the kernel does not have
(compaction_proactiveness before 5.9, watermark_scale_factor before 4.6) is simply absent from
the result; a name that exists but cannot be read (drop_caches and compact_memory are mode 0200)
is absent too, with a warning.
"""


import re
import typing as t

from ansible_collections.memfrag.linux.plugins.module_utils._procfs.files import ProcFileError
from ansible_collections.memfrag.linux.plugins.module_utils._sysctl.runtime import read_sysctl
from ansible_collections.memfrag.linux.plugins.module_utils._procfs.numbers import NumberError, parse_signed

# The tunables that decide watermarks, compaction and reclaim behaviour (kernel-formats.md section 9).
FRAGMENTATION_TUNABLES = (
    "min_free_kbytes",
    "watermark_scale_factor",
    "watermark_boost_factor",
    "extfrag_threshold",
    "compaction_proactiveness",
    "vfs_cache_pressure",
    "swappiness",
    "overcommit_memory",
    "zone_reclaim_mode",
    "lowmem_reserve_ratio",
)

_NAME = re.compile(r"^[a-z0-9_][a-z0-9_-]*$")
_INT = re.compile(r"^-?\d+$")


def parse_tunable(text: str) -> t.Union[int, str]:
    """One value: an int when the file holds a single integer of at most 64 bits, else the text with
    runs of blanks as one space (as the kernel would never print it, it is shown, not computed with)."""
    value = " ".join(text.split())
    if _INT.match(value):
        try:
            return parse_signed(value, "value")
        except NumberError:
            return value
    return value


def read_vm_tunables(proc_root: str, names: t.Iterable[str]) -> t.Tuple[t.Dict[str, t.Union[int, str]], t.List[str]]:
    """Read ``proc_root/sys/vm/<name>`` for each name.

    Returns ``({name: int or str}, warnings)``. Missing names are absent without a warning;
    unreadable ones are absent with a warning naming the file and the reason. A name that is not
    a plain sysctl file name (``../x``, ``a/b``) raises ValueError: it is a caller's bug.
    """
    values = {}  # type: t.Dict[str, t.Union[int, str]]
    warnings = []  # type: t.List[str]
    for name in names:
        if not _NAME.match(name):
            raise ValueError("not a vm tunable name: %r" % (name,))
        try:
            # One bounded read per file (the read limit and why: _sysctl/runtime.py).
            text = read_sysctl(proc_root, "vm/" + name)
        except ProcFileError as exc:
            if not exc.missing:
                warnings.append(str(exc))
            continue
        values[name] = parse_tunable(text)
    return values, warnings
