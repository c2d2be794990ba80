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
A container usually has /proc/sys mounted read-only: the write fails with EROFS or EACCES.
"""


import errno
import os
import threading
import time
import typing as t

from ansible_collections.memfrag.linux.plugins.module_utils._procfs.files import ProcFileError, path_under

DROP_LEVELS = {"pagecache": 1, "slab": 2, "both": 3}


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
            if not str(node).isdigit():
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
    """What a write would hit, without writing (check mode): missing file or read-only mount."""
    if not os.path.exists(path):
        raise TriggerError("missing", _missing_message(path))
    if os.path.islink(path):
        raise TriggerError("io", "%s is a symbolic link; refusing to write through it" % path)
    if not os.access(path, os.W_OK):
        raise TriggerError("read_only", "%s is not writable here (read-only /proc/sys, as in most containers, "
                                        "or not root)" % path)


def write_trigger(path: str, value: str) -> None:
    """Write ``value`` to an existing kernel trigger file. Never creates a file, never follows a link."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW)
    except (IOError, OSError) as exc:
        raise _classify(path, value, exc)
    try:
        os.write(fd, value.encode("ascii"))
    except (IOError, OSError) as exc:
        raise _classify(path, value, exc)
    finally:
        os.close(fd)


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
