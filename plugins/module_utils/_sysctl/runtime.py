# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The running kernel's sysctl files: reading and writing ``<proc_root>/sys/<name>``.

Private to the collection. The one home of the /proc/sys read limit and of the runtime read and
write, shared by the facts modules (``_procfs/vm_tunables.py``) and by ``vm_sysctl``.

Names here are paths relative to /proc/sys (``vm/min_free_kbytes``, ``kernel/osrelease``); the
dotted spelling of sysctl.d files is ``_sysctl/dropin.py``'s business (``key_path``).

Why one bounded read: fs/proc/proc_sysctl.c ``proc_sys_call_handler`` allocates a kernel buffer of
the size asked for (``kvzalloc(count + 1)``, -ENOMEM from KMALLOC_MAX_SIZE on) and the numeric
handlers (``proc_dointvec`` and friends, kernel/sysctl.c) format the whole value into it on the first
read and return nothing once the file position is past 0, so a value cannot be read in pieces.
Asking for ``SYSCTL_READ_LIMIT + 1`` = 4095 bytes keeps that buffer one 4 KiB page on the very
hosts whose higher orders are exhausted, and is far more than any vm tunable prints.
"""


import errno
import os
import stat
import typing as t

from ansible_collections.memfrag.linux.plugins.module_utils._procfs.files import ProcFileError, path_under, read_bytes

# Longest value accepted from a /proc/sys file; the read asks for one byte more (4095), so that a
# longer file is reported as such instead of being cut silently.
SYSCTL_READ_LIMIT = 4094


def sysctl_path(proc_root: str, name: str) -> str:
    """``proc_root/sys/<name>``, refused (ProcFileError) if it resolves outside ``proc_root``."""
    return path_under(proc_root, "sys/" + name)


def has_sysctl(proc_root: str, name: str) -> bool:
    """Whether the kernel has this sysctl (a regular file inside the root)."""
    try:
        return os.path.isfile(sysctl_path(proc_root, name))
    except ProcFileError:
        return False


def read_sysctl(proc_root: str, name: str) -> str:
    """The file's text from one read(2) of at most SYSCTL_READ_LIMIT + 1 bytes; ProcFileError if unreadable."""
    return read_bytes(proc_root, "sys/" + name, SYSCTL_READ_LIMIT, one_read=True).decode("utf-8", "replace")


def read_value(proc_root: str, name: str) -> str:
    """The current value with whitespace collapsed (multi-value tunables print tabs)."""
    return " ".join(read_sysctl(proc_root, name).split())


def write_problem(proc_root: str, name: str) -> t.Optional[str]:
    """Why ``name`` cannot be written at all (read-only mount, no permission, missing), or None.

    Asked before the first write so that a read-only /proc/sys (a container, ``mount -o ro``)
    fails the run before anything changed instead of half-way through it.
    """
    try:
        path = sysctl_path(proc_root, name)
    except ProcFileError as exc:
        return str(exc)
    if os.access(path, os.W_OK):
        return None
    if not os.path.isfile(path):
        return "%s: does not exist" % path
    try:
        read_only = bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        read_only = False
    if read_only:
        return ("%s is on a read-only file system (/proc/sys mounted read-only, as in most containers); "
                "the running kernel cannot be changed from here" % path)
    return "%s is not writable by this user (permission denied; run as root, become: true)" % path


def write_sysctl(proc_root: str, name: str, value: str) -> t.Optional[str]:
    """Write ``value`` to the kernel; None on success, else why it failed.

    One write(2) of the whole value, as sysctl(8) does; the file is never created and a symlink
    in its place is not followed. O_NONBLOCK and the fstat check: a FIFO swapped in after the
    checks made the open wait forever for a reader; what is not a regular file is never written.
    """
    try:
        path = sysctl_path(proc_root, name)
    except ProcFileError as exc:
        return str(exc)
    flags = os.O_WRONLY | os.O_TRUNC | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.EROFS:
            return "%s: read-only file system (/proc/sys is mounted read-only)" % path
        if exc.errno == errno.ENXIO:
            return "%s: a FIFO, socket or device, not a regular file; not written" % path
        return "%s: %s" % (path, exc.strerror or exc)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return "%s: not a regular file; not written" % path
        os.write(fd, (value + "\n").encode("ascii"))
    except OSError as exc:
        reason = exc.strerror or str(exc)
        if exc.errno == errno.EINVAL:
            reason = "the kernel rejected the value (EINVAL)"
        return "%s: %s" % (path, reason)
    finally:
        os.close(fd)
    return None
