# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A real XFS file system on a loop device, fragmented files on it, and processes that hold them open.

``XfsLoop.start()`` installs xfsprogs from Debian when missing (as the VM lab does), makes a sparse image,
attaches it to a free loop device, runs ``mkfs.xfs`` and mounts it; ``stop()`` ends every holder process,
unmounts everything mounted under it (deepest first, lazily when busy), detaches the loop device and
removes the image, whatever state a failed test left. ``punched()`` and ``interleaved()`` make files of one
extent per block: the first by punching every other block (holes between the extents: what a sparse image
looks like, and nothing can join them), the second without holes, which ``xfs_fsr`` can rewrite into a few
extents.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import re
import signal
import subprocess
import sys
import time
import typing as t

from lab.lab import LabUnavailable, ensure_debs

XFSPROGS = {"mkfs.xfs": "xfsprogs", "xfs_io": "xfsprogs", "xfs_fsr": "xfsprogs"}
FALLOC_FL_KEEP_SIZE = 0x01
FALLOC_FL_PUNCH_HOLE = 0x02
BLOCK = 4096


def _run(cmd: t.List[str], **kwargs: t.Any) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kwargs)


def nextents(path: str) -> int:
    """``fsxattr.nextents`` as ``xfs_io -c stat`` prints it."""
    out = _run(["xfs_io", "-r", "-c", "stat", path]).stdout
    return int(re.search(r"fsxattr\.nextents = (\d+)", out).group(1))


def extsize(path: str) -> int:
    """The extent size hint of a file or directory as ``xfs_io -c extsize`` prints it (``[1048576] /dir``)."""
    out = _run(["xfs_io", "-r", "-c", "extsize", path]).stdout
    return int(re.search(r"\[(\d+)\]", out).group(1))


def _fallocate():
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]

    def call(fd: int, mode: int, offset: int, length: int) -> None:
        if libc.fallocate(fd, mode, offset, length) != 0:
            raise OSError(ctypes.get_errno(), "fallocate")
    return call


def punched(path: str, blocks: int) -> int:
    """Write ``2 * blocks`` blocks and punch every other one: ``blocks`` one-block extents separated by holes.

    Exactly what it says, but no defragmenter can join extents that holes separate (xfs_fsr calls such a
    file already defragmented); ``interleaved`` makes one it can.
    """
    fallocate = _fallocate()
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        chunk = b"m" * (1 << 20)
        left = 2 * blocks * BLOCK
        while left:
            left -= os.write(fd, chunk[:min(left, len(chunk))])
        os.fsync(fd)
        for index in range(blocks):
            fallocate(fd, FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE, (2 * index + 1) * BLOCK, BLOCK)
        os.fsync(fd)
    finally:
        os.close(fd)
    return nextents(path)


def interleaved(path: str, blocks: int, other: t.Optional[str] = None) -> t.Tuple[int, ...]:
    """Files of ``blocks`` blocks, each block its own extent, with no holes: ``path`` and ``other`` are allocated one
    block at a time in turn (each allocation lands after the other file's last block) and written. Without
    ``other`` a spacer file takes its place and is deleted afterwards, so every other block of the region is free
    again. Deterministic (fallocate allocates at once, no delayed allocation), and xfs_fsr can rewrite such a file
    into a few extents. Returns the extent count of each file made."""
    fallocate = _fallocate()
    second = other or path + ".interleave"
    fds = []
    try:
        for name in (path, second):
            fds.append(os.open(name, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644))
        for index in range(blocks):
            for fd in fds:
                fallocate(fd, 0, index * BLOCK, BLOCK)
        chunk = b"f" * (1 << 20)
        for fd in fds if other else fds[:1]:
            for offset in range(0, blocks * BLOCK, len(chunk)):
                os.pwrite(fd, chunk[:min(len(chunk), blocks * BLOCK - offset)], offset)  # unwritten -> written, in place
            os.fsync(fd)
    finally:
        for fd in fds:
            os.close(fd)
        if other is None and len(fds) == 2:
            os.unlink(second)
    return tuple(nextents(name) for name in ([path, other] if other else [path]))


_HOLDER = r"""
import ctypes, os, sys
ctypes.CDLL(None).prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL: gone with the test process
with open("/proc/self/comm", "w") as handle:
    handle.write(sys.argv[1])
fd = os.open(sys.argv[2], os.O_RDWR if sys.argv[3] == "write" else os.O_RDONLY)
sys.stdout.write("ready\n")
sys.stdout.flush()
sys.stdin.read()
"""


class Holder(object):
    """A process named ``comm`` (at most 15 characters) holding ``path`` open, read-only or for writing."""

    def __init__(self, comm: str, path: str, write: bool = False) -> None:
        assert len(comm) <= 15
        self.comm = comm
        self.proc = subprocess.Popen([sys.executable, "-c", _HOLDER, comm, path, "write" if write else "read"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        if self.proc.stdout.readline().strip() != "ready":
            self.stop()
            raise RuntimeError("holder of %s did not start" % path)
        self.pid = self.proc.pid

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream:
                stream.close()


class XfsLoop(object):
    def __init__(self, workdir: str, size_mb: int = 1024) -> None:
        self.workdir = workdir
        self.image = os.path.join(workdir, "xfs.img")
        self.mountpoint = os.path.join(workdir, "mnt")
        self.size_mb = size_mb
        self.device = None  # type: t.Optional[str]
        self.holders = []  # type: t.List[Holder]

    def start(self) -> "XfsLoop":
        if os.geteuid() != 0:
            raise LabUnavailable("a loop device and mount need root")
        ensure_debs(XFSPROGS)
        if "xfs" not in open("/proc/filesystems").read():
            subprocess.run(["modprobe", "xfs"], check=False, capture_output=True)
        os.makedirs(self.mountpoint, exist_ok=True)
        with open(self.image, "wb") as handle:
            handle.truncate(self.size_mb << 20)
        try:
            self.device = _run(["losetup", "--find", "--show", self.image]).stdout.strip()
            _run(["mkfs.xfs", "-q", "-f", self.device])
            _run(["mount", "-t", "xfs", self.device, self.mountpoint])
        except BaseException:
            self.stop()
            raise
        return self

    def hold(self, comm: str, path: str, write: bool = False) -> Holder:
        holder = Holder(comm, path, write)
        self.holders.append(holder)
        return holder

    def mount_tmpfs(self, relative: str) -> str:
        path = os.path.join(self.mountpoint, relative)
        os.makedirs(path, exist_ok=True)
        _run(["mount", "-t", "tmpfs", "-o", "size=1m", "memfrag-test", path])
        return path

    def _mounts_below(self) -> t.List[str]:
        found = []
        with open("/proc/self/mountinfo") as handle:
            for line in handle:
                point = line.split(" ")[4].replace("\\040", " ")
                if point == self.mountpoint or point.startswith(self.mountpoint + "/"):
                    found.append(point)
        return sorted(found, key=len, reverse=True)

    def stop(self) -> None:
        for holder in self.holders:
            try:
                holder.stop()
            except Exception:  # pylint: disable=broad-except  # teardown goes on whatever one step did
                pass
        self.holders = []
        for point in self._mounts_below():
            if subprocess.run(["umount", point], capture_output=True, check=False).returncode != 0:
                time.sleep(0.5)
                subprocess.run(["umount", "-l", point], capture_output=True, check=False)
        if self.device:
            subprocess.run(["losetup", "-d", self.device], capture_output=True, check=False)
            self.device = None
        if os.path.exists(self.image):
            os.unlink(self.image)
        try:
            os.rmdir(self.mountpoint)  # only when empty: never deletes what a failed unmount left visible
        except OSError:
            pass


def stop_on_signal(loop: XfsLoop) -> None:
    """Benchmarks run outside pytest: unmount and detach on SIGTERM/SIGINT too."""
    def handler(signum: int, _frame: t.Any) -> None:
        loop.stop()
        sys.exit(128 + signum)
    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
