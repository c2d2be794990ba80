# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading kernel log sources fast: log files (plain, gzip, xz, bzip2), /dev/kmsg, the journal.

Files are read in big binary chunks and searched with ``bytes.find`` for the few needles every
interesting line contains (_kernel_log_patterns.NEEDLES); only lines around a hit are decoded.
Damage never stops a scan: binary junk, invalid UTF-8, absurdly long lines and compressed streams
that end early are reported through ``warn`` and the rest is still read.
"""


import bz2
import errno
import gzip
import io
import json
import lzma
import os
import re
import struct
import subprocess
import tempfile
import typing as t
import zlib

from ansible_collections.memfrag.linux.plugins.module_utils._kernel_log.patterns import CONFIRM, MAX_LINE, NEEDLE_AFTER, NEEDLES

CHUNK = 8 * 1024 * 1024
# A "line" this long without a newline is binary junk; stop buffering it and skip to the next newline.
MAX_CARRY = 1024 * 1024

Warn = t.Callable[[str], None]


class LineHit(object):
    """A physical line containing a needle, with its neighbours (for wrapped and continued lines)."""

    __slots__ = ("offset", "line", "previous", "following")

    def __init__(self, offset: int, line: bytes, previous: t.Optional[bytes], following: t.Optional[bytes]) -> None:
        self.offset = offset        # byte offset of the line in the (decompressed) stream
        self.line = line
        self.previous = previous    # the physical line before, or None at the start of the stream
        self.following = following  # the physical line after when it is in memory, else None


def compression_of(head: bytes) -> t.Optional[str]:
    """Compression by magic bytes (never by file name): gzip, xz, bz2 or None."""
    if head[:2] == b"\x1f\x8b":
        return "gzip"
    if head[:6] == b"\xfd7zXZ\x00":
        return "xz"
    if head[:3] == b"BZh":
        return "bz2"
    return None


def open_decompressed(raw: t.BinaryIO, compression: t.Optional[str]) -> t.BinaryIO:
    if compression == "gzip":
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    if compression == "xz":
        return lzma.LZMAFile(raw, mode="rb")  # type: ignore[return-value]
    if compression == "bz2":
        return bz2.BZ2File(raw, mode="rb")  # type: ignore[return-value]
    return raw


_DECOMPRESS_ERRORS = (EOFError, OSError, zlib.error, lzma.LZMAError, ValueError)


def _read(stream: t.BinaryIO, size: int, name: str, warn: Warn, position: int) -> bytes:
    """Up to ``size`` bytes. A decompressing stream is read piecewise (read1): a plain read() of a
    stream that ends early raises and drops everything it had decompressed for that call."""
    if not isinstance(stream, (gzip.GzipFile, lzma.LZMAFile, bz2.BZ2File)):
        return stream.read(size)
    if stream.closed:  # closed after damage was reported
        return b""
    pieces = []
    got = 0
    try:
        while got < size:
            piece = stream.read1(size - got)
            if not piece:
                break
            pieces.append(piece)
            got += len(piece)
    except _DECOMPRESS_ERRORS as exc:
        reason = str(exc) or exc.__class__.__name__
        warn("%s: stream damaged after %d bytes (%s); scanned what could be read" % (name, position + got, reason))
        pieces.append(b"")
        stream.close()
    return b"".join(pieces)


def read_up_to(stream: t.BinaryIO, size: int) -> bytes:
    """Up to ``size`` bytes; a damaged stream gives what it had (no warning: the scan that follows
    reports the damage)."""
    return _read(stream, size, "", lambda _message: None, 0)


def skip_bytes(stream: t.BinaryIO, count: int, name: str, warn: Warn) -> int:
    """Read and discard ``count`` bytes (a decompressed stream cannot seek cheaply); returns bytes skipped."""
    done = 0
    while done < count:
        data = _read(stream, min(CHUNK, count - done), name, warn, done)
        if not data:
            break
        done += len(data)
    return done


def _fill(stream: t.BinaryIO, view: memoryview, name: str, warn: Warn, position: int) -> int:
    """Read into ``view``; returns bytes read (0 at the end or after damage was reported)."""
    if isinstance(stream, (gzip.GzipFile, lzma.LZMAFile, bz2.BZ2File)):
        data = _read(stream, len(view), name, warn, position)
        view[:len(data)] = data
        return len(data)
    return stream.readinto(view) or 0


def scan_stream(stream: t.BinaryIO, name: str, start: int, warn: Warn, stop: t.Optional[int] = None,
                previous_line: t.Optional[bytes] = None) -> t.Iterator[t.Union[LineHit, int]]:
    """Yield a LineHit for every line holding a needle, then the offset where reading ended.

    ``start`` is the stream offset ``stream`` is positioned at (offsets in hits are absolute). The
    final yielded int is the offset after the last line read: a plain file resumes there.
    ``stop`` (a line start) ends the scan early; ``previous_line`` is the line before ``start``.

    One buffer is reused for the whole stream (no per-chunk copies): the unfinished last line of a
    chunk moves to the front and the next chunk is read in after it.
    """
    chunk = CHUNK
    buf = bytearray(chunk + MAX_CARRY)
    view = memoryview(buf)
    base = start               # stream offset of buf[0]
    filled = 0                 # bytes at the front of buf carried over (an unfinished line)
    previous_tail = previous_line  # last complete line of the previous chunk
    skipping_long = False
    warned_nul = warned_long = False
    try:
        while True:
            want = chunk if stop is None else max(0, min(chunk, stop - base - filled))
            count = _fill(stream, view[filled:filled + want], name, warn, base + filled) if want else 0
            at_eof = count == 0
            total = filled + count
            if skipping_long:
                if at_eof:
                    break
                newline = buf.find(b"\n", 0, total)
                if newline == -1:
                    base += total
                    filled = 0
                    continue
                buf[0:total - newline - 1] = buf[newline + 1:total]
                base += newline + 1
                total -= newline + 1
                filled = total
                skipping_long = False
                previous_tail = None
            if not warned_nul and count:
                nul = buf.find(b"\x00", total - count, total)
                if nul != -1:
                    warned_nul = True
                    warn("%s: NUL bytes near offset %d (binary junk, e.g. after a crash); they are ignored"
                         % (name, base + nul))
            if at_eof:
                if total == 0:
                    break
                end = total    # the last line has no newline; scan it all the same
            else:
                end = buf.rfind(b"\n", 0, total) + 1
                if end == 0:
                    if total > MAX_CARRY:
                        if not warned_long:
                            warned_long = True
                            warn("%s: a line of more than %d bytes at offset %d is not kernel output; skipped"
                                 % (name, MAX_CARRY, base))
                        base += total
                        filled = 0
                        skipping_long = True
                        continue
                    filled = total
                    continue
            starts = set()
            for needle in NEEDLES:
                after = NEEDLE_AFTER.get(needle)
                found = buf.find(needle, 0, end)
                while found != -1:
                    if after is not None and not buf.endswith(after, 0, found):
                        found = buf.find(needle, found + 1, end)
                        continue
                    line_start = buf.rfind(b"\n", 0, found) + 1
                    starts.add(line_start)
                    line_end = buf.find(b"\n", found, end)
                    if line_end == -1:
                        break
                    found = buf.find(needle, line_end + 1, end)
            for line_start in sorted(starts):
                line_end = buf.find(b"\n", line_start, end)
                if line_end == -1:
                    line_end = end
                if line_end - line_start > MAX_LINE:
                    if not warned_long:
                        warned_long = True
                        warn("%s: a line of %d bytes at offset %d is not kernel output; skipped"
                             % (name, line_end - line_start, base + line_start))
                    continue
                if CONFIRM.search(buf, line_start, line_end) is None:
                    continue
                if line_start == 0:
                    previous = previous_tail
                else:
                    previous = bytes(buf[buf.rfind(b"\n", 0, line_start - 1) + 1:line_start - 1])
                following = None  # unknown when the next line is not in memory yet (a chunk boundary)
                if line_end + 1 < end:
                    next_end = buf.find(b"\n", line_end + 1, end)
                    following = bytes(buf[line_end + 1:next_end if next_end != -1 else end])
                yield LineHit(base + line_start, bytes(buf[line_start:line_end]), previous, following)
            if end > 0:
                last_start = buf.rfind(b"\n", 0, end - 1) + 1
                previous_tail = bytes(buf[last_start:end]).rstrip(b"\n")
            buf[0:total - end] = buf[end:total]
            base += end
            filled = total - end
            if at_eof:
                break
    finally:
        view.release()
    yield base


# ---- big plain files: two processes ------------------------------------------------------------

# Below this a second process costs more than it saves.
PARALLEL_MIN = 64 * 1024 * 1024
_HIT, _WARN, _END, _STOP = 1, 2, 3, 4
_FRAME = struct.Struct(">BQiii")
# The child spools its hits to a temporary file; past this size it stops and the parent scans the
# rest itself (a host spamming millions of event lines must not fill memory or /tmp).
SPOOL_LIMIT = 64 * 1024 * 1024


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _line_before(fd: int, offset: int) -> t.Optional[bytes]:
    """The complete line ending just before ``offset`` (a line start), or None."""
    if offset <= 0:
        return None
    window = os.pread(fd, min(offset, MAX_LINE), max(0, offset - MAX_LINE))
    if not window.endswith(b"\n"):
        return None
    start = window.rfind(b"\n", 0, len(window) - 1)
    if start == -1 and len(window) == MAX_LINE:
        return None  # longer than any kernel line
    return window[start + 1:-1]


def _next_line_start(fd: int, offset: int) -> int:
    """The first line start at or after ``offset`` (the file size when there is none)."""
    position = max(offset, 1) - 1  # a newline at offset-1 makes offset itself a line start
    while True:
        window = os.pread(fd, 1024 * 1024, position)
        if not window:
            return position
        newline = window.find(b"\n")
        if newline != -1:
            return position + newline + 1
        position += len(window)


def _spool(out: t.BinaryIO, items: t.Iterable[t.Union[LineHit, int]], warnings: t.List[str]) -> None:
    """Write hits as frames; stop with a _STOP frame (where to resume) past SPOOL_LIMIT bytes."""
    written = 0
    for item in items:
        if isinstance(item, LineHit):
            if written > SPOOL_LIMIT:
                out.write(_FRAME.pack(_STOP, item.offset, 0, -1, -1))
                break
            previous = item.previous if item.previous is not None else b""
            following = item.following if item.following is not None else b""
            out.write(_FRAME.pack(_HIT, item.offset, len(item.line),
                                  -1 if item.previous is None else len(previous),
                                  -1 if item.following is None else len(following)))
            out.write(item.line + previous + following)
            written += _FRAME.size + len(item.line) + len(previous) + len(following)
        else:
            out.write(_FRAME.pack(_END, item, 0, -1, -1))
    for text in warnings:
        data = text.encode("utf-8", "replace")
        out.write(_FRAME.pack(_WARN, 0, len(data), -1, -1))
        out.write(data)


def _unspool(spool: t.BinaryIO, warn: Warn) -> t.Iterator[t.Union[LineHit, int, t.Tuple[str, int]]]:
    """Frames back into hits (streamed, never all in memory); ("stop", offset) when the child gave up."""
    while True:
        header = spool.read(_FRAME.size)
        if len(header) < _FRAME.size:
            return
        kind, offset, size, previous_size, following_size = _FRAME.unpack(header)
        if kind == _WARN:
            warn(spool.read(size).decode("utf-8", "replace"))
        elif kind == _END:
            yield offset
        elif kind == _STOP:
            yield ("stop", offset)
        else:
            line = spool.read(size)
            previous = spool.read(previous_size) if previous_size >= 0 else None
            following = spool.read(following_size) if following_size >= 0 else None
            yield LineHit(offset, line, previous, following)


def scan_plain_file(raw: t.BinaryIO, name: str, start: int, size: int, warn: Warn) -> t.Iterator[t.Union[LineHit, int]]:
    """scan_stream over an uncompressed file from ``start``; a big file is split at a line start and
    the second half is scanned by a forked child at the same time (the needle search is CPU-bound
    and holds the GIL, so threads would not help). Hits come out in file order either way."""
    fd = raw.fileno()
    before = _line_before(fd, start)  # context for a wrapped first line when resuming
    middle = _next_line_start(fd, start + (size - start) // 2)
    if size - start < PARALLEL_MIN or usable_cpus() < 2 or not hasattr(os, "fork") or not start < middle < size:
        raw.seek(start)
        yield from scan_stream(raw, name, start, warn, previous_line=before)
        return
    spool = tempfile.TemporaryFile(prefix="kernel_log_scan.")
    try:
        pid = os.fork()
    except OSError:
        spool.close()
        raw.seek(start)
        yield from scan_stream(raw, name, start, warn, previous_line=before)
        return
    if pid == 0:  # child: the second half, framed into the spool file
        status = 1
        try:
            child_warnings = []  # type: t.List[str]
            with open(name, "rb") as handle:
                if os.fstat(handle.fileno()).st_ino != os.fstat(fd).st_ino:
                    raise OSError("file replaced during the scan")
                handle.seek(middle)
                out = io.BufferedWriter(io.FileIO(os.dup(spool.fileno()), "wb"), 1024 * 1024)
                _spool(out, scan_stream(handle, name, middle, child_warnings.append, stop=size,
                                        previous_line=_line_before(handle.fileno(), middle)), child_warnings)
                out.close()
            status = 0
        finally:
            os._exit(status)
    try:
        try:
            raw.seek(start)
            for item in scan_stream(raw, name, start, warn, stop=middle, previous_line=before):
                if isinstance(item, LineHit):
                    yield item
        finally:
            _pid, status = os.waitpid(pid, 0)
        resume = None  # type: t.Optional[int]
        if status != 0:
            resume = middle  # the child failed: scan its half here rather than lose it
        else:
            spool.seek(0)
            for item in _unspool(spool, warn):
                if isinstance(item, tuple):
                    resume = item[1]
                    break
                yield item
        if resume is not None:
            raw.seek(resume)
            yield from scan_stream(raw, name, resume, warn, stop=size, previous_line=_line_before(fd, resume))
    finally:
        spool.close()


# ---- /dev/kmsg ----------------------------------------------------------------------------------

class KmsgRecord(object):
    __slots__ = ("facility", "level", "seq", "usec", "message")

    def __init__(self, facility: int, level: int, seq: int, usec: int, message: str) -> None:
        self.facility = facility  # 0 = kernel; userspace writes to /dev/kmsg get 1 (user) or their own
        self.level = level
        self.seq = seq
        self.usec = usec          # microseconds since boot
        self.message = message


def parse_kmsg_record(raw: bytes) -> t.Optional[KmsgRecord]:
    """``PRI,SEQ,USEC,FLAGS[,..];message`` then `` KEY=value`` dictionary lines (Documentation/ABI/testing/dev-kmsg)."""
    head, sep, rest = raw.partition(b";")
    if not sep:
        return None
    fields = head.split(b",")
    if len(fields) < 3:
        return None
    try:
        prio, seq, usec = int(fields[0]), int(fields[1]), int(fields[2])
    except ValueError:
        return None
    message = rest.split(b"\n", 1)[0]
    return KmsgRecord(prio >> 3, prio & 7, seq, usec, message.decode("utf-8", "replace"))


def read_kmsg(path: str, warn: Warn) -> t.Tuple[t.List[KmsgRecord], t.Optional[str]]:
    """All records now in the ring buffer, oldest first; (records, reason it could not be read)."""
    records = []  # type: t.List[KmsgRecord]
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        return records, "%s: %s" % (path, exc.strerror or exc)
    try:
        if not _is_char_device(fd):
            # A saved copy in the same format (tests, or `cat /dev/kmsg > file` on another host).
            with os.fdopen(os.dup(fd), "rb") as handle:
                for raw in handle:
                    if raw[:1] in (b" ", b"\n"):
                        continue
                    record = parse_kmsg_record(raw)
                    if record is not None:
                        records.append(record)
            return records, None
        while True:
            try:
                raw = os.read(fd, 16384)
            except OSError as exc:
                if exc.errno == errno.EAGAIN:
                    break  # drained: non-blocking, so we never wait for new messages
                if exc.errno == errno.EPIPE:
                    continue  # records overwritten while we read; the next read resumes
                warn("%s: read failed (%s); using the %d records read so far" % (path, exc.strerror, len(records)))
                break
            if not raw:
                break
            record = parse_kmsg_record(raw)
            if record is not None:
                records.append(record)
    finally:
        os.close(fd)
    return records, None


def _is_char_device(fd: int) -> bool:
    import stat
    return stat.S_ISCHR(os.fstat(fd).st_mode)


# ---- journal ------------------------------------------------------------------------------------

class JournalEntry(object):
    __slots__ = ("cursor", "realtime", "facility", "message")

    def __init__(self, cursor: str, realtime: t.Optional[float], facility: t.Optional[int], message: str) -> None:
        self.cursor = cursor
        self.realtime = realtime
        self.facility = facility
        self.message = message


def journal_available(journal_dirs: t.Sequence[str] = ("/var/log/journal", "/run/log/journal")) -> t.Optional[str]:
    """None when a journal with files exists, else why not."""
    for directory in journal_dirs:
        for _root, _dirs, files in os.walk(directory):
            if any(name.endswith(".journal") or name.endswith(".journal~") for name in files):
                return None
    return "no journal files under %s" % " or ".join(journal_dirs)


# journalctl prints "MESSAGE":[..] (newer) or "MESSAGE" : [ .. ] (older systemd).
_BINARY_MESSAGE = re.compile(rb'"MESSAGE"\s*:\s*\[')


def read_journal(journalctl: str, since: t.Optional[float], cursor: t.Optional[str],
                 warn: Warn) -> t.Iterator[t.Union[JournalEntry, int, str]]:
    """Kernel entries (``_TRANSPORT=kernel``, every boot) holding a needle, oldest first.

    Also yields the count of entries read (int) at the end, and each entry's cursor is kept so the
    caller can persist the last one. journalctl's output is streamed: a journal can hold gigabytes,
    which run_command would keep in memory.
    """
    argv = [journalctl, "--no-pager", "--output=json", "_TRANSPORT=kernel"]
    if cursor:
        argv.append("--after-cursor=%s" % cursor)
    elif since is not None:
        argv.append("--since=@%d" % int(since))
    try:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except OSError as exc:
        yield "cannot run %s: %s" % (journalctl, exc.strerror or exc)
        return
    count = 0
    last_cursor = None
    for raw in proc.stdout or ():
        count += 1
        # Non-UTF-8 messages come as arrays of byte values, which the needles cannot see.
        wanted = any(needle in raw for needle in NEEDLES) or _BINARY_MESSAGE.search(raw) is not None
        if not wanted and count > 1:
            # Still need the cursor of the last entry; parse cheaply only at the end (below).
            last_cursor = raw
            continue
        try:
            entry = json.loads(raw)
        except ValueError:
            warn("journalctl printed a line that is not JSON; skipped")
            continue
        message = entry.get("MESSAGE")
        if isinstance(message, list):  # journald stores non-UTF-8 messages as byte arrays
            message = bytes(v for v in message if isinstance(v, int) and 0 <= v < 256).decode("utf-8", "replace")
        if not isinstance(message, str):
            message = ""
        try:
            realtime = int(entry.get("__REALTIME_TIMESTAMP")) / 1e6  # type: t.Optional[float]
        except (TypeError, ValueError):
            realtime = None
        try:
            facility = int(entry["SYSLOG_FACILITY"])  # type: t.Optional[int]
        except (KeyError, TypeError, ValueError):
            facility = None
        last_cursor = None
        yield JournalEntry(str(entry.get("__CURSOR", "")), realtime, facility, message)
    if last_cursor is not None:
        try:
            entry = json.loads(last_cursor)
            yield JournalEntry(str(entry.get("__CURSOR", "")), None, None, "")
        except ValueError:
            pass
    _out, err = proc.communicate()
    if proc.returncode not in (0, None) and count == 0:
        yield "journalctl failed (rc=%s): %s" % (proc.returncode, err.decode("utf-8", "replace").strip()[:300])
        return
    yield count
