# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every process a test session starts is gone when the session ends.

The session process becomes the "child subreaper" of its descendants (prctl PR_SET_CHILD_SUBREAPER): a process
whose parent dies (a daemonized ssh ControlPersist master, the per-connection children of a killed sshd) is
re-parented to the session instead of to init, so it stays findable as a descendant. At the end, after every
fixture has cleaned up, ``survivors()`` lists what is still alive; the suites fail on any and kill them.
"""

from __future__ import annotations

import ctypes
import os
import signal
import time
import typing as t

PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> bool:
    """Make this process the reaper of its orphaned descendants (Linux 3.4+); False where that is refused."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def reap_zombies() -> None:
    """Collect the exit status of dead children (orphans re-parented here that have exited)."""
    while True:
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _stat(pid: str) -> t.Optional[t.Tuple[int, str]]:
    """(parent pid, state) of ``pid``, or None when it is gone."""
    try:
        with open("/proc/%s/stat" % pid) as f:
            text = f.read()
    except OSError:
        return None
    # The command name is in parentheses and may itself hold spaces or parentheses.
    fields = text[text.rindex(")") + 2:].split()
    return int(fields[1]), fields[0]


def _cmdline(pid: int) -> str:
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
    except OSError:
        return "?"


def descendants(root: t.Optional[int] = None) -> t.List[t.Tuple[int, str]]:
    """Living (non-zombie) descendants of ``root`` (this process): ``[(pid, command line)]``."""
    root = os.getpid() if root is None else root
    children = {}  # type: t.Dict[int, t.List[t.Tuple[int, str]]]
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        stat = _stat(name)
        if stat is not None:
            children.setdefault(stat[0], []).append((int(name), stat[1]))
    found, todo = [], [root]
    while todo:
        for pid, state in children.get(todo.pop(), []):
            todo.append(pid)
            if state not in ("Z", "X"):
                found.append((pid, _cmdline(pid)))
    return found


def survivors(grace: float = 5.0, ignore: t.Container[int] = ()) -> t.List[t.Tuple[int, str]]:
    """Descendants (but those in ``ignore``) still alive after ``grace`` seconds (exiting ones get that long)."""
    deadline = time.time() + grace
    while True:
        reap_zombies()
        left = [(pid, cmd) for pid, cmd in descendants() if pid not in ignore]
        if not left or time.time() >= deadline:
            return left
        time.sleep(0.2)


def kill(processes: t.Iterable[t.Tuple[int, str]]) -> None:
    for pid, _cmd in processes:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    time.sleep(0.2)
    reap_zombies()


def check_nothing_survives(what: str) -> t.Optional[str]:
    """After the session: None, or a message listing the processes left (which are then killed)."""
    left = survivors()
    if not left:
        return None
    kill(left)
    return "%d process(es) started by %s were still alive at the end (killed now):\n%s" % (
        len(left), what, "\n".join("  %d %s" % (pid, cmd[:200]) for pid, cmd in left))
