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


import hashlib
import json
import os
import tempfile
import typing as t

VERSION = 1
HEAD_BYTES = 4096


def empty_state() -> t.Dict[str, t.Any]:
    return {"version": VERSION, "files": [], "journal": {}, "kmsg": {}}


def load_state(path: str) -> t.Tuple[t.Dict[str, t.Any], t.Optional[str]]:
    """(state, warning). A missing file is a first run; an unreadable or foreign one starts over."""
    try:
        with open(path, "rb") as handle:
            data = json.loads(handle.read(16 * 1024 * 1024).decode("utf-8"))
    except (IOError, OSError) as exc:
        if getattr(exc, "errno", None) == 2:
            return empty_state(), None
        return empty_state(), "state_file %s unreadable (%s); scanning everything" % (path, exc)
    except ValueError as exc:
        return empty_state(), "state_file %s is not valid JSON (%s); scanning everything" % (path, exc)
    if not isinstance(data, dict) or data.get("version") != VERSION or not isinstance(data.get("files"), list):
        return empty_state(), "state_file %s is not a kernel_log_scan state (version %d); scanning everything" % (path, VERSION)
    state = empty_state()
    state["files"] = [r for r in data["files"] if isinstance(r, dict) and _valid_record(r)]
    for key in ("journal", "kmsg"):
        if isinstance(data.get(key), dict):
            state[key] = data[key]
    return state, None


def _valid_record(record: t.Dict[str, t.Any]) -> bool:
    return all(isinstance(record.get(k), int) for k in ("dev", "ino", "offset", "head_len")) and \
        isinstance(record.get("head_sha1"), str)


def save_state(path: str, state: t.Dict[str, t.Any]) -> bool:
    """Write atomically (temp file in the same directory + os.replace). True when the content changed."""
    text = json.dumps(state, sort_keys=True, indent=1)
    try:
        with open(path, "r") as handle:
            if handle.read() == text:
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
