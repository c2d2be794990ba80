# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Writing the fleet report directory on the controller: safe file names from host names, and a new
directory swapped in for the old one, so a reader never sees a half-written report.

Inventory host names are untrusted (inventories are generated from cloud tags): ``../../x``, names with
``/``, NUL, a leading dot or 300 characters. ``safe_file_stem`` turns any name into one path component that
cannot leave its directory, and two different names never into the same one (percent-encoding is
injective; ``~`` never appears in an encoded name, so the ``~<hash>`` suffixes used for over-long names
and for collisions on case-insensitive file systems cannot meet an encoded name). Files are created with
``O_EXCL | O_NOFOLLOW`` in a directory this process just made, so a collision is seen, never written over.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import json
import os
import shutil
import string
import tempfile
import typing as t

from ansible_collections.memfrag.linux.plugins.plugin_utils._fleet_html import iter_html
from ansible_collections.memfrag.linux.plugins.plugin_utils._fleet_prometheus import prometheus_text
from ansible_collections.memfrag.linux.plugins.plugin_utils._fleet_report import timestamp

__all__ = ["FORMATS", "MARKER", "NewReportDir", "ReportDirError", "check_dest", "safe_file_stem", "write_report"]

FORMATS = ("html", "json", "prometheus")

MARKER = ".memfrag-report"  # in every report directory we write: only such a directory is ever replaced
_SAFE = frozenset((string.ascii_letters + string.digits + "_.-").encode("ascii"))
_MAX_STEM = 200  # bytes; a file name may have 255, and ".prom" and a suffix must fit
# What the report role wrote before it wrote this marker: a directory holding only these may be replaced too.
_EARLIER_REPORT = frozenset(("index.html", "report.json", "metrics"))
_RENAME_EXCHANGE = 2  # linux/fs.h
_AT_FDCWD = -100


class ReportDirError(Exception):
    """The report directory cannot be written or replaced (the message says why and what to do)."""


def _digest(name: str, size: int = 16) -> str:
    return hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:size]


def safe_file_stem(name: str) -> str:
    """One path component for ``name``: letters, digits, ``_``, ``-`` and ``.`` kept (a leading dot encoded),
    every other byte of its UTF-8 as ``%XX``; over 200 bytes, cut and suffixed with ``~`` and a hash."""
    data = str(name).encode("utf-8", "surrogatepass")
    out = []
    for i, byte in enumerate(data):
        if byte in _SAFE and not (i == 0 and byte == 0x2E):
            out.append(chr(byte))
        else:
            out.append("%%%02X" % byte)
    stem = "".join(out)
    if not stem:
        return "~"
    if len(stem) > _MAX_STEM:
        stem = stem[:_MAX_STEM - 17] + "~" + _digest(name)
    return stem


def _exchange(a: str, b: str) -> bool:
    """Swap two directories in one step (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    renameat2 = getattr(_libc(), "renameat2", None)
    if renameat2 is None:  # not glibc >= 2.28 (musl, macOS)
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    renameat2.restype = ctypes.c_int
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):  # kernel or file system without it
        return False
    raise OSError(err, os.strerror(err), b)


def _libc() -> t.Any:
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


def _sync_filesystem(path: str) -> None:
    """Flush the file system holding ``path`` (Linux syncfs), else every file system (sync)."""
    syncfs = getattr(_libc(), "syncfs", None)
    if syncfs is not None:
        fd = os.open(path, os.O_RDONLY)
        try:
            if syncfs(fd) == 0:
                return
        finally:
            os.close(fd)
    os.sync()


def _is_ours(path: str) -> bool:
    names = set(os.listdir(path))
    return MARKER in names or names <= _EARLIER_REPORT


def _resolve(dest: t.Any) -> t.Tuple[str, str, str]:
    if not isinstance(dest, str) or not dest.strip() or "\0" in dest:
        raise ReportDirError("the report directory must be a non-empty path, got %r" % (dest,))
    # A symlinked dest is followed: the report replaces the directory it points to, the link stays.
    real = os.path.realpath(os.path.abspath(os.path.expanduser(dest)))
    parent, base = os.path.split(real)
    if not base:
        raise ReportDirError("%s cannot be a report directory (it would be replaced whole)" % real)
    return real, parent, base


def check_dest(dest: str) -> str:
    """The resolved report directory, if a report may be written there (absent, empty, or an earlier report)."""
    real = _resolve(dest)[0]
    if os.path.lexists(real):
        if not os.path.isdir(real):
            raise ReportDirError("%s exists and is not a directory" % real)
        if not _is_ours(real):
            raise ReportDirError(
                "%s holds files that are not a memfrag report (no %s): refusing to replace it; point the report "
                "at a directory of its own (it is written new and swapped in whole)" % (real, MARKER))
    return real


class NewReportDir(object):
    """A new report directory beside ``dest``; ``commit()`` swaps it in for the old one, ``abort()`` removes it.

    Until the swap the new directory is private (mode 0700) and ``dest`` still holds the previous report."""

    def __init__(self, dest: str, fsync: bool = True) -> None:
        self.dest = check_dest(dest)
        self.parent, base = os.path.split(self.dest)
        self.fsync = fsync
        self.bytes = {}  # type: t.Dict[str, int]
        self._names = set()  # type: t.Set[str]
        try:
            os.makedirs(self.parent, exist_ok=True)
            # Beside dest: the swap is a rename, so both must be on one file system.
            self.path = tempfile.mkdtemp(prefix="." + base + ".new-", dir=self.parent)
        except OSError as exc:
            raise ReportDirError("cannot create the new report directory beside %s (its parent must be writable): %s"
                                 % (self.dest, exc))
        self._committed = False

    # -------------------------------------------------------------- writing

    def makedirs(self, rel: str) -> None:
        os.makedirs(os.path.join(self.path, rel), mode=0o755, exist_ok=True)

    def write(self, rel: str, chunks: t.Union[str, bytes, t.Iterable[t.Union[str, bytes]]]) -> str:
        """Write a file at ``rel`` (created exclusively); returns ``rel``. Raises FileExistsError on a collision."""
        path = os.path.join(self.path, rel)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0), 0o644)
        size = 0
        try:
            os.fchmod(fd, 0o644)  # whatever the umask: the report is for readers (a web server, node_exporter)
            with os.fdopen(fd, "wb", buffering=1 << 16) as f:
                fd = -1
                for chunk in ([chunks] if isinstance(chunks, (str, bytes)) else chunks):
                    data = chunk.encode("utf-8", "surrogatepass") if isinstance(chunk, str) else chunk
                    f.write(data)
                    size += len(data)
        finally:
            if fd >= 0:
                os.close(fd)
        self.bytes[rel] = size
        return rel

    def write_named(self, subdir: str, name: str, suffix: str, chunks: t.Union[str, bytes]) -> str:
        """Write the file of host ``name`` in ``subdir``; returns its path relative to the report directory.

        The name is ``safe_file_stem(name) + suffix``; where the file system folds case (two hosts differing
        only in case) it gets ``~`` and a hash of the host name instead."""
        stem = safe_file_stem(name)
        for candidate in (stem, stem[:_MAX_STEM - 17] + "~" + _digest(name), stem[:_MAX_STEM - 65] + "~" + _digest(name, 64)):
            rel = os.path.join(subdir, candidate + suffix)
            if rel in self._names:
                continue
            try:
                self.write(rel, chunks)
            except FileExistsError:
                continue
            self._names.add(rel)
            return rel
        raise ReportDirError("no free file name for host %r in %s" % (name, subdir))

    # -------------------------------------------------------------- swap

    def commit(self) -> str:
        """Swap the new directory in; the previous report is removed after the swap. Returns the directory."""
        self.write(MARKER, "memfrag.linux fleet report; this directory is replaced whole on the next run\n")
        os.chmod(self.path, 0o755)
        if self.fsync:
            # Every file on disk before the swap is (one syncfs, not 10,000 fsyncs: 0.3 s against 50 s here).
            _sync_filesystem(self.path)
        old = None
        try:
            os.rename(self.path, self.dest)  # no previous report: one atomic step
        except OSError as exc:
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY, errno.EISDIR, errno.ENOTDIR):
                raise ReportDirError("cannot move the new report to %s: %s" % (self.dest, exc))
            if not _is_ours(self.dest):  # checked again: it may have changed since we started
                raise ReportDirError("%s now holds files that are not a memfrag report: refusing to replace it" % self.dest)
            if _exchange(self.path, self.dest):
                old = self.path  # the new directory's name now holds the previous report
            else:
                # Two renames: for a moment dest is missing, but it never holds a half-written report.
                aside = tempfile.mkdtemp(prefix="." + os.path.basename(self.dest) + ".old-", dir=self.parent)
                os.rmdir(aside)
                os.rename(self.dest, aside)
                try:
                    os.rename(self.path, self.dest)
                except OSError:
                    os.rename(aside, self.dest)
                    raise
                old = aside
        self._committed = True
        if self.fsync:
            self._fsync_dir(self.parent)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return self.dest

    def abort(self) -> None:
        if not self._committed:
            shutil.rmtree(self.path, ignore_errors=True)

    @staticmethod
    def _fsync_dir(path: str) -> None:
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        except OSError:
            return
        try:
            os.fsync(fd)
        except OSError:
            pass
        finally:
            os.close(fd)


def write_report(dest: str, report: t.Mapping[str, t.Any], formats: t.Iterable[str] = FORMATS,
                 title: str = "memfrag fleet report", fsync: bool = True) -> t.Dict[str, t.Any]:
    """Write ``index.html``, ``report.json`` and ``metrics/<host>.prom`` (as ``formats`` asks) into a new directory
    and swap it in for ``dest``. Returns the directory, the file of each format, each host's Prometheus file
    (relative paths) and the bytes written."""
    formats = set(formats)
    unknown = formats - set(FORMATS)
    if unknown:
        raise ReportDirError("unknown report formats %s (known: %s)" % (", ".join(sorted(unknown)), ", ".join(FORMATS)))
    new = NewReportDir(dest, fsync=fsync)
    files = {}  # type: t.Dict[str, str]
    prometheus = {}  # type: t.Dict[str, str]
    try:
        if "prometheus" in formats:
            new.makedirs("metrics")
            generated = timestamp(report.get("generated")) if report.get("generated") else None
            for row in report["hosts"]:
                prometheus[row["host"]] = new.write_named("metrics", row["host"], ".prom", prometheus_text(row, generated))
        if "json" in formats:
            # Which file is whose: host names are made safe for file names, so they are not the file names.
            data = dict(report, prometheus_files=prometheus) if prometheus else report
            files["json"] = new.write("report.json", json.dumps(data, separators=(",", ":"), sort_keys=True) + "\n")
        if "html" in formats:
            files["html"] = new.write("index.html", iter_html(report, title))
        path = new.commit()
    except BaseException:
        new.abort()
        raise
    return {"dest": path, "files": files, "prometheus_files": prometheus,
            "bytes": {"html": new.bytes.get("index.html", 0), "json": new.bytes.get("report.json", 0),
                      "prometheus": sum(new.bytes.get(rel, 0) for rel in prometheus.values())}}
