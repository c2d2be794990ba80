# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Hostile /proc-style trees for tests: FIFOs, devices, sockets, directories and links where files belong.

Shared by the hostile-input regression tests, the fuzz tests and the fuzz benchmark. Everything is made
under a directory the caller owns (pytest's tmp_path) and removed with it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import stat

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURE_TREE = os.path.join(os.path.dirname(HERE), "fixtures", "proc", "buddyinfo-x86-3zone-el8")

# Kinds of node that can stand where a kernel file is expected.
FIFO = "fifo"
CHAR_DEVICE = "char-device"
SOCKET = "socket"
DIRECTORY = "directory"
LINK_OUT = "link-out"
LINK_IN = "link-in"
KINDS = (FIFO, CHAR_DEVICE, SOCKET, DIRECTORY, LINK_OUT, LINK_IN)

# A process status file a pid directory can hold, with 8 MiB resident.
STATUS = "Name:\tbash\nVmRSS:\t    8192 kB\n"


class Hang(Exception):
    """The code under test did not return in time (a blocking open or read, a runaway loop)."""


@contextlib.contextmanager
def no_hang(seconds: int = 10):
    """Raise Hang in the body after ``seconds``: a blocked open() on a FIFO is interrupted, not waited for."""
    def _alarm(signum, frame):
        raise Hang("did not return within %d s" % seconds)

    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def copy_fixture(root: str) -> str:
    """A complete, valid proc tree (buddyinfo, zoneinfo, pagetypeinfo, vmstat, meminfo, sys/) at ``root``."""
    shutil.copytree(FIXTURE_TREE, root, symlinks=True)
    return root


def _cleared(root: str, relative: str) -> str:
    """``root/relative`` with nothing there (its parent made), ready for a new node."""
    path = os.path.join(root, relative)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)
    return path


def write(root: str, relative: str, content) -> str:
    path = _cleared(root, relative)
    with open(path, "wb") as handle:
        handle.write(content.encode("utf-8", "surrogateescape") if isinstance(content, str) else content)
    return path


def place(root: str, relative: str, kind: str, outside: str) -> str:
    """Replace ``root/relative`` with a node of ``kind``; ``outside`` is a regular file outside the root."""
    path = _cleared(root, relative)
    if kind == FIFO:
        os.mkfifo(path)
    elif kind == CHAR_DEVICE:
        if os.geteuid() != 0:
            os.mkfifo(path)  # only root makes device nodes; a FIFO is the next most hostile thing
        else:
            os.mknod(path, 0o600 | stat.S_IFCHR, os.makedev(1, 3))  # /dev/null's numbers: harmless if opened
    elif kind == SOCKET:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(path)
        except OSError:  # a path too long for sun_path: fall back to a FIFO
            os.mkfifo(path)
        finally:
            sock.close()
    elif kind == DIRECTORY:
        os.mkdir(path)
    elif kind == LINK_OUT:
        os.symlink(outside, path)
    elif kind == LINK_IN:
        os.symlink(os.path.join(root, "meminfo"), path)
    else:
        raise ValueError(kind)
    return path


def snapshot(top: str):
    """Every path under ``top`` with its type, size, mode and mtime: equal before and after means nothing was written."""
    result = {}
    for directory, dirs, files in os.walk(top):
        for name in dirs + files:
            full = os.path.join(directory, name)
            info = os.lstat(full)
            result[os.path.relpath(full, top)] = (stat.S_IFMT(info.st_mode), info.st_size if stat.S_ISREG(info.st_mode) else 0,
                                                  stat.S_IMODE(info.st_mode), info.st_mtime_ns)
    return result
