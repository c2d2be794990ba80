# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The two one-shot kernel triggers: compact_memory and drop_caches, and a bounded sync.

Kernel facts (mm/compaction.c, fs/drop_caches.c):
- /proc/sys/vm/compact_memory exists only with CONFIG_COMPACTION, is mode 0200, and from ~6.5
  accepts only ``1`` (anything else is EINVAL); a write compacts every zone of every node and
  returns when done.
- /sys/devices/system/node/nodeN/compact (NUMA only) compacts one node; any write is accepted.
- /proc/sys/vm/drop_caches takes 1 (page cache), 2 (slab: dentries and inodes), 3 (both); only
  clean, unmapped page cache is dropped, which is why a sync comes first.
- /proc/sys/vm/nr_hugepages (CONFIG_HUGETLBFS) takes a count of huge pages; the kernel allocates
  them at once (compacting and reclaiming to find free blocks of the huge page order) and returns,
  and gives back free huge pages when the count is lowered.
- <cgroup v2>/memory.reclaim (5.19+) takes a byte count; the kernel reclaims about that much from
  the cgroup's LRU lists, coldest first, and answers EAGAIN when it reclaimed less.
A container usually has /proc/sys mounted read-only: the write fails with EROFS or EACCES.
Trigger files are opened with O_NONBLOCK and must be regular files (procfs, sysfs and cgroupfs
files are): a FIFO planted in a fake tree would otherwise block the run while it holds the lock.
"""


import errno
import os
import stat
import re
import threading
import time
import typing as t

from ansible_collections.memfrag.linux.plugins.module_utils._procfs.files import ProcFileError, path_under

DROP_LEVELS = {"pagecache": 1, "slab": 2, "both": 3}
# MAX_NUMNODES is at most 1 << 10 on every architecture: a node id has at most 4 ASCII digits.
NODE_ID = re.compile(r"\A[0-9]{1,4}\Z")
# Trigger and tunable files hold one short number.
MAX_VALUE_BYTES = 64


class TriggerError(Exception):
    """The trigger could not be written; ``reason`` is missing, read_only, rejected or io."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        self.message = message
        super().__init__(message)


def compact_paths(proc_root: str, sys_root: str, nodes: t.Sequence[t.Union[int, str]]) -> t.List[str]:
    """Trigger files for ``nodes``: ["all"] is /proc/sys/vm/compact_memory, else one file per node."""
    try:
        if [str(n) for n in nodes] == ["all"]:
            return [path_under(proc_root, "sys/vm/compact_memory")]
        paths = []
        for node in nodes:
            # str.isdigit() is true for '²' and other non-ASCII digits; the kernel's node ids are ASCII.
            if not NODE_ID.match(str(node)):
                raise TriggerError("rejected", "node %r is not 'all' or a NUMA node id" % (node,))
            paths.append(path_under(sys_root, "devices/system/node/node%d/compact" % int(node)))
        return paths
    except ProcFileError as exc:
        raise TriggerError("io", str(exc))


def drop_caches_path(proc_root: str) -> str:
    try:
        return path_under(proc_root, "sys/vm/drop_caches")
    except ProcFileError as exc:
        raise TriggerError("io", str(exc))


def _missing_message(path: str) -> str:
    if path.endswith("compact_memory"):
        return "%s does not exist: this kernel was built without CONFIG_COMPACTION, so memory cannot be compacted" % path
    if path.endswith("/compact"):
        return "%s does not exist: no such NUMA node, or a kernel without CONFIG_NUMA/CONFIG_COMPACTION" % path
    return "%s does not exist on this kernel" % path


def check_writable(path: str) -> None:
    """What a write would hit, without writing (check mode): missing, not a regular file, read-only."""
    try:
        info = os.lstat(path)
    except OSError:
        raise TriggerError("missing", _missing_message(path))
    if stat.S_ISLNK(info.st_mode):
        raise TriggerError("io", "%s is a symbolic link; refusing to write through it" % path)
    if not stat.S_ISREG(info.st_mode):
        raise TriggerError("io", "%s is not a regular file; a kernel trigger always is; refusing to write to it" % path)
    if not os.access(path, os.W_OK):
        raise TriggerError("read_only", "%s is not writable here (read-only /proc/sys, as in most containers, "
                                        "or not root)" % path)


def write_trigger(path: str, value: str) -> None:
    """Write ``value`` to an existing kernel trigger file. Never creates a file, never follows a link."""
    # O_TRUNC as the shell's `echo 1 >` does: kernel files ignore it, a fake tree gets the value alone.
    fd = _open_trigger(path, os.O_WRONLY | os.O_TRUNC, value)
    try:
        os.write(fd, value.encode("ascii"))
    except (IOError, OSError) as exc:
        raise _classify(path, value, exc)
    finally:
        os.close(fd)


def _open_trigger(path: str, flags: int, value: str = "") -> int:
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except (IOError, OSError) as exc:
        raise _classify(path, value, exc)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise TriggerError("io", "%s is not a regular file; a kernel trigger always is; refusing to use it" % path)
    return fd


def read_number(path: str) -> int:
    """The one non-negative integer a tunable file such as nr_hugepages holds."""
    fd = _open_trigger(path, os.O_RDONLY)
    try:
        raw = os.read(fd, MAX_VALUE_BYTES + 1)
    except (IOError, OSError) as exc:
        raise _classify(path, "", exc)
    finally:
        os.close(fd)
    text = raw.decode("ascii", "replace").strip()
    if len(raw) > MAX_VALUE_BYTES or not re.match(r"\A[0-9]{1,18}\Z", text):
        raise TriggerError("io", "%s does not hold one number (got %r)" % (path, text[:40]))
    return int(text)


def _classify(path: str, value: str, exc: EnvironmentError) -> TriggerError:
    code = exc.errno
    if code in (errno.ENOENT, errno.ENOTDIR):
        return TriggerError("missing", _missing_message(path))
    if code in (errno.EROFS, errno.EACCES, errno.EPERM):
        return TriggerError("read_only", "cannot write %s: %s (read-only /proc/sys, as in most containers, or not root)"
                            % (path, exc.strerror or exc))
    if code == errno.EINVAL:
        return TriggerError("rejected", "the kernel rejected %r written to %s (EINVAL)" % (value, path))
    if code == errno.ELOOP:
        return TriggerError("io", "%s is a symbolic link; refusing to write through it" % path)
    if code == errno.ENXIO:
        return TriggerError("io", "%s is a FIFO or socket, not a kernel trigger; refusing to write to it" % path)
    if code == errno.EAGAIN:
        return TriggerError("partial", "the kernel did less than asked after writing %r to %s (EAGAIN)" % (value, path))
    return TriggerError("io", "cannot write %s: %s" % (path, exc.strerror or exc))


def bounded_sync(timeout: float, sync: t.Callable[[], None] = os.sync) -> t.Tuple[bool, float]:
    """Run sync() in a daemon thread; return (finished within ``timeout``, seconds waited).

    sync() cannot be interrupted; when it outlives the timeout the thread is left to finish on its
    own (the module process exits anyway) and the caller refuses to go on.
    """
    started = time.monotonic()
    worker = threading.Thread(target=sync, name="memfrag-sync")
    worker.daemon = True
    worker.start()
    worker.join(timeout)
    return (not worker.is_alive()), round(time.monotonic() - started, 3)
