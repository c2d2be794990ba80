# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading kernel files under a root (/proc, /sys, or an extracted sosreport tree).

Private to the collection. Every module that reads kernel files takes a root so the same code
analyses a live host, a sosreport, or a test fixture tree; this file is the one place that turns
``(root, relative name)`` into bytes, and it refuses paths that resolve outside the root.
"""


import errno
import os
import stat
import typing as t

# /proc files we read are small; a cap keeps a hostile or corrupt tree from exhausting memory.
MAX_PROC_FILE_BYTES = 64 * 1024 * 1024
# Largest single read(2); /proc files are produced by the kernel into a buffer of the size asked for.
READ_CHUNK_BYTES = 65536

_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


class ProcFileError(Exception):
    """A kernel file is missing, unreadable or not in the format the kernel writes.

    ``path`` and ``line_number`` (1-based, or None) make the message point at the exact place.
    ``missing`` is true when the file does not exist (callers may treat that as "feature absent").
    ``errno`` is the OS error behind it, when there was one.
    """

    def __init__(self, path: str, message: str, line_number: t.Optional[int] = None, missing: bool = False,
                 errno: t.Optional[int] = None) -> None:
        self.path = path
        self.message = message
        self.line_number = line_number
        self.missing = missing
        self.errno = errno
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.path if self.line_number is None else "%s line %d" % (self.path, self.line_number)
        return "%s: %s" % (where, self.message)


def path_under(root: str, relative: str) -> str:
    """Join ``relative`` to ``root`` and refuse the result if it resolves outside ``root``.

    Symlinks inside the tree are allowed as long as they stay inside it (a sosreport keeps
    proc/self as a link); a link that points elsewhere is an error, never followed.
    """
    if os.path.isabs(relative):
        relative = relative.lstrip("/")
    candidate = os.path.join(root, relative)
    real_root = os.path.realpath(root)
    real = os.path.realpath(candidate)
    if real != real_root and not real.startswith(real_root.rstrip(os.sep) + os.sep):
        raise ProcFileError(candidate, "resolves to %s, outside %s; refusing to follow" % (real, real_root))
    return candidate


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISDIR, "a directory"), (stat.S_ISLNK, "a symbolic link")):
        if test(mode):
            return name
    return "not a regular file"


def _refuse(path: str, mode: int) -> ProcFileError:
    # Every /proc, /sys and sysctl.d file is a regular file (st_size 0 in /proc); anything else is a
    # crafted tree, and reading it could block forever (FIFO) or touch a device.
    return ProcFileError(path, "is %s, not a regular file; refusing to read it" % _kind(mode))


def read_file(path: str, limit: int = MAX_PROC_FILE_BYTES, follow: bool = True, shown: t.Optional[str] = None,
              one_read: bool = False) -> bytes:
    """Content of the regular file ``path`` (at most ``limit`` bytes), never blocking on what is not one.

    The file is checked with stat before it is opened (opening a device node can itself act), opened
    with O_NONBLOCK (a FIFO swapped in meanwhile cannot block the open) and, with ``follow=False``,
    O_NOFOLLOW, then checked again with fstat on what was opened. ``shown`` is the path named in
    errors (default ``path``). Raises ProcFileError: ``missing`` set when the file does not exist.

    The kernel is never asked for more than ``limit + 1`` bytes in all: the one byte more tells a
    file that is too large from one that fits. Reads are unbuffered, in pieces of at most
    READ_CHUNK_BYTES (seq_file makes a buffer of the size asked for). With ``one_read`` the whole
    ``limit + 1`` is asked for in a single read(2) and nothing after it: /proc/sys numeric handlers
    return the whole value in the first read and nothing once the position is past 0.
    """
    shown = path if shown is None else shown
    try:
        before = os.stat(path) if follow else os.lstat(path)
        if stat.S_ISLNK(before.st_mode):
            raise ProcFileError(shown, "is a symbolic link; not followed", errno=errno.ELOOP)
        if not stat.S_ISREG(before.st_mode):
            raise _refuse(shown, before.st_mode)
        fd = os.open(path, os.O_RDONLY | _O_NONBLOCK | _O_CLOEXEC | (0 if follow else _O_NOFOLLOW))
    except (IOError, OSError) as exc:
        raise _os_error(shown, exc)
    try:
        opened = os.fstat(fd)
        if not stat.S_ISREG(opened.st_mode):
            raise _refuse(shown, opened.st_mode)
        chunks = []  # type: t.List[bytes]
        size = 0
        # A seq_file returns short reads, so stop at the first empty one, not at st_size (0 in /proc).
        while size <= limit:
            wanted = limit + 1 - size
            chunk = os.read(fd, wanted if one_read else min(wanted, READ_CHUNK_BYTES))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if one_read:
                break
    except (IOError, OSError) as exc:
        raise _os_error(shown, exc)
    finally:
        os.close(fd)
    if size > limit:
        raise ProcFileError(shown, "larger than %d bytes; not a kernel file" % limit)
    return b"".join(chunks)


def _os_error(path: str, exc: EnvironmentError) -> ProcFileError:
    missing = exc.errno in (errno.ENOENT, errno.ENOTDIR)
    reason = "does not exist" if missing else (exc.strerror or str(exc))
    if exc.errno in (errno.EACCES, errno.EPERM):
        reason = "permission denied (this file is root-only on newer kernels)"
    elif exc.errno == errno.ELOOP:
        reason = "is a symbolic link; not followed"
    elif exc.errno == errno.ENXIO:
        reason = "is a socket or a device without a driver, not a regular file; refusing to read it"
    elif exc.errno == errno.EAGAIN:
        reason = "would block; not a kernel file"
    return ProcFileError(path, reason, missing=missing, errno=exc.errno)


def read_bytes(root: str, relative: str, limit: int = MAX_PROC_FILE_BYTES, one_read: bool = False) -> bytes:
    """Return the content of ``root/relative`` (at most ``limit`` bytes); read_file says what is refused and how it reads."""
    path = path_under(root, relative)
    return read_file(path, limit, one_read=one_read)


def read_text(root: str, relative: str, limit: int = MAX_PROC_FILE_BYTES) -> str:
    """Return ``root/relative`` as text; bytes that are not UTF-8 become U+FFFD, never an exception."""
    return read_bytes(root, relative, limit).decode("utf-8", "replace")


# The largest base page any Linux architecture builds with: 256 KiB (hexagon, powerpc 44x PAGE_SIZE_256KB).
MAX_PAGE_SIZE = 256 * 1024


def page_size_problem(page_size: t.Optional[int]) -> t.Optional[str]:
    """Why a page size given by the user cannot be a kernel's base page size, or None (also for None: not given)."""
    if page_size is not None and (page_size < 512 or page_size & (page_size - 1)):
        return "page_size must be a power of two of at least 512, got %s" % _shown_int(page_size)
    if page_size is not None and page_size > MAX_PAGE_SIZE:
        return "page_size must be at most %d (256 KiB, the largest page any Linux builds with), got %s" % (
            MAX_PAGE_SIZE, _shown_int(page_size))
    return None


def _shown_int(value: int) -> str:
    # 10**400 given as an option must not make a 400-digit message.
    text = str(value) if -10 ** 30 < value < 10 ** 30 else "a %d-digit number" % len(str(abs(value)))
    return text


# Columns of /proc/buddyinfo (NR_PAGE_ORDERS: MAX_ORDER before 6.4, MAX_PAGE_ORDER + 1 since "mm, treewide:
# redefine MAX_ORDER sanely") per base page size, from the Kconfig defaults: arm64 ARCH_FORCE_MAX_ORDER
# (FORCE_MAX_ZONEORDER before 6.1) "14"/"12"/"11" for 64K/16K/4K pages, "13"/"11"/"10" since 6.4; powerpc
# "9" (64K) and "13" (4K) on ppc64, "8"/"12" since 6.4; the generic default 11 (x86, s390, riscv, ...).
# Kernels built with other values exist (arm64 4K allows up to 16 columns), so this only says what fits a default.
DEFAULT_ORDERS_BY_PAGE_SIZE = (
    (4096, 11, "x86, arm64, s390, riscv and most others"),
    (4096, 13, "ppc64 with 4 KiB pages"),
    (16384, 12, "arm64 with 16 KiB pages"),
    (65536, 9, "ppc64 with 64 KiB pages"),
    (65536, 14, "arm64 with 64 KiB pages"),
)


def orders_page_size_problem(orders: int, page_size: int) -> t.Optional[str]:
    """Why ``orders`` buddyinfo columns do not fit ``page_size`` on any default kernel config, naming what fits; or None."""
    if any(size == page_size and count == orders for size, count, _arch in DEFAULT_ORDERS_BY_PAGE_SIZE):
        return None
    fits = ["%d KiB (%s)" % (size // 1024, arch) for size, count, arch in DEFAULT_ORDERS_BY_PAGE_SIZE if count == orders]
    return "buddyinfo has %d orders, which no default kernel with %d KiB pages has; %s" % (
        orders, page_size // 1024, ("%d orders fit %s" % (orders, ", ".join(fits))) if fits
        else "no default configuration has %d orders" % orders)


def page_size_of_host() -> int:
    """The running host's base page size in bytes."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - every Linux has it
        return 4096
