# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Safety guards shared by the reclaim triggers: run lock, cooldown state, dirty limit, audit log.

These are the parts that must never be skipped, whatever a playbook says, so they live beside the
modules rather than in a role:

- one run at a time per host: a non-blocking ``flock`` on a file under /run (cleared at boot, so
  a crashed run cannot block the host forever; the kernel drops the lock when the process dies);
- a cooldown per trigger: the time of the last run is kept under /var/lib/memfrag (survives a
  reboot, so rebooting a host does not make it eligible again);
- the audit log: one JSON line per run, root-only, appended with O_APPEND so concurrent writers
  never interleave within a line.
"""


import errno
import fcntl
import json
import os
import tempfile
import typing as t

LOCK_NAME = "reclaim.lock"
STATE_SUFFIX = ".state.json"


class GuardError(Exception):
    """A guard refused the run (``reason`` is a short code: lock_held, cooldown, dirty, io)."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        self.message = message
        super().__init__(message)


def _ensure_private_dir(path: str) -> None:
    if not os.path.isdir(path):
        os.makedirs(path, 0o700)
    elif os.path.islink(path):
        raise GuardError("io", "%s is a symbolic link; refusing to use it" % path)


class RunLock(object):
    """An exclusive, non-blocking lock on ``lock_dir/reclaim.lock`` (one for both triggers)."""

    def __init__(self, lock_dir: str) -> None:
        self.path = os.path.join(lock_dir, LOCK_NAME)
        self.lock_dir = lock_dir
        self.fd = None  # type: t.Optional[int]

    def acquire(self) -> None:
        try:
            _ensure_private_dir(self.lock_dir)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        except (IOError, OSError) as exc:
            raise GuardError("io", "cannot open lock file %s: %s" % (self.path, exc.strerror or exc))
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except (IOError, OSError) as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise GuardError("lock_held", "another memfrag reclaim run holds %s on this host; refusing to run "
                                              "two reclaim triggers at once" % self.path)
            raise GuardError("io", "cannot lock %s: %s" % (self.path, exc.strerror or exc))
        self.fd = fd

    def held_elsewhere(self) -> bool:
        """Check-mode probe: True when another process holds the lock. Creates nothing."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW)
        except (IOError, OSError):
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except (IOError, OSError):
            return True
        finally:
            os.close(fd)  # closing drops our probe lock
        return False

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def state_path(state_dir: str, action: str) -> str:
    return os.path.join(state_dir, action + STATE_SUFFIX)


def read_state(state_dir: str, action: str) -> t.Tuple[t.Optional[t.Dict[str, t.Any]], t.List[str]]:
    """The last-run record of ``action``, or None; a corrupt file is a warning, never a crash."""
    path = state_path(state_dir, action)
    try:
        with open(path) as handle:
            data = json.load(handle)
    except (IOError, OSError) as exc:
        if exc.errno == errno.ENOENT:
            return None, []
        return None, ["cannot read cooldown state %s (%s); treating as never run" % (path, exc.strerror or exc)]
    except ValueError:
        return None, ["cooldown state %s is not JSON; treating as never run" % path]
    if not isinstance(data, dict) or not isinstance(data.get("last_run"), (int, float)):
        return None, ["cooldown state %s has no numeric last_run; treating as never run" % path]
    return data, []


def cooldown_remaining(state: t.Optional[t.Dict[str, t.Any]], cooldown: int, now: float) -> float:
    """Seconds left before ``action`` may run again (0 when it may run now or cooldown is 0)."""
    if not state or cooldown <= 0:
        return 0.0
    last = float(state["last_run"])
    if last > now:
        # A clock that went backwards (or a state file from the future) must not block forever.
        return 0.0
    return max(0.0, last + cooldown - now)


def write_state(state_dir: str, action: str, data: t.Dict[str, t.Any]) -> None:
    """Replace the state file atomically (temp file in the same directory, then rename)."""
    _ensure_private_dir(state_dir)
    fd, tmp = tempfile.mkstemp(prefix="." + action, dir=state_dir)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, state_path(state_dir, action))
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def append_audit(path: str, record: t.Dict[str, t.Any]) -> None:
    """Append one JSON line to the audit log (directory 0700, file 0600, never through a symlink)."""
    _ensure_private_dir(os.path.dirname(path) or ".")
    line = json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, line.encode("utf-8"))
    finally:
        os.close(fd)


def dirty_bytes(meminfo: t.Dict[str, int]) -> int:
    """Data not yet on disk: Dirty + Writeback (bytes)."""
    return int(meminfo.get("Dirty", 0)) + int(meminfo.get("Writeback", 0))
