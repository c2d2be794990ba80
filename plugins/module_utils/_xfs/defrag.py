# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fix fragmented XFS files at the source: ``xfs_fsr`` per file, extent size hints on directories.

What ``xfs_fsr FILE`` does (xfsprogs fsr/xfs_fsr.c, and XFS_IOC_SWAPEXT in the kernel): it fsyncs the file,
copies it with O_DIRECT into an unlinked temporary file in the same directory (so it needs that much free
space there), then asks the kernel to swap the two files' extents. The kernel refuses the swap with EBUSY
when the file's change or modify time differs from the one fsr read before copying, and kernels up to 4.x
also when the file is memory-mapped. So a write during the copy makes fsr give up on that file and the
data stays as it was; the copy was work for nothing. Writes through an existing shared writable mapping
are only seen through those timestamps, whose granularity leaves a small window. Hence the policy here:
a file that any process holds open for writing, or maps shared and writable, is refused unless the caller
says ``allow_busy`` -- a running VM's disk image is exactly such a file: stop the VM or accept the risk.
xfs_fsr also skips files marked immutable, append-only or no-defrag. It reports to syslog, not to its
output, when stdin is not a terminal; the extent counts measured before and after are the result here.

An extent size hint (``xfs_io -c 'extsize N' DIR``) on a directory sets XFS_XFLAG_EXTSZINHERIT: files
created in it afterwards allocate in units of N bytes, so random or sparse writes (VM images, databases)
stay in few extents. It changes nothing for files that exist.
"""


import os
import re
import stat
import time
import typing as t

from ansible_collections.memfrag.linux.plugins.module_utils._procfs.numbers import NumberError, parse_count
from ansible_collections.memfrag.linux.plugins.module_utils._xfs import mounts as mounts_mod, processes, walk
from ansible_collections.memfrag.linux.plugins.module_utils._xfs.ioctl import FS_XFLAG_EXTSZINHERIT, fsgetxattr

IO_CLASSES = {
    "idle": ["-c", "3"],              # only when no other process wants the disk (CFQ/BFQ honour it)
    "best-effort": ["-c", "2", "-n", "7"],
    "none": None,
}
# Seconds between timeout's TERM and KILL for a child that does not stop.
KILL_AFTER = 10
# XFS caps extent size hints at MAXEXTLEN blocks and 1 GiB (xfs_extent_size_hint checks).
MAX_EXTSIZE = 1 << 30
# ASCII digits only: \d also takes other scripts' digits ("١٦m" was 16 MiB).
_SIZE = re.compile(r"^\s*([0-9]+)\s*([kmg]?)i?b?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}

Runner = t.Callable[[t.List[str]], t.Tuple[int, str, str]]


def parse_size(value: t.Any) -> int:
    """``1m``, ``16M``, ``64k``, ``1048576`` -> bytes. Raises ValueError naming the accepted forms."""
    match = _SIZE.match(str(value))
    if not match:
        raise ValueError("an extent size hint is bytes or a number with k, m or g (1m, 16m), got %r" % (value,))
    # Bounded before int(): 5,000 digits raised Python's digit-limit error, shown as the message.
    try:
        count = parse_count(match.group(1), "extent size hint")
    except NumberError:
        raise ValueError("an extent size hint is at most 1g (XFS's limit), got a %d-digit number" % len(match.group(1)))
    return count * _UNITS[match.group(2).lower()]


def inspect(path: str, mounts: t.Sequence[t.Mapping[str, t.Any]]) -> t.Dict[str, t.Any]:
    """Extent count and attributes of a file or directory on XFS, opened without following symlinks.

    Raises walk.PathRefused (symlink, missing, not on XFS, not a regular file or directory).
    """
    try:
        parent_fd, name, info = walk.resolve(path)
    except OSError as exc:
        raise walk.PathRefused(path, exc.strerror or str(exc))
    try:
        mount = mounts_mod.mount_of_device(mounts, info.st_dev)
        if mount is None or mount["fstype"] != "xfs":
            raise walk.PathRefused(path, "%s file system, not XFS" % (mount["fstype"] if mount else "unknown"))
        if stat.S_ISDIR(info.st_mode):
            flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
        elif stat.S_ISREG(info.st_mode):
            flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY
        else:
            raise walk.PathRefused(path, "not a regular file or directory")
        try:
            fd = os.open(name, flags, dir_fd=parent_fd)
        except OSError as exc:
            raise walk.PathRefused(path, exc.strerror or str(exc))
        try:
            opened = os.fstat(fd)
            if (opened.st_dev, opened.st_ino) != (info.st_dev, info.st_ino):
                raise walk.PathRefused(path, "replaced while being examined")
            attrs = fsgetxattr(fd)
            block_size = os.fstatvfs(fd).f_bsize
        except OSError as exc:
            raise walk.PathRefused(path, exc.strerror or str(exc))
        finally:
            os.close(fd)
    finally:
        os.close(parent_fd)
    attrs.update(dev=info.st_dev, ino=info.st_ino, size=info.st_size, directory=stat.S_ISDIR(info.st_mode),
                 mount=mount["mount"], block_size=block_size)
    return attrs


def fsr_command(tools: t.Mapping[str, str], path: str, seconds: int, io_class: str) -> t.List[str]:
    """``timeout -k 10 S [ionice -c 3] xfs_fsr -v PATH`` as an argument list."""
    command = [tools["timeout"], "-k", str(KILL_AFTER), str(max(1, int(seconds)))]
    if IO_CLASSES[io_class] is not None:
        command += [tools["ionice"]] + IO_CLASSES[io_class]
    return command + [tools["xfs_fsr"], "-v", path]


def extsize_command(tools: t.Mapping[str, str], path: str, size: int) -> t.List[str]:
    return [tools["xfs_io"], "-c", "extsize %d" % size, path]


def busy_reason(holders: t.Sequence[t.Mapping[str, t.Any]]) -> t.Optional[str]:
    """Why the file counts as being written, or None."""
    writers = [holder for holder in holders if holder.get("write")]
    if not writers:
        return None
    named = ", ".join("%s(%d)%s" % (holder.get("comm") or "?", holder["pid"], " mapped shared" if holder.get("mapped") else "")
                      for holder in writers[:5])
    return ("open for writing by %s: xfs_fsr would copy it for nothing if it is written meanwhile "
            "(the swap is refused), so stop the writer or set allow_busy" % named)


class Defrag(object):
    """One xfs_defrag run: files defragmented in order within one time budget, hints set on directories."""

    def __init__(self, tools: t.Mapping[str, str], runner: Runner, proc_root: str, time_limit: float,
                 io_class: str, allow_busy: bool, min_extents: int, check_mode: bool,
                 clock: t.Callable[[], float] = time.monotonic) -> None:
        self.tools = tools
        self.runner = runner
        self.proc_root = proc_root
        self.io_class = io_class
        self.allow_busy = allow_busy
        self.min_extents = min_extents
        self.check_mode = check_mode
        self.clock = clock
        self.deadline = clock() + time_limit
        self.mounts, self.warnings = mounts_mod.read_mounts(proc_root)

    def _holders(self, attrs: t.Mapping[str, t.Any], path: str) -> t.List[t.Dict[str, t.Any]]:
        by_id = dict((mount["id"], mounts_mod.device(mount)) for mount in self.mounts)
        key = (attrs["dev"], attrs["ino"])
        return processes.holders(self.proc_root, {key: path}, by_id.get).get(key, [])

    def file(self, path: str) -> t.Dict[str, t.Any]:
        entry = {"path": path, "extents_before": None, "extents_after": None, "changed": False}  # type: t.Dict[str, t.Any]
        try:
            before = inspect(path, self.mounts)
        except walk.PathRefused as exc:
            entry.update(action="refused", reason=exc.reason)
            return entry
        if before["directory"]:
            entry.update(action="refused", reason="a directory; xfs_fsr defragments files (use dirs for a hint)")
            return entry
        entry["extents_before"] = entry["extents_after"] = before["nextents"]
        if before["nextents"] < self.min_extents:
            entry.update(action="unchanged", reason="%d extents, fewer than min_extents %d" % (before["nextents"], self.min_extents))
            return entry
        holders = self._holders(before, path)
        entry["open_by"] = holders
        busy = busy_reason(holders)
        if busy and not self.allow_busy:
            entry.update(action="refused", reason=busy)
            return entry
        left = self.deadline - self.clock()
        if left < 1:
            entry.update(action="not_started", reason="the time limit was used up by the files before it")
            return entry
        if self.check_mode:
            entry.update(action="would_defragment")
            return entry
        command = fsr_command(self.tools, path, left, self.io_class)
        started = self.clock()
        rc, out, err = self.runner(command)
        entry.update(command=command, rc=rc, seconds=round(self.clock() - started, 3))
        try:
            after = inspect(path, self.mounts)
            entry["extents_after"] = after["nextents"]
        except walk.PathRefused as exc:
            entry.update(action="failed", reason="cannot measure it after xfs_fsr: %s" % exc.reason)
            return entry
        entry["changed"] = entry["extents_after"] != entry["extents_before"]
        if rc in (124, 137):
            entry.update(action="timed_out", reason="xfs_fsr stopped by the time limit; the file is as it was or fully swapped")
        elif rc != 0:
            entry.update(action="failed", reason=(err or out).strip()[-500:] or "xfs_fsr exited with %d" % rc)
        elif entry["extents_after"] < entry["extents_before"]:
            entry["action"] = "defragmented"
        else:
            entry.update(action="unchanged", reason="xfs_fsr left it at %d extents (busy, or no contiguous free space "
                                                    "to copy it into; xfs_fsr logs why to syslog)" % entry["extents_after"])
        return entry

    def hint(self, path: str, size: int) -> t.Dict[str, t.Any]:
        entry = {"path": path, "extsize_before": None, "extsize_after": None, "changed": False}  # type: t.Dict[str, t.Any]
        try:
            before = inspect(path, self.mounts)
        except walk.PathRefused as exc:
            entry.update(action="refused", reason=exc.reason)
            return entry
        if not before["directory"]:
            entry.update(action="refused", reason="not a directory; a hint on the directory applies to files created in it")
            return entry
        if size % before["block_size"] or size > MAX_EXTSIZE:
            entry.update(action="refused", reason="extent size hint %d is not a multiple of the block size %d up to 1 GiB"
                         % (size, before["block_size"]))
            return entry
        inherited = bool(before["xflags"] & FS_XFLAG_EXTSZINHERIT)
        entry["extsize_before"] = before["extsize"] if inherited else 0
        entry["extsize_after"] = entry["extsize_before"]
        if entry["extsize_before"] == size:
            entry["action"] = "unchanged"
            return entry
        if self.check_mode:
            entry.update(action="would_set", changed=True, extsize_after=size)
            return entry
        command = extsize_command(self.tools, path, size)
        rc, out, err = self.runner(command)
        entry.update(command=command, rc=rc)
        try:
            after = inspect(path, self.mounts)
        except walk.PathRefused as exc:
            entry.update(action="failed", reason="cannot read the hint back: %s" % exc.reason)
            return entry
        entry["extsize_after"] = after["extsize"] if after["xflags"] & FS_XFLAG_EXTSZINHERIT else 0
        entry["changed"] = entry["extsize_after"] != entry["extsize_before"]
        if rc != 0 or entry["extsize_after"] != size:
            entry.update(action="failed", reason=(err or out).strip()[-500:] or "the hint reads back as %d" % entry["extsize_after"])
        else:
            entry["action"] = "set"
        return entry


def tools_needed(files: t.Sequence[str], dirs: t.Sequence[str], io_class: str) -> t.List[t.Tuple[str, str]]:
    """(program, package that provides it) for what this run will execute."""
    needed = []
    if files:
        needed += [("xfs_fsr", "xfsprogs"), ("timeout", "coreutils")]
        if IO_CLASSES[io_class] is not None:
            needed.append(("ionice", "util-linux"))
    if dirs:
        needed.append(("xfs_io", "xfsprogs"))
    return needed


def summary_lines(files: t.Sequence[t.Mapping[str, t.Any]], dirs: t.Sequence[t.Mapping[str, t.Any]]) -> t.List[str]:
    """What an operator reads: each file's and directory's before -> after and what was done (or why not)."""
    lines = []
    for entry in files:
        why = "" if not entry.get("reason") else ": %s" % entry["reason"]
        lines.append("%s: %s -> %s extents (%s%s)" % (
            entry["path"], _count(entry.get("extents_before")), _count(entry.get("extents_after")), entry["action"], why))
    for entry in dirs:
        why = "" if not entry.get("reason") else ": %s" % entry["reason"]
        lines.append("%s: extent size hint %s -> %s bytes (%s%s)" % (
            entry["path"], _count(entry.get("extsize_before")), _count(entry.get("extsize_after")), entry["action"], why))
    return lines


def _count(value: t.Optional[int]) -> str:
    return "?" if value is None else str(value)
