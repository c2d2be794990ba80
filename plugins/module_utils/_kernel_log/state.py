# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""How far an incremental kernel log scan got: per file, for the journal and for /dev/kmsg.

A file is known by (device, inode) plus a hash of its first bytes, and resumes at the byte offset
after the last complete line read. When the inode matches but the head differs, or the file is
now shorter than the offset, it was truncated or replaced: it is read again from the start, never
skipped. A file with a new inode whose head matches a known file (logrotate's copytruncate, or
``messages.1`` compressed into ``messages.2.gz``) resumes at the known offset, so rotation neither
loses nor repeats events. The journal resumes after its cursor, /dev/kmsg after its sequence
number within the same boot.
"""


import errno
import hashlib
import json
import os
import re
import stat
import tempfile
import typing as t

VERSION = 1
HEAD_BYTES = 4096
MAX_STATE_BYTES = 16 * 1024 * 1024
_SHA1 = re.compile(r"^[0-9a-f]{40}$")
# Offsets, devices and inodes are unsigned 64-bit values at most; anything else is not a state we wrote.
_U64 = 2 ** 64


def empty_state() -> t.Dict[str, t.Any]:
    """The state of a scan that has seen nothing: every source is read from its start (or ``since``)."""
    return {"version": VERSION, "files": [], "journal": {}, "kmsg": {}}


def next_state(state: t.Mapping[str, t.Any]) -> t.Dict[str, t.Any]:
    """The state a scan starts writing: the journal cursor and ring-buffer position carried over from ``state`` until
    the scan moves them, and the file records rebuilt from what this scan reads."""
    new = empty_state()
    new["journal"] = dict(state.get("journal") or {})
    new["kmsg"] = dict(state.get("kmsg") or {})
    return new


def _open_state(path: str) -> t.BinaryIO:
    """Open without blocking and only as a regular file (a FIFO or device named as state_file is refused)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def state_path_problem(path: str) -> t.Optional[str]:
    """Why ``path`` cannot be the state file (it exists and is not a regular file), or None."""
    try:
        st = os.stat(path)
    except OSError:
        return None  # missing (first run) or unreadable: load_state says which
    if not stat.S_ISREG(st.st_mode):
        return "state_file %s is not a regular file; refusing to read or replace it" % path
    return None


def load_state(path: str) -> t.Tuple[t.Dict[str, t.Any], t.Optional[str]]:
    """(state, warning). A missing file is a first run; an unreadable or foreign one starts over; records with
    fields of the wrong type or range (a negative offset, a string where a number belongs) are dropped."""
    try:
        with _open_state(path) as handle:
            data = json.loads(handle.read(MAX_STATE_BYTES + 1).decode("utf-8"))
    except (IOError, OSError) as exc:
        if getattr(exc, "errno", None) == errno.ENOENT:
            return empty_state(), None
        return empty_state(), "state_file %s unreadable (%s); scanning everything" % (path, exc.strerror or exc)
    except (ValueError, RecursionError) as exc:  # also UnicodeDecodeError, numbers past int's digit limit
        return empty_state(), "state_file %s is not valid JSON (%s); scanning everything" % (path, str(exc)[:200])
    if not isinstance(data, dict) or data.get("version") != VERSION or not isinstance(data.get("files"), list):
        return empty_state(), "state_file %s is not a kernel_log_scan state (version %d); scanning everything" % (path, VERSION)
    state = empty_state()
    state["files"] = [r for r in data["files"] if isinstance(r, dict) and _valid_record(r)]
    dropped = ["%d file record(s)" % (len(data["files"]) - len(state["files"]))] if len(state["files"]) < len(data["files"]) else []
    journal, kmsg = data.get("journal"), data.get("kmsg")
    if isinstance(journal, dict) and _valid_journal(journal):
        state["journal"] = {"cursor": journal["cursor"], "first": journal.get("first")}
    elif journal:
        dropped.append("the journal cursor")
    if isinstance(kmsg, dict) and _valid_kmsg(kmsg):
        state["kmsg"] = {"boot_id": kmsg["boot_id"], "seq": kmsg["seq"]}
    elif kmsg:
        dropped.append("the ring-buffer position")
    if dropped:
        return state, ("state_file %s: %s with fields of the wrong type or range dropped; those sources are read "
                       "from the start" % (path, " and ".join(dropped)))
    return state, None


def _count(value: t.Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < _U64


def _valid_record(record: t.Dict[str, t.Any]) -> bool:
    return (all(_count(record.get(k)) for k in ("dev", "ino", "offset", "head_len"))
            and record["head_len"] <= HEAD_BYTES and isinstance(record.get("head_sha1"), str)
            and _SHA1.match(record["head_sha1"]) is not None
            and (record.get("path") is None or isinstance(record.get("path"), str))
            and all(record.get(k) is None or _count(record.get(k)) for k in ("raw_size", "mtime"))
            and (record.get("release") is None or _valid_release(record["release"])))


def _valid_release(value: t.Any) -> bool:
    """[release, what named it] as scan_file keeps it."""
    return (isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value)
            and 0 < len(value[0]) <= 128 and len(value[1]) <= 128)


def _valid_journal(journal: t.Dict[str, t.Any]) -> bool:
    first = journal.get("first")
    return (isinstance(journal.get("cursor"), str) and 0 < len(journal["cursor"]) <= 4096
            and (first is None or (isinstance(first, (int, float)) and not isinstance(first, bool)
                                   and 0 <= first < 1e12)))


def _valid_kmsg(kmsg: t.Dict[str, t.Any]) -> bool:
    return isinstance(kmsg.get("boot_id"), str) and len(kmsg["boot_id"]) <= 64 and _count(kmsg.get("seq"))


def save_state(path: str, state: t.Dict[str, t.Any]) -> bool:
    """Write atomically (temp file in the same directory + os.replace). True when the content changed."""
    text = json.dumps(state, sort_keys=True, indent=1)
    problem = state_path_problem(path)
    if problem:
        raise OSError(errno.EINVAL, problem)
    try:
        with _open_state(path) as handle:
            if handle.read(len(text) + 1) == text.encode("utf-8"):
                return False
    except (IOError, OSError, ValueError):
        pass
    directory = os.path.dirname(os.path.abspath(path))
    fd, temp = tempfile.mkstemp(prefix=".kernel_log_scan.", dir=directory)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, 0o600)
        os.replace(temp, path)
    except BaseException:
        try:
            os.unlink(temp)
        except OSError:
            pass
        raise
    return True


def head_digest(head: bytes) -> str:
    return hashlib.sha1(head).hexdigest()


def resume_offset(records: t.List[t.Dict[str, t.Any]], dev: int, ino: int, size: t.Optional[int],
                  read_head: t.Callable[[int], bytes], compressed: bool,
                  present: t.Optional[t.Dict[t.Tuple[int, int], bytes]] = None) -> t.Tuple[int, str]:
    """Where to start reading a file, and why (``new``, ``resumed``, ``rotated``, ``truncated``, ``replaced``).

    ``read_head(n)`` returns the first n bytes of the (decompressed) content; ``size`` is the
    content size when known (plain files). ``present`` maps (dev, ino) of every file in this scan
    to its head: a known file still holding its content under its own inode was not rotated into
    this one, however alike their first bytes are.
    """
    heads = {}  # type: t.Dict[int, str]

    def head_matches(record: t.Dict[str, t.Any]) -> bool:
        length = record["head_len"]
        if length not in heads:
            heads[length] = head_digest(read_head(length))
        return heads[length] == record["head_sha1"]

    same_inode = [r for r in records if r["dev"] == dev and r["ino"] == ino]
    for record in same_inode:
        if (size is None or size >= record["offset"]) and head_matches(record):
            return record["offset"], "resumed"
    # A rotated copy or a compressed old file carries a known head. Checked before concluding
    # "truncated": logrotate frees inodes and the next file it writes often gets one back.
    for record in sorted(records, key=lambda r: -r["offset"]):
        original = (present or {}).get((record["dev"], record["ino"]))
        if original is not None and head_digest(original[:record["head_len"]]) == record["head_sha1"]:
            continue
        if record["offset"] and record["head_len"] and (size is None or size >= record["offset"]) \
                and head_matches(record):
            return record["offset"], "rotated"
    for record in same_inode:
        return 0, "truncated" if size is not None and size < record["offset"] else "replaced"
    return 0, "new"


def file_record(path: str, dev: int, ino: int, offset: int, head: bytes, compressed: bool) -> t.Dict[str, t.Any]:
    return {"path": path, "dev": dev, "ino": ino, "offset": offset, "compressed": compressed,
            "head_len": len(head), "head_sha1": head_digest(head)}
