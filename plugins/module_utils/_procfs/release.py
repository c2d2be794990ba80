# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The kernel release: the one parser of ``uname -r`` text and the one reader of ``sys/kernel/osrelease``.

Private to the collection. Every era decision (GFP layout, watermark rules, sysctl ranges) starts here.
"""

import re
import typing as t

from ansible_collections.memfrag.linux.plugins.module_utils._procfs.files import ProcFileError
from ansible_collections.memfrag.linux.plugins.module_utils._sysctl.runtime import read_sysctl

Release = t.Tuple[int, int, int]

# A release is printed by the kernel as VERSION.PATCHLEVEL[.SUBLEVEL][EXTRAVERSION]; digit runs are bounded so
# hostile text cannot make int() expensive.
_RELEASE = re.compile(r"^\s*(\d{1,4})\.(\d{1,4})(?:\.(\d{1,6}))?")


def parse_release(text: t.Any) -> t.Optional[Release]:
    """``"3.10.0-1160.el7.x86_64"`` -> (3, 10, 0), ``"6.18"`` -> (6, 18, 0); None for text that is no release."""
    if not isinstance(text, str):
        return None
    match = _RELEASE.match(text)
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2)), int(match.group(3) or 0)


def require_release(text: t.Any) -> Release:
    """Like parse_release, but a ValueError that says what was expected when ``text`` is no release."""
    version = parse_release(text)
    if version is None:
        raise ValueError("not a kernel release: %r (expected something like 5.10.0-32-amd64)" % (text,))
    return version


def read_release(proc_root: str) -> t.Optional[str]:
    """``sys/kernel/osrelease`` under ``proc_root`` (the running kernel for /proc), or None when absent."""
    # A /proc/sys file: one bounded read (osrelease is one line, __NEW_UTS_LEN is 64; _sysctl/runtime.py says why).
    try:
        return read_sysctl(proc_root, "kernel/osrelease").strip() or None
    except ProcFileError:
        return None
