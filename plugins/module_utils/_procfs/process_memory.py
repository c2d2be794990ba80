# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Sum of resident set sizes over every process under a proc root.

This is the number ``ps``/``top`` users add up ("ps says 0.6 GiB"). It over-counts shared pages
(libraries, shmem, page cache mapped by several processes are in every mapper's RSS) and it never
sees kernel memory (slab, page tables, stacks), which is exactly the gap the accounting explains.

Per pid, ``statm`` is read (field 2 = resident pages; one small read, no parsing of 50 lines);
when it is absent (a sosreport keeps ``status`` more often than ``statm``), ``status`` VmRSS in kB.
Kernel threads have all-zero statm and no VmRSS line: they count as processes with 0 bytes.
A process can exit between listing and reading: such pids are skipped silently. Pid directories
that are symlinks, and statm/status files that are symlinks, are never followed, so a crafted
tree cannot make us read outside the root.
"""


import errno
import os
import typing as t

from ansible_collections.memfrag.linux.plugins.module_utils._procfs.files import ProcFileError, read_file
from ansible_collections.memfrag.linux.plugins.module_utils._procfs.numbers import NumberError, parse_count

# A pid's statm is under 100 bytes and status under 2 KiB; reading a bounded amount keeps a
# hostile fixture (a huge "statm") from costing memory.
_STATM_LIMIT = 4096
_STATUS_LIMIT = 64 * 1024

# Errors that mean "this pid went away or is not a process": skip it, as ps does.
_VANISHED = (errno.ENOENT, errno.ESRCH, errno.ENOTDIR, errno.ELOOP, errno.EACCES, errno.EPERM, errno.EINVAL)


class ProcessMemory(object):
    """``count`` processes read (kernel threads included), ``rss_bytes`` their summed RSS,
    ``without_rss`` how many had none (kernel threads, fully swapped-out processes)."""

    __slots__ = ("count", "rss_bytes", "without_rss", "warnings")

    def __init__(self) -> None:
        self.count = 0
        self.rss_bytes = 0
        self.without_rss = 0
        self.warnings = []  # type: t.List[str]

    def as_fact(self) -> t.Dict[str, int]:
        return {"count": self.count, "rss_bytes": self.rss_bytes, "without_rss": self.without_rss}


def _read_nofollow(path: str, limit: int) -> t.Optional[bytes]:
    """Content of ``path`` (not following a final symlink), or None when it is gone or unreadable.

    Raises ProcFileError when it is there but not a regular file (a FIFO would block the read forever).
    """
    try:
        return read_file(path, limit, follow=False)
    except ProcFileError as exc:
        # A process that exited, a zombie (ESRCH), a link (ELOOP): skipped silently, as ps does.
        if exc.missing or exc.errno in _VANISHED:
            return None
        raise


def rss_from_statm(data: bytes, page_size: int) -> t.Optional[int]:
    """Resident bytes from statm content (``size resident shared text lib data dt``, in pages).

    None when the content is not statm; raises NumberError for a resident count past 64 bits.
    """
    fields = data.split()
    if len(fields) < 2 or not fields[1].isdigit():
        return None
    return parse_count(fields[1].decode("ascii"), "statm resident pages") * page_size


def rss_from_status(data: bytes) -> t.Optional[int]:
    """Resident bytes from status content: ``VmRSS:  1234 kB``; 0 for a kernel thread (no VmRSS line).

    None when the content is not a status file at all (no ``Name:`` line); raises NumberError for
    a VmRSS past 64 bits.
    """
    has_name = False
    for line in data.splitlines():
        if line.startswith(b"VmRSS:"):
            fields = line.split()
            if len(fields) >= 2 and fields[1].isdigit():
                return parse_count(fields[1].decode("ascii"), "VmRSS") * 1024
            return None
        if line.startswith(b"Name:"):
            has_name = True
    return 0 if has_name else None


def _pid_rss(pid_dir: str, page_size: int) -> t.Optional[int]:
    rss = None
    data = _read_nofollow(os.path.join(pid_dir, "statm"), _STATM_LIMIT)
    if data is not None:
        rss = rss_from_statm(data, page_size)
    if rss is None:
        data = _read_nofollow(os.path.join(pid_dir, "status"), _STATUS_LIMIT)
        if data is not None:
            rss = rss_from_status(data)
    return rss


def process_rss(proc_root: str, page_size: int) -> ProcessMemory:
    """Sum RSS over the numeric directories of ``proc_root`` (see module docstring for the rules).

    Raises OSError only when ``proc_root`` itself cannot be listed.
    """
    result = ProcessMemory()
    with os.scandir(proc_root) as entries:
        pid_dirs = []
        for entry in entries:
            if not entry.name.isdigit():
                continue
            try:
                # follow_symlinks=False: a symlinked "pid" could point anywhere.
                if not entry.is_dir(follow_symlinks=False):
                    continue
            except OSError:
                continue
            pid_dirs.append(entry.path)

    skipped = []  # type: t.List[str]
    for pid_dir in pid_dirs:
        try:
            rss = _pid_rss(pid_dir, page_size)
        except (ProcFileError, NumberError) as exc:
            # One bad pid (a FIFO for statm, a count past 64 bits) is skipped, never the whole sum.
            skipped.append(str(exc) if isinstance(exc, ProcFileError) else "%s: %s" % (pid_dir, exc))
            continue
        if rss is None:
            continue  # vanished, or a directory that is not a process
        result.count += 1
        result.rss_bytes += rss
        if rss == 0:
            result.without_rss += 1
    if skipped:
        # One warning, not one per pid: a crafted tree can hold thousands.
        result.warnings.append("%d process(es) not counted in the RSS sum: %s%s" % (
            len(skipped), "; ".join(skipped[:3]), "; ..." if len(skipped) > 3 else ""))
    return result
