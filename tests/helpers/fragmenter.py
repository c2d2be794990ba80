# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fragment this machine's free memory for real, with a bounded footprint.

Two shapes (``--shape``):

``anon``
    Map anonymous memory with MADV_NOHUGEPAGE (so every page is a 4 KiB movable page and
    khugepaged leaves it alone), touch every page, then MADV_DONTNEED every other page. DONTNEED
    frees the page at once (MADV_FREE would only mark it lazily-free and the buddy allocator would
    never see it), so free memory is left in order-0 holes between movable pages: the case
    compaction is for.

``pagecache``
    Write a file in 4 KiB writes (each one its own order-0 page-cache folio; bigger writes or
    readahead would get large folios that cannot be evicted by halves), fsync it so the pages are
    clean, then POSIX_FADV_DONTNEED every other page: clean page cache with order-0 holes between,
    the case drop_caches is for. The file lives in ``--dir`` (must not be tmpfs: shmem is not
    droppable page cache) and is unlinked on exit.

The process prints one JSON line ``{"ready": true, ...}`` on stdout when the shape is built,
then holds it until stdin is closed or it gets SIGTERM/SIGINT, and frees everything on the way
out. Run it as a subprocess (``Fragmenter`` below does that, with RLIMIT_AS as a hard cap, and
kills it in ``stop()``), so a failing test cannot leave gigabytes pinned.
"""

from __future__ import annotations

import argparse
import json
import mmap
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
import typing as t

PAGE = mmap.PAGESIZE
MADV_NOHUGEPAGE = getattr(mmap, "MADV_NOHUGEPAGE", 15)
MADV_DONTNEED = getattr(mmap, "MADV_DONTNEED", 4)
MAX_MIB = 4096  # the shared CI machine has 24 GiB; never hold more than this


def _stop(signum, frame):  # pragma: no cover - signal path
    raise SystemExit(0)


def build_anon(mib: int) -> t.Tuple[mmap.mmap, int]:
    size = mib * 1024 * 1024
    area = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    area.madvise(MADV_NOHUGEPAGE)
    for offset in range(0, size, PAGE):
        area[offset] = 1
    holes = 0
    for offset in range(PAGE, size, 2 * PAGE):
        area.madvise(MADV_DONTNEED, offset, PAGE)
        holes += 1
    return area, holes


def build_pagecache(mib: int, directory: str) -> t.Tuple[str, int]:
    size = mib * 1024 * 1024
    fd, path = tempfile.mkstemp(prefix="memfrag-fragmenter-", dir=directory)
    block = b"\xa5" * PAGE
    try:
        for dummy in range(size // PAGE):
            os.write(fd, block)
        os.fsync(fd)
        holes = 0
        for offset in range(PAGE, size, 2 * PAGE):
            os.posix_fadvise(fd, offset, PAGE, os.POSIX_FADV_DONTNEED)
            holes += 1
    finally:
        os.close(fd)
    return path, holes


def main(argv: t.Optional[t.List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--shape", choices=("anon", "pagecache"), required=True)
    parser.add_argument("--mib", type=int, default=2048, help="footprint before the holes are made (max %d)" % MAX_MIB)
    parser.add_argument("--dir", default="/var/tmp", help="directory for the page-cache file (not tmpfs)")
    args = parser.parse_args(argv)
    if not 0 < args.mib <= MAX_MIB:
        parser.error("--mib must be in 1..%d" % MAX_MIB)
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    started = time.time()
    path = None
    area = None
    try:
        if args.shape == "anon":
            area, holes = build_anon(args.mib)
        else:
            path, holes = build_pagecache(args.mib, args.dir)
        sys.stdout.write(json.dumps({"ready": True, "shape": args.shape, "mib": args.mib, "holes": holes,
                                     "hole_bytes": holes * PAGE, "pid": os.getpid(),
                                     "build_seconds": round(time.time() - started, 2)}) + "\n")
        sys.stdout.flush()
        sys.stdin.read()  # hold the shape until the parent closes stdin
    finally:
        if area is not None:
            area.close()
        if path is not None:
            try:
                os.unlink(path)
            except OSError:
                pass
    return 0


class Fragmenter(object):
    """Run the fragmenter as a child with a hard address-space cap; ``stop()`` always frees it."""

    def __init__(self, shape: str, mib: int = 2048, directory: str = "/var/tmp") -> None:
        self.shape = shape
        self.mib = min(mib, MAX_MIB)
        self.directory = directory
        self.proc = None  # type: t.Optional[subprocess.Popen]
        self.info = {}  # type: t.Dict[str, t.Any]

    def _limit(self) -> None:  # runs in the child before exec
        cap = (self.mib + 512) * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    def start(self) -> t.Dict[str, t.Any]:
        self.proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--shape", self.shape, "--mib", str(self.mib), "--dir", self.directory],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, preexec_fn=self._limit, text=True)
        line = self.proc.stdout.readline()
        if not line:
            proc = self.proc
            self.stop()
            raise RuntimeError("fragmenter exited before it was ready (rc %s)" % proc.returncode)
        self.info = json.loads(line)
        return self.info

    def stop(self) -> None:
        if self.proc is None:
            return
        try:
            if self.proc.poll() is None:
                self.proc.stdin.close()
                try:
                    self.proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=30)
        finally:
            self.proc = None

    def __enter__(self) -> "Fragmenter":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


if __name__ == "__main__":
    sys.exit(main())
