# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Safety guards shared by the reclaim triggers: run lock, cooldown state, dirty limit, audit log.

These are the parts that must never be skipped, whatever a playbook says, so they live beside the
modules rather than in a role. They fail closed: when a guard cannot do its job (the state cannot be
read or saved, the audit log cannot be opened), nothing is triggered.

- one run at a time per host: a non-blocking ``flock`` on a file under /run (cleared at boot, so
  a crashed run cannot block the host forever; the kernel drops the lock when the process dies);
- a cooldown per action: the time of the last run is kept under /var/lib/memfrag (survives a
  reboot, so rebooting a host does not make it eligible again);
- the audit log: one JSON line per run, root-only, appended with O_APPEND so concurrent writers
  never interleave within a line.

Every file is opened with O_NOFOLLOW and O_NONBLOCK and checked to be a regular file before it is
read or written: a FIFO planted where a state file or the audit log belongs would otherwise block
the module forever while it holds the run lock.
"""


import errno
import fcntl
import json
import math
import os
import stat
import tempfile
import typing as t

LOCK_NAME = "reclaim.lock"
STATE_SUFFIX = ".state.json"
# A state file is one small JSON object; anything bigger is not ours.
MAX_STATE_BYTES = 65536
# Timestamps are seconds since the epoch; 1e11 is the year 5138. Past that a "time" is garbage.
MAX_TIMESTAMP = 1e11
# Longest integer literal accepted in a state file (json would otherwise build 4,300-digit ints).
MAX_INT_DIGITS = 20


class GuardError(Exception):
    """A guard refused the run (``reason`` is a short code: lock_held, cooldown, dirty, state, io)."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        self.message = message
        super().__init__(message)


def open_regular(path: str, flags: int, mode: int = 0o600, what: str = "file") -> int:
    """``os.open`` that never blocks, never follows a final symlink and accepts only a regular file.

    Raises GuardError("io") naming ``path``; ENOENT is re-raised as OSError for callers that treat
    a missing file as "never run".
    """
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0), mode)
    except (IOError, OSError) as exc:
        if exc.errno == errno.ENOENT:
            raise
        if exc.errno == errno.ELOOP:
            raise GuardError("io", "%s %s is a symbolic link; refusing to use it" % (what, path))
        if exc.errno == errno.ENXIO:
            raise GuardError("io", "%s %s is a FIFO or socket, not a regular file; refusing to use it" % (what, path))
        raise GuardError("io", "cannot open %s %s: %s" % (what, path, exc.strerror or exc))
    try:
        info = os.fstat(fd)
    except OSError as exc:  # pragma: no cover - fstat on an open fd does not fail
        os.close(fd)
        raise GuardError("io", "cannot stat %s %s: %s" % (what, path, exc.strerror or exc))
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise GuardError("io", "%s %s is not a regular file (%s); refusing to use it" % (what, path, _kind(info.st_mode)))
    return fd


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISDIR, "a directory"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def ensure_private_dir(path: str, create: bool = True) -> None:
    """Make sure ``path`` is a real directory (not a symlink), created 0700 when absent.

    A symlinked or world-writable directory is refused: another user could swap the state or audit
    file under us, or the cooldown would be kept somewhere nobody reads it again.
    """
    try:
        info = os.lstat(path)
    except OSError as exc:
        if exc.errno != errno.ENOENT:
            raise GuardError("io", "cannot inspect %s: %s" % (path, exc.strerror or exc))
        if not create:
            return
        try:
            os.makedirs(path, 0o700)
        except OSError as exc2:
            raise GuardError("io", "cannot create %s: %s" % (path, exc2.strerror or exc2))
        info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode):
        raise GuardError("io", "%s is a symbolic link; refusing to use it" % path)
    if not stat.S_ISDIR(info.st_mode):
        raise GuardError("io", "%s is not a directory (%s)" % (path, _kind(info.st_mode)))
    if info.st_mode & stat.S_IWOTH and not info.st_mode & stat.S_ISVTX:
        raise GuardError("io", "%s is writable by every user; refusing to keep guard files there" % path)


class RunLock(object):
    """An exclusive, non-blocking lock on ``lock_dir/reclaim.lock`` (one for every reclaim action)."""

    def __init__(self, lock_dir: str) -> None:
        self.path = os.path.join(lock_dir, LOCK_NAME)
        self.lock_dir = lock_dir
        self.fd = None  # type: t.Optional[int]

    def acquire(self) -> None:
        ensure_private_dir(self.lock_dir)
        try:
            fd = open_regular(self.path, os.O_RDWR | os.O_CREAT, 0o600, "lock file")
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
            fd = open_regular(self.path, os.O_RDONLY, what="lock file")
        except (GuardError, IOError, OSError):
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


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise ValueError("an integer of %d digits" % len(text))
    return int(text)


def _no_constant(name: str) -> float:
    raise ValueError("%s is not a number" % name)


def read_state(state_dir: str, action: str) -> t.Optional[t.Dict[str, t.Any]]:
    """The last-run record of ``action``, or None when it never ran.

    A state that exists but cannot be trusted (not a regular file, unreadable, not JSON, no finite
    ``last_run`` in range) raises GuardError("state"): the cooldown cannot be judged, so nothing runs.
    """
    ensure_private_dir(state_dir, create=False)
    path = state_path(state_dir, action)
    try:
        fd = open_regular(path, os.O_RDONLY, what="cooldown state")
    except (IOError, OSError) as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise GuardError("state", "cannot read cooldown state %s: %s" % (path, exc.strerror or exc))
    except GuardError as exc:
        raise GuardError("state", exc.message + "; remove it to let reclaim run again")
    try:
        raw = os.read(fd, MAX_STATE_BYTES + 1)
    except OSError as exc:
        raise GuardError("state", "cannot read cooldown state %s: %s" % (path, exc.strerror or exc))
    finally:
        os.close(fd)
    problem = None
    data = None  # type: t.Any
    if len(raw) > MAX_STATE_BYTES:
        problem = "is larger than %d bytes" % MAX_STATE_BYTES
    else:
        try:
            data = json.loads(raw.decode("utf-8"), parse_int=_bounded_int, parse_constant=_no_constant)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            problem = "is not valid JSON (%s)" % str(exc)[:80]
    if problem is None:
        last = data.get("last_run") if isinstance(data, dict) else None
        if isinstance(last, bool) or not isinstance(last, (int, float)):
            problem = "has no numeric last_run"
        elif not (math.isfinite(float(last)) and 0 <= last <= MAX_TIMESTAMP):
            problem = "has a last_run out of range (%.6g)" % last
    if problem:
        raise GuardError("state", "cooldown state %s %s; the cooldown cannot be judged, so nothing is triggered "
                                  "(remove the file to let reclaim run again)" % (path, problem))
    return data


def cooldown_remaining(state: t.Optional[t.Dict[str, t.Any]], cooldown: int, now: float) -> float:
    """Seconds left before the action may run again (0 when it may run now or cooldown is 0)."""
    if not state or cooldown <= 0:
        return 0.0
    last = float(state["last_run"])
    if last > now:
        # A clock that went backwards (or a state file from the future) must not block forever.
        return 0.0
    return max(0.0, last + cooldown - now)


def write_state(state_dir: str, action: str, data: t.Dict[str, t.Any]) -> None:
    """Replace the state file atomically (temp file in the same directory, then rename)."""
    ensure_private_dir(state_dir)
    try:
        fd, tmp = tempfile.mkstemp(prefix="." + action, dir=state_dir)
    except OSError as exc:
        raise GuardError("io", "cannot write cooldown state in %s: %s" % (state_dir, exc.strerror or exc))
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, state_path(state_dir, action))
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, (IOError, OSError)):
            raise GuardError("io", "cannot write cooldown state in %s: %s" % (state_dir, exc.strerror or exc))
        raise


def restore_state(state_dir: str, action: str, previous: t.Optional[t.Dict[str, t.Any]]) -> None:
    """Put back the record that was there before a run that then wrote nothing (None: remove it)."""
    if previous is None:
        try:
            os.unlink(state_path(state_dir, action))
        except OSError:
            pass
    else:
        write_state(state_dir, action, previous)


class AuditLog(object):
    """The audit log, opened before anything is triggered and kept open for the run.

    ``open()`` refuses (GuardError) a symlink, a FIFO, a directory or an unwritable file, so a run
    that cannot be audited never reaches a trigger.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd = None  # type: t.Optional[int]

    def open(self) -> None:
        ensure_private_dir(os.path.dirname(self.path) or ".")
        try:
            fd = open_regular(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600, "audit log")
        except (IOError, OSError) as exc:
            raise GuardError("io", "cannot open audit log %s: %s" % (self.path, exc.strerror or exc))
        try:
            os.fchmod(fd, 0o600)
        except OSError as exc:
            os.close(fd)
            raise GuardError("io", "cannot make audit log %s private: %s" % (self.path, exc.strerror or exc))
        self.fd = fd

    def write(self, record: t.Dict[str, t.Any]) -> None:
        if self.fd is None:
            raise GuardError("io", "audit log %s is not open" % self.path)
        line = json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n"
        try:
            os.write(self.fd, line.encode("utf-8"))
        except OSError as exc:
            raise GuardError("io", "cannot write audit log %s: %s" % (self.path, exc.strerror or exc))

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def append_audit(path: str, record: t.Dict[str, t.Any]) -> None:
    """Append one JSON line to the audit log (directory 0700, file 0600, never through a symlink or to a FIFO)."""
    log = AuditLog(path)
    log.open()
    try:
        log.write(record)
    finally:
        log.close()


def dirty_bytes(meminfo: t.Dict[str, int]) -> int:
    """Data not yet on disk: Dirty + Writeback (bytes)."""
    return int(meminfo.get("Dirty", 0)) + int(meminfo.get("Writeback", 0))
