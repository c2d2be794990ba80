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
import stat
import struct
import subprocess
import tempfile
import typing as t
import zlib

from ansible_collections.memfrag.linux.plugins.module_utils._kernel_log.patterns import (
    LITERALS, MAX_LINE, NBSP_NEEDLE, NEEDLES, RELEASE_NEEDLES, confirm_at)

CHUNK = 1024 * 1024  # small enough that a chunk stays in cache while every needle is searched in it
# A partial line longer than any line worth reading (MAX_LINE) is not carried over to the next chunk: the
# rest of it is skipped up to its newline. Together with CHUNK this bounds the scan's memory.
MAX_CARRY = MAX_LINE + 1

Warn = t.Callable[[str], None]
# (buffer, hit, needle, line start, line end) -> whether the line is a candidate
Confirm = t.Callable[[bytearray, int, bytes, int, int], bool]


class LineHit(object):
    """A physical line containing a needle, with its neighbours (for wrapped and continued lines)."""

    __slots__ = ("offset", "line", "previous", "following")

    def __init__(self, offset: int, line: bytes, previous: t.Optional[bytes], following: t.Optional[bytes]) -> None:
        self.offset = offset        # byte offset of the line in the (decompressed) stream
        self.line = line
        self.previous = previous    # the physical line before, or None at the start of the stream
        self.following = following  # the physical line after when it is in memory, else None


class NotRegularFile(OSError):
    """A path that is not a regular file where a log or state file was expected (FIFO, device, directory)."""


def open_regular(path: str, expected: t.Optional[os.stat_result] = None) -> t.BinaryIO:
    """Open ``path`` for reading without ever blocking, and only if it is a regular file.

    O_NONBLOCK makes opening a FIFO return at once instead of waiting for a writer; the kind of file is
    then checked on the open descriptor. ``expected`` (a stat taken before) must still describe the same
    file, so a path swapped for something else in between is refused too.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotRegularFile(errno.EINVAL, "not a regular file", path)
        if expected is not None and (st.st_dev, st.st_ino) != (expected.st_dev, expected.st_ino):
            raise NotRegularFile(errno.ESTALE, "replaced while the scan started", path)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def compression_of(head: bytes) -> t.Optional[str]:
    """Compression by magic bytes (never by file name): gzip, xz, bz2 or None."""
    if head[:2] == b"\x1f\x8b":
        return "gzip"
    if head[:6] == b"\xfd7zXZ\x00":
        return "xz"
    if head[:3] == b"BZh":
        return "bz2"
    return None


# Rotated syslog text expands 5 to 50 times (gzip, xz, bzip2); a stream that expands more than MAX_EXPANSION
# times its file's size is a decompression bomb (785 bytes of bzip2 are 1 GiB of zeros, and concatenated streams
# multiply that), not a log, and is read no further. Small files expand by more (headers), so at least
# MIN_EXPANSION_BYTES are always read. This bounds the scan's time by the bytes on disk, not by what they expand to.
MAX_EXPANSION = 1000
MIN_EXPANSION_BYTES = 64 * 1024 * 1024


class ExpansionError(ValueError):
    """A compressed log expands past its limit (see MAX_EXPANSION)."""


class Decompressed(object):
    """A decompressing stream that gives at most ``limit`` bytes, then raises ExpansionError."""

    def __init__(self, stream: t.Any, limit: int, compressed_size: int) -> None:
        self.stream = stream
        self.limit = limit
        self.compressed_size = compressed_size
        self.given = 0

    @property
    def closed(self) -> bool:
        return self.stream.closed

    def close(self) -> None:
        self.stream.close()

    def read1(self, size: int) -> bytes:
        if self.given >= self.limit:
            raise ExpansionError("expands to more than %d bytes from %d on disk, more than %d times: a decompression "
                                 "bomb, not a log; read no further" % (self.limit, self.compressed_size, MAX_EXPANSION))
        data = self.stream.read1(min(size, self.limit - self.given))
        self.given += len(data)
        return data


def open_decompressed(raw: t.BinaryIO, compression: t.Optional[str]) -> t.BinaryIO:
    """``raw`` itself, or a Decompressed stream over it bounded by MAX_EXPANSION times the file's size."""
    if compression == "gzip":
        stream = gzip.GzipFile(fileobj=raw, mode="rb")  # type: t.Any
    elif compression == "xz":
        stream = lzma.LZMAFile(raw, mode="rb")
    elif compression == "bz2":
        stream = bz2.BZ2File(raw, mode="rb")
    else:
        return raw
    size = os.fstat(raw.fileno()).st_size
    return Decompressed(stream, max(MIN_EXPANSION_BYTES, size * MAX_EXPANSION), size)  # type: ignore[return-value]


_DECOMPRESS_ERRORS = (EOFError, OSError, zlib.error, lzma.LZMAError, ValueError)


def _read(stream: t.BinaryIO, size: int, name: str, warn: Warn, position: int) -> bytes:
    """Up to ``size`` bytes. A decompressing stream is read piecewise (read1): a plain read() of a
    stream that ends early raises and drops everything it had decompressed for that call."""
    if not isinstance(stream, Decompressed):
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
    except ExpansionError as exc:
        warn("%s: %s; scanned the first %d bytes" % (name, exc, position + got))
        stream.close()
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
    if isinstance(stream, Decompressed):
        data = _read(stream, len(view), name, warn, position)
        view[:len(data)] = data
        return len(data)
    return stream.readinto(view) or 0


# ---- finding needles fast ---------------------------------------------------------------------------

# libc's strstr scans 16 or 32 bytes at a time for a needle's first two bytes (glibc's SSE2/AVX2 code) and
# is linear in the haystack (it falls back to the two-way algorithm); bytes.find is several times slower
# per byte on log text. strstr stops at a NUL, so a chunk that holds one is searched with memmem (bounded
# by length) instead. Without ctypes or a libc, bytes.find does the same job.
USE_LIBC = True
_LIBC = []  # type: t.List[t.Any]


def _libc() -> t.Optional[t.Tuple[t.Any, t.Any, t.Any]]:
    """(ctypes, strstr, memmem) after a self-test, or None; looked up once per process."""
    if not USE_LIBC:
        return None
    if not _LIBC:
        found = None
        try:
            import ctypes
            libc = ctypes.CDLL(None)
            strstr, memmem = libc.strstr, libc.memmem
            strstr.restype = memmem.restype = ctypes.c_void_p
            strstr.argtypes = (ctypes.c_void_p, ctypes.c_char_p)
            memmem.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t)
            probe = bytearray(b"xx\x00ab needle\x00")
            holder = (ctypes.c_char * len(probe)).from_buffer(probe)
            address = ctypes.addressof(holder)
            if (strstr(address + 3, b"needle") == address + 6 and strstr(address, b"needle") is None
                    and memmem(address, len(probe), b"needle", 6) == address + 6):
                found = (ctypes, strstr, memmem)
            del holder
        except Exception:  # noqa: BLE001 - any failure (no ctypes, no libc, a foreign libc) means bytes.find
            found = None
        _LIBC.append(found)
    return _LIBC[0]


def _finder(buf: bytearray, address: t.Optional[int], end: int, has_nul: bool) -> t.Callable[[bytes, int], int]:
    """find(needle, position) over buf[:end]; -1 when there is none. buf[end] must be 0 for strstr."""
    libc = _libc() if address is not None else None
    if libc is None:
        return lambda needle, position: buf.find(needle, position, end)
    strstr, memmem = libc[1], libc[2]
    if has_nul:
        def find_nul_safe(needle: bytes, position: int) -> int:
            found = memmem(address + position, end - position, needle, len(needle))
            return -1 if not found else found - address
        return find_nul_safe

    def find(needle: bytes, position: int) -> int:
        found = strstr(address + position, needle)
        return -1 if not found else found - address
    return find


_HUNG_IN_LINE = re.compile(rb"blocked for more than [0-9]+ seconds")


def confirm_event(buf: bytearray, hit: int, needle: bytes, line_start: int, line_end: int) -> bool:
    """The line holds one of the literals of ``needle``: at the hit (a few compares) or elsewhere in it."""
    if needle not in LITERALS:
        return True  # non-breaking spaces, release lines: decoded and checked by scan.feed_line_hit
    if confirm_at(buf, hit, needle):
        return True
    for literal, _offset in LITERALS[needle]:
        if literal == b"blocked for more than ":
            if _HUNG_IN_LINE.search(buf, line_start, line_end):
                return True
        elif buf.find(literal, line_start, line_end) != -1:
            return True
    return False


def confirm_release(buf: bytearray, hit: int, needle: bytes, line_start: int, line_end: int) -> bool:
    return True  # the needle is the literal; scan.feed_line_hit parses the release


EVENT_NEEDLES = NEEDLES + (NBSP_NEEDLE,)


class _Lines(object):
    """Candidate lines of one chunk: every needle searched over it, each line taken at most once per needle."""

    def __init__(self, name: str, warn: Warn) -> None:
        self.name = name
        self.warn = warn
        self.warned_long = False

    def too_long(self, offset: int) -> None:
        if not self.warned_long:
            self.warned_long = True
            self.warn("%s: a line of more than %d bytes at offset %d is not kernel output; skipped"
                      % (self.name, MAX_LINE, offset))

    def find(self, buf: bytearray, address: t.Optional[int], end: int, base: int, needles: t.Sequence[bytes],
             confirm: Confirm, has_nul: bool) -> t.List[t.Tuple[int, int]]:
        find = _finder(buf, address, end, has_nul)
        lines = {}  # type: t.Dict[int, int]
        for needle in needles:
            position = 0
            while position < end:
                hit = find(needle, position)
                if hit == -1 or hit >= end:
                    break
                line_start = buf.rfind(b"\n", max(0, hit - MAX_LINE), hit) + 1
                if line_start == 0 and hit > MAX_LINE:
                    self.too_long(base + hit)
                    newline = buf.find(b"\n", hit, end)
                    position = end if newline == -1 else newline + 1
                    continue
                known = lines.get(line_start)
                if known is not None:
                    position = known + 1
                    continue
                line_end = buf.find(b"\n", hit, min(end, line_start + MAX_LINE + 1))
                if line_end == -1:
                    if line_start + MAX_LINE < end:
                        self.too_long(base + line_start)
                        newline = buf.find(b"\n", line_start + MAX_LINE, end)
                        position = end if newline == -1 else newline + 1
                        continue
                    line_end = end  # the last line of the stream, without a newline
                if confirm(buf, hit, needle, line_start, line_end):
                    lines[line_start] = line_end
                position = line_end + 1
        return sorted(lines.items())


def _buffer_line_before(buf: bytearray, line_start: int) -> t.Optional[bytes]:
    """The line ending at ``line_start - 1`` (a newline), when it is at most MAX_LINE long."""
    start = buf.rfind(b"\n", max(0, line_start - 2 - MAX_LINE), line_start - 1) + 1
    if start == 0 and line_start - 1 > MAX_LINE:
        return None
    return bytes(buf[start:line_start - 1])


def scan_stream(stream: t.BinaryIO, name: str, start: int, warn: Warn, stop: t.Optional[int] = None,
                previous_line: t.Optional[bytes] = None, needles: t.Sequence[bytes] = EVENT_NEEDLES,
                confirm: Confirm = confirm_event,
                local_needles: t.Sequence[bytes] = ()) -> t.Iterator[t.Union[LineHit, int]]:
    """Yield a LineHit for every line holding a confirmed needle, then the offset where reading ended.

    ``local_needles`` are searched only in chunks where ``needles`` found a line (a stack dump's taint line
    beside the event it follows), so they cost nothing on chunks of noise.

    ``start`` is the stream offset ``stream`` is positioned at (offsets in hits are absolute). The
    final yielded int is the offset after the last line read: a plain file resumes there.
    ``stop`` (a line start) ends the scan early; ``previous_line`` is the line before ``start``.

    One buffer is reused for the whole stream (no per-chunk copies): the unfinished last line of a
    chunk moves to the front and the next chunk is read in after it. Lines longer than MAX_LINE are
    skipped; memory is CHUNK + MAX_CARRY whatever the stream holds.
    """
    chunk = CHUNK
    buf = bytearray(chunk + MAX_CARRY + 1)  # + 1: room for the NUL strstr stops at
    view = memoryview(buf)
    libc = _libc()
    holder = address = None
    if libc is not None:
        holder = (libc[0].c_char * len(buf)).from_buffer(buf)
        address = libc[0].addressof(holder)
    finder = _Lines(name, warn)
    base = start               # stream offset of buf[0]
    filled = 0                 # bytes at the front of buf carried over (an unfinished line)
    previous_tail = previous_line  # last complete line of the previous chunk
    skipping_long = False
    warned_nul = False
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
            if at_eof:
                if total == 0:
                    break
                end = total    # the last line has no newline; scan it all the same
            else:
                end = buf.rfind(b"\n", 0, total) + 1
                if end == 0:
                    if total > MAX_CARRY:
                        finder.too_long(base)
                        base += total
                        filled = 0
                        skipping_long = True
                        continue
                    filled = total
                    continue
            nul = buf.find(b"\x00", 0, end)
            if nul != -1 and not warned_nul:
                warned_nul = True
                warn("%s: NUL bytes near offset %d (binary junk, e.g. after a crash); they are ignored"
                     % (name, base + nul))
            saved = buf[end]
            buf[end] = 0
            try:
                lines = finder.find(buf, address, end, base, needles, confirm, nul != -1)
                if lines and local_needles:
                    more = dict(lines)
                    more.update(finder.find(buf, address, end, base, local_needles, confirm_release, nul != -1))
                    lines = sorted(more.items())
            finally:
                buf[end] = saved
            for line_start, line_end in lines:
                previous = previous_tail if line_start == 0 else _buffer_line_before(buf, line_start)
                following = None  # unknown when the next line is not in memory yet (a chunk boundary)
                if line_end + 1 < end:
                    next_end = buf.find(b"\n", line_end + 1, min(end, line_end + 2 + MAX_LINE))
                    if next_end != -1 or end - line_end - 1 <= MAX_LINE:
                        following = bytes(buf[line_end + 1:next_end if next_end != -1 else end])
                yield LineHit(base + line_start, bytes(buf[line_start:line_end]), previous, following)
            if at_eof:
                base += end
                break
            if end > 0:
                previous_tail = _buffer_line_before(buf, end) if buf[end - 1:end] == b"\n" else None
            if total - end > MAX_CARRY:
                # The unfinished last line is already longer than any line worth reading: skip to its newline
                # rather than carry it (the carry stays within MAX_CARRY, so a chunk always fits the buffer).
                finder.too_long(base + end)
                base += total
                filled = 0
                skipping_long = True
                continue
            buf[0:total - end] = buf[end:total]
            base += end
            filled = total - end
    finally:
        del holder
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


def scan_plain_file(raw: t.BinaryIO, name: str, start: int, size: int, warn: Warn,
                    needles: t.Sequence[bytes] = EVENT_NEEDLES, confirm: Confirm = confirm_event,
                    local_needles: t.Sequence[bytes] = ()) -> t.Iterator[t.Union[LineHit, int]]:
    """scan_stream over an uncompressed file from ``start`` up to ``size`` (lines appended meanwhile are
    left for the next run); a big file is split at a line start and the second half is scanned by a
    forked child at the same time (the needle search is CPU-bound and holds the GIL, so threads would
    not help). Hits come out in file order either way."""
    fd = raw.fileno()
    before = _line_before(fd, start)  # context for a wrapped first line when resuming
    middle = _next_line_start(fd, start + (size - start) // 2)
    if size - start < PARALLEL_MIN or usable_cpus() < 2 or not hasattr(os, "fork") or not start < middle < size:
        raw.seek(start)
        yield from scan_stream(raw, name, start, warn, stop=size, previous_line=before, needles=needles,
                               confirm=confirm, local_needles=local_needles)
        return
    spool = tempfile.TemporaryFile(prefix="kernel_log_scan.")
    try:
        pid = os.fork()
    except OSError:
        spool.close()
        raw.seek(start)
        yield from scan_stream(raw, name, start, warn, stop=size, previous_line=before, needles=needles,
                               confirm=confirm, local_needles=local_needles)
        return
    if pid == 0:  # child: the second half, framed into the spool file
        status = 1
        try:
            child_warnings = []  # type: t.List[str]
            # Its own open file (a shared descriptor would share the read position with the parent).
            with open_regular(name, os.fstat(fd)) as handle:
                handle.seek(middle)
                out = io.BufferedWriter(io.FileIO(os.dup(spool.fileno()), "wb"), 1024 * 1024)
                _spool(out, scan_stream(handle, name, middle, child_warnings.append, stop=size,
                                        previous_line=_line_before(handle.fileno(), middle), needles=needles,
                                        confirm=confirm, local_needles=local_needles), child_warnings)
                out.close()
            status = 0
        finally:
            os._exit(status)
    try:
        try:
            raw.seek(start)
            for item in scan_stream(raw, name, start, warn, stop=middle, previous_line=before, needles=needles,
                                    confirm=confirm, local_needles=local_needles):
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
            yield from scan_stream(raw, name, resume, warn, stop=size, previous_line=_line_before(fd, resume),
                                   needles=needles, confirm=confirm, local_needles=local_needles)
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
    fields = head.split(b",", 3)
    # Unsigned decimal numbers of bounded length (a 5,000-digit "sequence number" is not a record).
    if len(fields) < 3 or not all(0 < len(f) <= 20 and f.isdigit() for f in fields[:3]):
        return None
    prio, seq, usec = int(fields[0]), int(fields[1]), int(fields[2])
    if prio > 0xFFFF:
        return None
    message = rest.split(b"\n", 1)[0][:MAX_LINE]
    return KmsgRecord(prio >> 3, prio & 7, seq, usec, message.decode("utf-8", "replace"))


def read_kmsg(path: str, warn: Warn) -> t.Tuple[t.List[KmsgRecord], t.Optional[str]]:
    """All records now in the ring buffer, oldest first; (records, reason it could not be read)."""
    records = []  # type: t.List[KmsgRecord]
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        return records, "%s: %s" % (path, exc.strerror or exc)
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISREG(mode):
            # A saved copy in the same format (tests, or `cat /dev/kmsg > file` on another host).
            with os.fdopen(os.dup(fd), "rb") as handle:
                for raw in bounded_lines(handle, MAX_LINE):
                    if raw[:1] in (b" ", b"\n"):
                        continue
                    record = parse_kmsg_record(raw)
                    if record is not None:
                        records.append(record)
            return records, None
        if not stat.S_ISCHR(mode):
            return records, "%s: neither the kernel's character device nor a saved copy (a regular file)" % path
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


def bounded_lines(handle: t.BinaryIO, limit: int) -> t.Iterator[bytes]:
    """The lines of ``handle``; one longer than ``limit`` comes out cut at ``limit`` and its rest is dropped,
    so memory stays bounded whatever the stream holds."""
    while True:
        line = handle.readline(limit)
        if not line:
            return
        if len(line) == limit and not line.endswith(b"\n"):
            rest = line
            while rest and not rest.endswith(b"\n"):
                rest = handle.readline(limit)
        yield line


# ---- journal ------------------------------------------------------------------------------------

class JournalEntry(object):
    __slots__ = ("cursor", "realtime", "facility", "message", "boot_id")

    def __init__(self, cursor: str, realtime: t.Optional[float], facility: t.Optional[int], message: str,
                 boot_id: t.Optional[str] = None) -> None:
        self.cursor = cursor
        self.realtime = realtime
        self.facility = facility
        self.message = message
        self.boot_id = boot_id


def journal_available(journal_dirs: t.Sequence[str] = ("/var/log/journal", "/run/log/journal")) -> t.Optional[str]:
    """None when a journal with files exists, else why not."""
    for directory in journal_dirs:
        for _root, _dirs, files in os.walk(directory):
            if any(name.endswith(".journal") or name.endswith(".journal~") for name in files):
                return None
    return "no journal files under %s" % " or ".join(journal_dirs)


# journalctl prints "MESSAGE":[..] (newer) or "MESSAGE" : [ .. ] (older systemd).
_BINARY_MESSAGE = re.compile(rb'"MESSAGE"\s*:\s*\[')
# Entries worth parsing: events, lines naming the release, text with non-breaking spaces (raw or escaped).
_JOURNAL_NEEDLES = NEEDLES + RELEASE_NEEDLES + (NBSP_NEEDLE, b"\\u00a0")
# One JSON entry of the kernel transport is a record of at most ~1 KiB; far longer lines are not read whole.
MAX_JOURNAL_LINE = 1024 * 1024


def _journal_number(value: t.Any) -> t.Optional[int]:
    """A journal field holding an unsigned decimal number of bounded length, or None."""
    if isinstance(value, str) and 0 < len(value) <= 20 and all("0" <= c <= "9" for c in value):
        return int(value)
    return None


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
    errors = tempfile.TemporaryFile(prefix="kernel_log_scan.")  # a pipe could fill up and stall journalctl
    try:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=errors)
    except OSError as exc:
        errors.close()
        yield "cannot run %s: %s" % (journalctl, exc.strerror or exc)
        return
    count = 0
    last_cursor = None
    with errors:
        for raw in bounded_lines(proc.stdout, MAX_JOURNAL_LINE) if proc.stdout else ():
            count += 1
            if len(raw) >= MAX_JOURNAL_LINE:
                continue  # cut: not one whole entry
            # Non-UTF-8 messages come as arrays of byte values, which the needles cannot see.
            wanted = any(needle in raw for needle in _JOURNAL_NEEDLES) or _BINARY_MESSAGE.search(raw) is not None
            if not wanted and count > 1:
                # Still need the cursor of the last entry; parse cheaply only at the end (below).
                last_cursor = raw
                continue
            try:
                entry = json.loads(raw.decode("utf-8", "replace"))
            except (ValueError, RecursionError):  # also numbers past int's digit limit, and arrays nested too deep
                warn("journalctl printed a line that is not JSON; skipped")
                continue
            if not isinstance(entry, dict):
                continue
            message = entry.get("MESSAGE")
            if isinstance(message, list):  # journald stores non-UTF-8 messages as byte arrays
                message = bytes(v for v in message[:MAX_LINE]
                                if isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 256).decode("utf-8", "replace")
            if not isinstance(message, str):
                message = ""
            usec = _journal_number(entry.get("__REALTIME_TIMESTAMP"))
            boot_id = entry.get("_BOOT_ID")
            last_cursor = None
            yield JournalEntry(str(entry.get("__CURSOR", ""))[:4096], None if usec is None else usec / 1e6,
                               _journal_number(entry.get("SYSLOG_FACILITY")), message[:MAX_LINE],
                               boot_id[:64] if isinstance(boot_id, str) else None)
        if last_cursor is not None:
            try:
                entry = json.loads(last_cursor.decode("utf-8", "replace"))
                if isinstance(entry, dict):
                    yield JournalEntry(str(entry.get("__CURSOR", ""))[:4096], None, None, "")
            except (ValueError, RecursionError):
                pass
        proc.wait()
        errors.seek(0)
        err = errors.read(4096)
    if proc.returncode not in (0, None) and count == 0:
        yield "journalctl failed (rc=%s): %s" % (proc.returncode, err.decode("utf-8", "replace").strip()[:300])
        return
    yield count
