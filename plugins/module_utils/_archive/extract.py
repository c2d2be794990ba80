# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Copy the few members a diagnosis needs out of an untrusted capture (a tar archive or a directory).

Private to the collection. Nothing here calls ``extractall``, creates a link, a device or a FIFO, or opens a
path the archive names outside the run's own directory: every member name is checked (no absolute name, no
``..``, no NUL), links are resolved inside the archive's own namespace (a link whose target leaves it is
refused), and only regular file content is written, by this code, under ``dest`` with ``O_EXCL|O_NOFOLLOW``.
A compression bomb is stopped by three limits: a size cap per member, a cap on the total written, and a cap on
how far into the expanded stream the reader may go (a multiple of the archive's own size), checked before the
reader skips or reads past a member.
"""

import fnmatch
import os
import posixpath
import stat
import tarfile
import typing as t

MAX_LINK_HOPS = 40  # as the kernel's ELOOP limit
MAX_NOTES = 50  # refusal messages kept one by one; the rest are counted
CHUNK = 1024 * 1024

DEFAULT_LIMITS = dict(
    max_member_bytes=256 * 1024 * 1024,
    max_total_bytes=1024 * 1024 * 1024,
    max_ratio=100,
    # A tiny archive may still expand to this much before the ratio applies (tar headers and padding).
    min_expanded_bytes=16 * 1024 * 1024,
)


class ArchiveError(Exception):
    """The whole capture is refused (not an archive, a compression bomb, unreadable)."""


class Member(object):
    """One entry of a capture, as the archive (or directory) declares it, before anything is read."""

    __slots__ = ("name", "kind", "size", "mtime", "link", "handle")

    def __init__(self, name: str, kind: str, size: int, mtime: float, link: t.Optional[str], handle: t.Any) -> None:
        self.name = name  # normalised, relative, "/"-separated
        self.kind = kind  # file, dir, symlink, hardlink, device, fifo, other
        self.size = size
        self.mtime = mtime
        self.link = link  # symlink target as written, or the hard link's member name
        self.handle = handle  # TarInfo, or the absolute path for a directory capture


class Notes(object):
    """Messages about members skipped or refused: the first MAX_NOTES, then a count."""

    def __init__(self) -> None:
        self.items = []  # type: t.List[str]
        self.more = 0

    def add(self, message: str) -> None:
        if len(self.items) < MAX_NOTES:
            self.items.append(message)
        else:
            self.more += 1

    def as_list(self) -> t.List[str]:
        return self.items + (["%d more members skipped" % self.more] if self.more else [])


def clean_name(raw: str) -> t.Tuple[t.Optional[str], t.Optional[str]]:
    """(normalised relative name, None) or (None, why the name is refused)."""
    if "\x00" in raw:
        return None, "its name contains a NUL byte"
    if raw.startswith("/"):
        return None, "absolute name"
    parts = [part for part in raw.split("/") if part not in ("", ".")]
    if ".." in parts:
        return None, "name has a '..' component"
    if not parts:
        return None, "empty name"
    return "/".join(parts), None


def _printable(name: str) -> str:
    text = repr(name[:200])[1:-1]
    return text + ("..." if len(name) > 200 else "")


def _tar_kind(info: tarfile.TarInfo) -> str:
    if info.isreg():
        return "file"
    if info.isdir():
        return "dir"
    if info.issym():
        return "symlink"
    if info.islnk():
        return "hardlink"
    if info.ischr() or info.isblk():
        return "device"
    if info.isfifo():
        return "fifo"
    return "other"


def open_tar(path: str) -> tarfile.TarFile:
    """The archive at ``path`` (gzip, bzip2, xz or none, found by content), or ArchiveError."""
    try:
        return tarfile.open(path, "r:*")
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise ArchiveError("%s is not a readable tar archive (.tar, .tar.gz, .tar.bz2, .tar.xz): %s" % (path, exc))


def tar_members(tar: tarfile.TarFile, archive_size: int, limits: t.Mapping[str, int],
                notes: Notes) -> t.Dict[str, Member]:
    """Every acceptable member by name (a later duplicate replaces an earlier one, as tar does).

    Raises ArchiveError when reading on would take the expanded stream past the ratio limit: the check runs on
    each header, before tarfile skips (decompresses) the member's data.
    """
    budget = max(limits["max_ratio"] * archive_size, limits["min_expanded_bytes"])
    members = {}  # type: t.Dict[str, Member]
    try:
        while True:
            info = tar.next()
            if info is None:
                break
            end = info.offset_data + max(0, info.size)
            if end > budget:
                raise ArchiveError("the archive expands past %d times its size (%d bytes) at member %s: refused as a "
                                   "possible compression bomb" % (limits["max_ratio"], archive_size, _printable(info.name)))
            name, why = clean_name(info.name)
            if name is None:
                notes.add("refused member %s: %s" % (_printable(info.name), why))
                continue
            kind = _tar_kind(info)
            link = info.linkname if kind in ("symlink", "hardlink") else None
            members[name] = Member(name, kind, max(0, info.size), float(info.mtime or 0), link, info)
    except tarfile.TarError as exc:
        raise ArchiveError("the archive is damaged: %s" % exc)
    except (EOFError, OSError, ValueError) as exc:  # truncated or corrupt compressed stream
        raise ArchiveError("the archive could not be read to its end: %s" % exc)
    finally:
        tar.members = []  # tarfile keeps every TarInfo otherwise; we hold our own map
    return members


def dir_members(root: str, notes: Notes, max_entries: int = 500000) -> t.Dict[str, Member]:
    """Every entry under an already-extracted capture directory, by lstat (never following a link)."""
    members = {}  # type: t.Dict[str, Member]
    count = 0
    for current, dirs, files in os.walk(root, followlinks=False):
        for entry in dirs + files:
            count += 1
            if count > max_entries:
                raise ArchiveError("%s holds more than %d entries: refused" % (root, max_entries))
            path = os.path.join(current, entry)
            name = os.path.relpath(path, root).replace(os.sep, "/")
            try:
                st = os.lstat(path)
            except OSError as exc:
                notes.add("skipped %s: %s" % (_printable(name), exc.strerror))
                continue
            link = None
            if stat.S_ISREG(st.st_mode):
                kind = "file"
            elif stat.S_ISDIR(st.st_mode):
                kind = "dir"
            elif stat.S_ISLNK(st.st_mode):
                kind = "symlink"
                try:
                    link = os.readlink(path)
                except OSError:
                    link = ""
            elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                kind = "device"
            elif stat.S_ISFIFO(st.st_mode):
                kind = "fifo"
            else:
                kind = "other"
            members[name] = Member(name, kind, st.st_size, st.st_mtime, link, path)
    return members


def find_top(members: t.Mapping[str, Member], markers: t.Sequence[str]) -> str:
    """The directory the capture lives in: "" when a marker is at the root, else the single top directory
    that holds one (a sosreport is ``sosreport-host-date/...``)."""
    if any(marker in members for marker in markers):
        return ""
    tops = set(name.split("/", 1)[0] for name in members)
    candidates = sorted(top for top in tops if any(top + "/" + marker in members for marker in markers))
    return candidates[0] if candidates else ""


def matches(name: str, patterns: t.Sequence[str]) -> bool:
    """Whether ``name`` matches a pattern whose ``*`` never crosses a ``/``."""
    parts = name.split("/")
    for pattern in patterns:
        pattern_parts = pattern.split("/")
        if len(pattern_parts) == len(parts) and all(
                fnmatch.fnmatchcase(part, pat) for part, pat in zip(parts, pattern_parts)):
            return True
    return False


def resolve(members: t.Mapping[str, Member], name: str, top: str) -> t.Tuple[t.Optional[Member], t.Optional[str]]:
    """The regular-file member that ``name`` is or links to, inside the archive and under ``top``; or
    (None, why not). A symlink target is read relative to the link's directory; an absolute target, or one
    that leaves ``top``, is refused (the link points out of the capture)."""
    member = members.get(name)
    hops = 0
    while member is not None and member.kind in ("symlink", "hardlink"):
        hops += 1
        if hops > MAX_LINK_HOPS:
            return None, "too many levels of links"
        target = member.link or ""
        if member.kind == "symlink":
            if target.startswith("/"):
                return None, "symlink to an absolute path %s points out of the archive" % _printable(target)
            joined = posixpath.normpath(posixpath.join(posixpath.dirname(member.name), target))
        else:
            joined = posixpath.normpath(target)
        if joined.startswith("../") or joined == ".." or joined.startswith("/") or (
                top and not (joined + "/").startswith(top + "/")):
            return None, "%s to %s points out of the archive" % (member.kind, _printable(target))
        member = members.get(joined)
    if member is None:
        return None, "missing (or a link to a missing member)"
    if member.kind != "file":
        return None, "a %s, not a regular file" % member.kind
    return member, None


def _write(dest_root: str, relative: str, source: t.BinaryIO, limit: int) -> int:
    """Copy ``source`` to ``dest_root/relative`` (a new file), at most ``limit`` bytes; returns bytes written.
    Raises ValueError when the source holds more than ``limit``."""
    parts = relative.split("/")
    directory = dest_root
    for part in parts[:-1]:
        directory = os.path.join(directory, part)
        try:
            os.mkdir(directory, 0o700)
        except FileExistsError:
            if not stat.S_ISDIR(os.lstat(directory).st_mode):
                raise ValueError("a member and a directory share the name %s" % _printable(relative))
    path = os.path.join(directory, parts[-1])
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    written = 0
    with os.fdopen(fd, "wb") as out:
        while True:
            chunk = source.read(min(CHUNK, limit + 1 - written))
            if not chunk:
                break
            written += len(chunk)
            if written > limit:
                out.close()
                os.unlink(path)
                raise ValueError("holds more than %d bytes" % limit)
            out.write(chunk)
    return written


def _open_member(member: Member, tar: t.Optional[tarfile.TarFile]) -> t.BinaryIO:
    if tar is not None:
        handle = tar.extractfile(member.handle)
        if handle is None:
            raise ValueError("no data")
        return t.cast(t.BinaryIO, handle)
    # A directory capture: never block on a FIFO swapped in since the walk, never follow a link.
    fd = os.open(member.handle, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ValueError("no longer a regular file")
    return os.fdopen(fd, "rb")


def copy_selected(members: t.Mapping[str, Member], top: str, patterns: t.Sequence[str], dest_root: t.Optional[str],
                  tar: t.Optional[tarfile.TarFile], limits: t.Mapping[str, int],
                  notes: Notes) -> t.Dict[str, t.Any]:
    """Write every member under ``top`` whose name (relative to ``top``) matches ``patterns`` to
    ``dest_root/<relative name>`` as a regular file with the member's mtime (syslog lines carry no year:
    the scanner takes it from the file's mtime). Returns {"files": {relative: bytes}, "bytes": total}.
    With ``dest_root`` None nothing is opened or written: the files are those that would be, with their
    declared sizes (check mode)."""
    prefix = top + "/" if top else ""
    wanted = []  # type: t.List[t.Tuple[str, Member]]
    for name in sorted(members):
        if not name.startswith(prefix):
            continue
        relative = name[len(prefix):]
        member = members[name]
        if member.kind in ("device", "fifo", "other"):
            notes.add("skipped %s: a %s member is never extracted" % (_printable(name), member.kind))
            continue
        if member.kind == "dir" or not matches(relative, patterns):
            continue
        target, why = resolve(members, name, top)
        if target is None:
            notes.add("refused %s: %s" % (_printable(name), why))
            continue
        if target.size > limits["max_member_bytes"]:
            notes.add("skipped %s: %d bytes, over the %d-byte limit per member" % (
                _printable(name), target.size, limits["max_member_bytes"]))
            continue
        wanted.append((relative, target))
    declared = sum(target.size for _relative, target in wanted)
    if declared > limits["max_total_bytes"]:
        raise ArchiveError("the members needed hold %d bytes, over the %d-byte limit: refused" % (
            declared, limits["max_total_bytes"]))
    if dest_root is None:
        return {"files": dict((relative, target.size) for relative, target in wanted), "bytes": declared}
    # In stream order, so a compressed archive is read forward once.
    wanted.sort(key=lambda item: getattr(item[1].handle, "offset", 0))
    files = {}  # type: t.Dict[str, int]
    total = 0
    for relative, target in wanted:
        try:
            source = _open_member(target, tar)
            try:
                written = _write(dest_root, relative, source, min(limits["max_member_bytes"],
                                                                  limits["max_total_bytes"] - total))
            finally:
                source.close()
        except (OSError, ValueError, tarfile.TarError, EOFError) as exc:
            notes.add("skipped %s: %s" % (_printable(prefix + relative), getattr(exc, "strerror", None) or exc))
            continue
        total += written
        mtime = target.mtime
        try:
            os.utime(os.path.join(dest_root, *relative.split("/")), (mtime, mtime))
        except (OSError, OverflowError, ValueError):
            pass
        files[relative] = written
    return {"files": files, "bytes": total}


def read_capture(source: str, markers: t.Sequence[str], patterns_of: t.Callable[[t.Mapping[str, Member], str], t.Sequence[str]],
                 dest_root: t.Optional[str], limits: t.Optional[t.Mapping[str, int]] = None) -> t.Dict[str, t.Any]:
    """Copy what ``patterns_of(members, top)`` selects from the archive or directory ``source`` into
    ``dest_root`` (which must exist, empty, owned by this run); with ``dest_root`` None, only read the
    archive's headers and say what would be copied (every refusal still applies). Returns {"top", "files", "bytes", "notes",
    "newest_mtime", "format"}; raises ArchiveError when the whole capture is refused."""
    merged = dict(DEFAULT_LIMITS)
    merged.update(limits or {})
    notes = Notes()
    try:
        st = os.stat(source)
    except OSError as exc:
        raise ArchiveError("%s: %s" % (source, exc.strerror))
    tar = None  # type: t.Optional[tarfile.TarFile]
    if stat.S_ISDIR(st.st_mode):
        members = dir_members(source, notes)
        kind = "directory"
    elif stat.S_ISREG(st.st_mode):
        tar = open_tar(source)
        kind = "tar"
    else:
        raise ArchiveError("%s is neither a regular file nor a directory" % source)
    try:
        if tar is not None:
            members = tar_members(tar, st.st_size, merged, notes)
        top = find_top(members, markers)
        copied = copy_selected(members, top, patterns_of(members, top), dest_root, tar, merged, notes)
    finally:
        if tar is not None:
            tar.close()
    newest = max([m.mtime for m in members.values() if m.kind == "file"] or [0.0])
    return {"top": top, "files": copied["files"], "bytes": copied["bytes"], "notes": notes.as_list(),
            "newest_mtime": newest, "format": kind, "members": len(members)}
