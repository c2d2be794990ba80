# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Walking paths and directory trees without following symlinks or crossing mounts, within a budget.

Everything is opened relative to an already opened directory (``dir_fd``) with ``O_NOFOLLOW``, so a
directory swapped for a symlink mid-walk makes the open fail instead of leading elsewhere, and every
directory opened is checked with ``fstat`` to be on the file system being scanned (a mount point is a
directory whose ``st_dev`` differs: it is reported, never entered).

Cost: a file is opened only when it is large enough to hold ``min_extents`` extents (an extent maps at
least one block, so ``extents <= allocated blocks``). Where XFS bulkstat is allowed (root), the sizes come
from the inode table in batches and the walk itself reads directories only, as ``find -type f`` does;
otherwise each regular file costs one ``fstatat``.
"""


import errno
import heapq
import itertools
import operator
import os
import stat
import sys
import time
import typing as t

from ansible_collections.memfrag.linux.plugins.module_utils._xfs.ioctl import fsgetxattr

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
# O_NONBLOCK: a file swapped for a FIFO does not block the open, and a file with a write lease held by
# another process makes the open fail (EWOULDBLOCK) instead of waiting for the lease break.
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0)
_PATH_DIR_FLAGS = getattr(os, "O_PATH", os.O_RDONLY) | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
# Open directories held at once (one per level of the tree being walked).
MAX_DEPTH = 200
# Directory entries handled at once: per-entry tests run in C over a chunk; memory stays bounded in huge directories.
_CHUNK = 4096
_IS_DIR = operator.methodcaller("is_dir", follow_symlinks=False)
_INODE = os.DirEntry.inode
_NAME = operator.attrgetter("name")
# Python 3.7+ scans a directory from its descriptor; 3.6 through the /proc/self/fd link of it, which
# names exactly the opened directory (no path is looked up again).
_SCANDIR_FD = sys.version_info >= (3, 7)


class PathRefused(Exception):
    """A path cannot be examined (``reason`` says why, in words for the report)."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__("%s: %s" % (path, reason))


class Budget(object):
    """The work a scan may do: directory entries examined and seconds; records why it stopped."""

    def __init__(self, max_files: int, time_limit: float, clock: t.Callable[[], float] = time.monotonic) -> None:
        self.max_files = max_files
        self.time_limit = time_limit
        self.clock = clock
        self.started = clock()
        self.entries = 0
        self.stopped = None  # type: t.Optional[str]

    def elapsed(self) -> float:
        return self.clock() - self.started

    def time_left(self) -> bool:
        if self.stopped is None and self.time_limit and self.elapsed() >= self.time_limit:
            self.stopped = "time_limit"
        return self.stopped is None


class Found(object):
    """The ``limit`` files with the most extents (a heap: memory stays bounded), and how many qualified."""

    def __init__(self, limit: int) -> None:
        self.limit = max(1, limit)
        self.total = 0
        self._heap = []  # type: t.List[t.Tuple[int, int, t.Dict[str, t.Any]]]
        self._keys = set()  # type: t.Set[t.Tuple[int, int]]

    def add(self, key: t.Tuple[int, int], extents: int, record: t.Callable[[], t.Dict[str, t.Any]]) -> None:
        if key in self._keys:  # a hard link or a file reached twice (a path and a process)
            return
        self._keys.add(key)
        self.total += 1
        # (extents, -order found): among equal counts the file found first stays.
        rank = (extents, -self.total)
        if len(self._heap) < self.limit:
            heapq.heappush(self._heap, rank + (record(),))
        elif rank > self._heap[0][:2]:
            heapq.heapreplace(self._heap, rank + (record(),))

    def seen(self, key: t.Tuple[int, int]) -> bool:
        return key in self._keys

    def worst_first(self) -> t.List[t.Dict[str, t.Any]]:
        return [entry[2] for entry in sorted(self._heap, key=lambda entry: (-entry[0], -entry[1]))]


def resolve(path: str) -> t.Tuple[int, str, os.stat_result]:
    """Open the parent directory of absolute ``path`` component by component, never through a symlink.

    Returns ``(parent_fd, last_name, lstat of the last component)``; the caller closes parent_fd.
    Raises PathRefused naming the component that is a symlink, missing or not a directory.
    """
    if not path.startswith("/"):
        raise PathRefused(path, "not an absolute path")
    parts = [part for part in os.path.normpath(path).split("/") if part]
    fd = os.open("/", _PATH_DIR_FLAGS)
    walked = ""
    try:
        for part in parts[:-1]:
            walked += "/" + part
            try:
                child = os.open(part, _PATH_DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                raise PathRefused(path, _component_problem(fd, part, walked, exc))
            os.close(fd)
            fd = child
        name = parts[-1] if parts else "."
        try:
            info = os.stat(name, dir_fd=fd, follow_symlinks=False)
        except OSError as exc:
            raise PathRefused(path, exc.strerror or str(exc))
        if stat.S_ISLNK(info.st_mode):
            raise PathRefused(path, "is a symbolic link; symlinks are never followed")
        return fd, name, info
    except BaseException:
        os.close(fd)
        raise


def _component_problem(fd: int, part: str, walked: str, exc: OSError) -> str:
    try:
        if stat.S_ISLNK(os.stat(part, dir_fd=fd, follow_symlinks=False).st_mode):
            return "%s is a symbolic link; symlinks are never followed" % walked
    except OSError:
        pass
    return "%s: %s" % (walked, exc.strerror or exc)


def open_file(dir_fd: int, name: str, expect: t.Optional[t.Tuple[int, int]] = None) -> t.Tuple[int, os.stat_result]:
    """Open a regular file read-only relative to ``dir_fd``; refuse anything else or a swapped file."""
    fd = os.open(name, _FILE_FLAGS, dir_fd=dir_fd)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        if expect is not None and (info.st_dev, info.st_ino) != expect:
            raise OSError(errno.ESTALE, "replaced while being examined")
        return fd, info
    except BaseException:
        os.close(fd)
        raise


def open_dir(dir_fd: int, name: str, expect: t.Optional[t.Tuple[int, int]] = None) -> int:
    """Open a directory relative to ``dir_fd`` without following a symlink; refuse a swapped one."""
    fd = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    if expect is not None:
        info = os.fstat(fd)
        if (info.st_dev, info.st_ino) != expect:
            os.close(fd)
            raise OSError(errno.ESTALE, "replaced while being examined")
    return fd


def count_extents(dir_fd: int, name: str, expect: t.Optional[t.Tuple[int, int]] = None) -> t.Tuple[int, os.stat_result]:
    """``fsx_nextents`` of one file, and its fstat."""
    fd, info = open_file(dir_fd, name, expect)
    try:
        return fsgetxattr(fd)["nextents"], info
    finally:
        os.close(fd)


def _scandir(fd: int) -> t.Any:
    return os.scandir(fd) if _SCANDIR_FD else os.scandir("/proc/self/fd/%d" % fd)


class _Dir(object):
    """An open directory whose subdirectories are still to be opened (it is closed after the last one)."""

    __slots__ = ("fd", "pending")

    def __init__(self, fd: int, pending: int) -> None:
        self.fd = fd
        self.pending = pending

    def release(self) -> None:
        self.pending -= 1
        if self.pending <= 0 and self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class TreeScan(object):
    """Walk one directory tree of one XFS file system, adding files with >= min_extents to ``found``.

    Depth first; at most one open descriptor per level (a directory stays open until its last
    subdirectory has been opened from it). The loop over directory entries is the hot path of the scan
    and stays small: with bulkstat candidates an entry costs a dict lookup unless it is one of them.
    """

    def __init__(self, mount: str, dev: int, block_size: int, min_extents: int, budget: Budget, found: Found,
                 record: t.Callable[[str, str, int, os.stat_result], t.Dict[str, t.Any]],
                 candidates: t.Optional[t.Dict[int, int]] = None,
                 describe_dev: t.Callable[[int], str] = lambda dev: "another file system",
                 mount_points: t.Optional[t.Dict[str, str]] = None) -> None:
        self.mount = mount
        self.dev = dev
        self.min_bytes = min_extents * block_size
        self.min_extents = min_extents
        self.budget = budget
        self.found = found
        self.record = record
        self.candidates = candidates  # inode -> blocks from bulkstat, or None: stat each file
        # Candidates not met yet: once every one has been, the rest of the tree has nothing to find.
        self.remaining = set(candidates) if candidates is not None else None
        self.describe_dev = describe_dev
        # Mount point paths (what is mounted there, in words): a bind mount of this same file system has the same
        # st_dev, and one of a parent inside its own tree would make the walk go round; its path gives it away.
        self.mount_points = mount_points or {}
        self.skipped = []  # type: t.List[t.Dict[str, str]]
        # too_small: entries other than directories never opened (small files, and symlinks, devices, sockets).
        self.counts = {"directories": 0, "too_small": 0, "opened": 0, "errors": 0}

    def _skip(self, path: str, reason: str) -> None:
        if len(self.skipped) < 100:
            self.skipped.append({"path": path, "reason": reason})

    def walk(self, top_fd: int, top_path: str) -> None:
        """Walk the directory open as ``top_fd`` (closed here), reported as ``top_path``."""
        stack = []  # type: t.List[t.Tuple[_Dir, str, str, int]]  (parent, name, path, depth)
        try:
            try:
                top_links = os.fstat(top_fd).st_nlink
            except OSError:
                os.close(top_fd)
                raise
            self._visit(top_fd, top_path.rstrip("/") or "/", 0, stack, top_links)
            while stack and self.budget.stopped is None and self.budget.time_left() and self.remaining != set():
                parent, name, path, depth = stack.pop()
                fd, links = self._open_dir(parent, name, path)
                if fd >= 0:
                    self._visit(fd, path, depth, stack, links)
        finally:
            for parent, _name, _path, _depth in stack:
                if parent.fd >= 0:
                    os.close(parent.fd)
                    parent.fd = -1

    def _visit(self, fd: int, path: str, depth: int, stack: t.List[t.Tuple[_Dir, str, str, int]], links: int) -> None:
        """Read one directory, count the extents of its large files, queue its subdirectories.

        ``links`` is the directory's link count: XFS keeps it at 2 + its subdirectories, so at 2 no entry is a
        directory and the per-entry type test is skipped (a subdirectory made after the fstat is missed, as one
        made after the directory was read would be).
        """
        try:
            subdirs, big = self._read_dir(fd, path, links == 2)
            for name, ino in big:
                self._count(fd, path, name, ino)
        except BaseException:
            os.close(fd)
            raise
        if subdirs and depth + 1 >= MAX_DEPTH:
            self._skip(path, "deeper than %d directories; %d subdirectories not walked" % (MAX_DEPTH, len(subdirs)))
            subdirs = []
        if not subdirs:
            os.close(fd)
            return
        node = _Dir(fd, len(subdirs))
        prefix = path if path != "/" else ""
        for name in reversed(subdirs):
            stack.append((node, name, prefix + "/" + name, depth + 1))

    def _open_dir(self, parent: _Dir, name: str, path: str) -> t.Tuple[int, int]:
        """``(fd, link count)`` of a subdirectory, or ``(-1, 0)`` when it is not to be walked."""
        if path in self.mount_points:
            parent.release()
            self._skip(path, "mount point of %s; not crossed" % self.mount_points[path])
            return -1, 0
        try:
            fd = os.open(name, _DIR_FLAGS, dir_fd=parent.fd)
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                self.counts["errors"] += 1
                self._skip(path, exc.strerror or str(exc))
            return -1, 0
        finally:
            parent.release()
        try:
            info = os.fstat(fd)
        except OSError:
            os.close(fd)
            raise
        if info.st_dev != self.dev:
            os.close(fd)
            self._skip(path, "mount point of %s; not crossed" % self.describe_dev(info.st_dev))
            return -1, 0
        return fd, info.st_nlink

    def _read_dir(self, fd: int, path: str, leaf: bool = False) -> t.Tuple[t.List[str], t.List[t.Tuple[str, int]]]:
        """Subdirectory names and (name, inode) of the files large enough to open; counts the rest.

        Entries are taken in chunks and tested with map/compress, so the per-entry work runs in C: with bulkstat
        candidates an entry that is not one costs a set lookup (and a d_type test unless ``leaf``: the directory
        has no subdirectory), no system call.
        """
        subdirs = []  # type: t.List[str]
        big = []  # type: t.List[t.Tuple[str, int]]
        candidates = self.candidates
        min_bytes = self.min_bytes
        budget = self.budget
        others = 0
        self.counts["directories"] += 1
        try:
            with _scandir(fd) as listing:
                while True:
                    chunk = list(itertools.islice(listing, _CHUNK))
                    if not chunk:
                        break
                    if budget.max_files:
                        room = budget.max_files - budget.entries
                        if len(chunk) > room:
                            chunk = chunk[:max(0, room)]
                            budget.stopped = budget.stopped or "max_files"
                    budget.entries += len(chunk)
                    if leaf:
                        dirs = None  # type: t.Optional[t.List[bool]]
                        others += len(chunk)
                    else:
                        dirs = list(map(_IS_DIR, chunk))
                        found_dirs = len(subdirs)
                        subdirs.extend(map(_NAME, itertools.compress(chunk, dirs)))
                        others += len(chunk) - (len(subdirs) - found_dirs)
                    if candidates is not None:
                        # Candidates are regular files, so a directory's inode never matches: no need to leave them out.
                        if not candidates.keys().isdisjoint(map(_INODE, chunk)):
                            met = [entry for entry in chunk if entry.inode() in candidates]
                            self.remaining.difference_update(entry.inode() for entry in met)
                            big.extend((entry.name, entry.inode()) for entry in met if entry.is_file(follow_symlinks=False))
                    else:
                        for entry in (chunk if dirs is None else itertools.compress(chunk, map(operator.not_, dirs))):
                            if entry.is_file(follow_symlinks=False) and entry.stat(follow_symlinks=False).st_blocks * 512 >= min_bytes:
                                big.append((entry.name, entry.inode()))
                    if budget.stopped or not budget.time_left():
                        break
        except OSError as exc:
            self.counts["errors"] += 1
            self._skip(path, "cannot read directory: %s" % (exc.strerror or exc))
        self.counts["too_small"] += others - len(big)
        return subdirs, big

    def _count(self, fd: int, path: str, name: str, ino: int) -> None:
        if self.found.seen((self.dev, ino)):
            return
        full = (path if path != "/" else "") + "/" + name
        self.counts["opened"] += 1
        try:
            extents, info = count_extents(fd, name, (self.dev, ino))
        except OSError as exc:
            if exc.errno != errno.ENOENT:  # removed since the directory was read: nothing to say
                self.counts["errors"] += 1
                self._skip(full, exc.strerror or str(exc))
            return
        if extents >= self.min_extents:
            self.found.add((info.st_dev, info.st_ino), extents, lambda: self.record(full, self.mount, extents, info))
