# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A real XFS file system on a loop device, fragmented files on it, and processes that hold them open.

``XfsLoop.start()`` installs xfsprogs from Debian when missing (as the VM lab does), makes a sparse image,
attaches it to a free loop device, runs ``mkfs.xfs`` and mounts it; ``stop()`` ends every holder process,
unmounts everything mounted under it (deepest first, lazily when busy), detaches the loop device and
removes the image, whatever state a failed test left. ``fragment()`` writes a file and then punches every
other block and writes it again, so each block lands apart from its neighbours: one extent per block, and a
file ``xfs_fsr`` can rewrite into a few extents (a file that is only punched keeps its holes and cannot be
made contiguous).
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


def fragment(path: str, blocks: int) -> int:
    """Write ``2 * blocks`` blocks, punch every other one and write it again: about 2 * blocks extents."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        chunk = b"m" * (1 << 20)
        left = 2 * blocks * BLOCK
        while left:
            left -= os.write(fd, chunk[:min(left, len(chunk))])
        os.fsync(fd)
        for index in range(blocks):
            if libc.fallocate(fd, FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE, (2 * index + 1) * BLOCK, BLOCK) != 0:
                raise OSError(ctypes.get_errno(), "fallocate punch hole")
        os.fsync(fd)
        block = b"f" * BLOCK
        for index in range(blocks):
            os.pwrite(fd, block, (2 * index + 1) * BLOCK)
        os.fsync(fd)
    finally:
        os.close(fd)
    return nextents(path)


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
