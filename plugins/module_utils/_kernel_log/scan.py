# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Scan kernel log sources and summarise allocation-deadlock, failure, stall, hung-task and OOM events.

Sources are read in a fixed order - the ring buffer (/dev/kmsg), the journal, then log files -
because the same kernel message usually sits in all three. Each source vouches for everything the
kernel printed from its oldest record on; a later source's event stamped inside that window was
already counted and is dropped as a duplicate (``ignored.duplicates``). Events without a usable
time (bare excerpts, uptime-only dmesg files) are always counted.
"""


import collections
import glob
import os
import stat
import time
import typing as t

from ansible_collections.memfrag.linux.plugins.module_utils._procfs.release import require_release as parse_release
from ansible_collections.memfrag.linux.plugins.module_utils._kernel_log.kinds import KINDS
from ansible_collections.memfrag.linux.plugins.module_utils._kernel_log.options import DEFAULT_PATHS, SOURCES
from ansible_collections.memfrag.linux.plugins.module_utils._kernel_log.patterns import (
    BOOT_NEEDLE, FORMS, NEEDLES, RELEASE_NEEDLES, TAINT_NEEDLE, Match, Speaker, classify_message, confirm_line,
    confirm_text, decode_into, has_prefix, iso, normalise_spaces, parse_prefix, parse_since, release_of)
from ansible_collections.memfrag.linux.plugins.module_utils._kernel_log.sources import (
    EVENT_NEEDLES, JournalEntry, LineHit, NotRegularFile, compression_of, journal_available, open_decompressed,
    open_regular, read_journal, read_kmsg, read_up_to, scan_plain_file, scan_stream, skip_bytes)
from ansible_collections.memfrag.linux.plugins.module_utils._kernel_log.state import next_state, HEAD_BYTES, file_record, resume_offset

_TEXT_NEEDLES = tuple(n.decode("ascii") for n in NEEDLES + RELEASE_NEEDLES) + ("\xa0",)

# Syslog stamps whole seconds (up to 1 s before the kernel's own time), and the ring buffer's wall time is
# uptime plus a boot time worked out now (as good as the clock's sync since boot). So a file line stamped just
# before the start of what the ring buffer or the journal covers may be a copy of a message just after it.
# Within this margin, a later source's event is a duplicate only when the earlier source has the same message
# at the start of its coverage.
EDGE_SECONDS = 2.0
# Distinct (host, second, message) keys remembered to recognise a kernel line written to two files. A host
# spamming event lines must not grow memory without bound: past this, later lines are no longer compared.
MAX_COPY_KEYS = 200000
# Notes on skipped paths listed one by one in the result.
MAX_NOTES = 50
# Release changes remembered per file (a log spanning kernel upgrades has a few; hostile text could have many).
MAX_RELEASES = 1000
# Most events kept whole in the result (max_events); counts stay exact beyond it.
MAX_EVENTS = 1000000

Warn = t.Callable[[str], None]
# Where an event's kernel release is to be looked for: ("files", path), ("journal", boot id), ("kmsg", path).
Context = t.Tuple[str, t.Optional[str]]


class Summary(object):
    """Counts, events and first/last times, fed one recognised line at a time."""

    def __init__(self, since: t.Optional[float], max_events: int) -> None:
        self.since = since
        self.counts = dict((kind, 0) for kind in KINDS)
        self.forms = dict((form, 0) for form in FORMS)
        self.first = dict((kind, None) for kind in KINDS)  # type: t.Dict[str, t.Optional[float]]
        self.last = dict((kind, None) for kind in KINDS)  # type: t.Dict[str, t.Optional[float]]
        self.events = collections.deque(maxlen=max(0, max_events))  # type: t.Deque[t.Dict[str, t.Any]]
        self.events_total = 0
        self.ignored = {"not_kernel": 0, "userspace_kmsg": 0, "before_since": 0, "duplicates": 0}
        self.covered_since = None  # type: t.Optional[float]
        self._invoked = None  # type: t.Optional[t.Dict[str, t.Any]]
        self._file_lines = {}  # type: t.Dict[int, t.Dict[str, int]]
        self._copies_full = False
        # Stream events (ring buffer, journal) near each stream's first event, and the messages at the start
        # of the coverage that a later source's copy may still match (see EDGE_SECONDS).
        self._stream_first = None  # type: t.Optional[float]
        self._edge_candidates = []  # type: t.List[t.Tuple[float, str]]
        self._edge_base = collections.Counter()  # type: t.Counter[str]
        self._edge = collections.Counter()  # type: t.Counter[str]
        # Numbers out of range in event lines of the current source, and an example.
        self.problem_lines = 0
        self.problem_example = None  # type: t.Optional[str]
        self.altered_lines = 0  # events read from text that is not byte-exact (non-breaking spaces, not UTF-8)
        # Per file, (offset, release, what named it) where the release its kernel lines name changes.
        self.releases = {}  # type: t.Dict[str, t.List[t.Tuple[int, str, str]]]

    def note_release(self, path: str, offset: int, release: str, what: str) -> None:
        found = self.releases.setdefault(path, [])
        if (not found or found[-1][1] != release) and len(found) < MAX_RELEASES:
            found.append((offset, release, what))

    def add(self, match: Match, source: str, origin: str, timestamp: t.Optional[float],
            uptime: t.Optional[float], message: str, path: t.Optional[str] = None,
            host: t.Optional[str] = None, exact: bool = True, context: t.Optional[t.Tuple[Context, int]] = None) -> None:
        if self.since is not None and timestamp is not None and timestamp < self.since:
            self.ignored["before_since"] += 1
            return
        if self.covered_since is not None and timestamp is not None:
            if timestamp >= self.covered_since:
                self.ignored["duplicates"] += 1
                return
            if timestamp >= self.covered_since - EDGE_SECONDS and self._edge[message] > 0:
                self._edge[message] -= 1
                self.ignored["duplicates"] += 1
                return
        if path is not None and timestamp is not None and self._seen_in_other_file(path, host, timestamp, message):
            self.ignored["duplicates"] += 1
            return
        if path is None and timestamp is not None:
            if self._stream_first is None:
                self._stream_first = timestamp
            if timestamp < self._stream_first + EDGE_SECONDS:
                self._edge_candidates.append((timestamp, message))
        if match.problems:
            self.problem_lines += 1
            self.problem_example = self.problem_example or match.problems[0]
        self.forms[match.form] += 1
        if match.form == "oom_invoked":
            self._invoked = match.fields
        kind = match.kind
        if kind is None:
            return
        self.counts[kind] += 1
        if timestamp is not None:
            if self.first[kind] is None or timestamp < self.first[kind]:
                self.first[kind] = timestamp
            if self.last[kind] is None or timestamp > self.last[kind]:
                self.last[kind] = timestamp
        event = {"kind": kind, "form": match.form, "source": source, "origin": origin,
                 "timestamp": iso(timestamp), "message": message[:1024], "byte_exact": exact}  # type: t.Dict[str, t.Any]
        if not exact:
            self.altered_lines += 1
        if path is not None:
            event["path"] = path
        if uptime is not None:
            event["uptime"] = uptime
        for key, value in match.fields.items():
            if value is not None:
                event[key] = value
        if kind == "oom_kill" and self._invoked is not None:
            # The allocation that ran out of memory, from this report's "invoked oom-killer" line.
            for key in ("order", "mode", "gfp_flags", "gfp_flags_source", "gfp_release", "gfp_release_source"):
                if self._invoked.get(key) is not None:
                    event[key] = self._invoked[key]
            event["invoked_by"] = self._invoked.get("comm")
            self._invoked = None
        if event.get("mode") is not None and "gfp_flags" not in event and context is not None:
            event["_release"] = context  # decoded once the release of the log is known (resolve_releases)
        self.events_total += 1
        self.events.append(event)

    def pending(self, where: Context) -> t.List[t.Dict[str, t.Any]]:
        """Kept events from ``where`` whose GFP mode still waits for a kernel release."""
        return [event for event in self.events if event.get("_release", (None,))[0] == where]

    def resolve_releases(self, where: Context, release_at: t.Callable[[int], t.Optional[t.Tuple[str, str]]],
                         fallback: t.Optional[str], warn: Warn, label: str) -> None:
        """Decode the pending events of ``where`` with ``release_at(position)`` -> (release, source), or
        ``fallback`` (the running kernel) with a warning."""
        fell_back = 0
        for event in self.pending(where):
            _where, position = event.pop("_release")
            found = release_at(position)
            if found is not None and decode_into(event, found[0]):
                event.update(gfp_release=found[0], gfp_release_source=found[1])
            elif fallback and decode_into(event, fallback):
                event.update(gfp_release=fallback, gfp_release_source="running kernel (fallback: the log names no release)")
                fell_back += 1
        if fell_back:
            warn("%s: %d event(s) with a GFP mode printed without flag names, and no kernel release in the log; "
                 "decoded for the running kernel %s (set kernel_release if the log came from another kernel)"
                 % (label, fell_back, fallback))

    def report_problems(self, label: str, warn: Warn) -> None:
        if self.problem_lines:
            warn("%s: %d event line(s) carry numbers no kernel prints (%s); those fields are null"
                 % (label, self.problem_lines, self.problem_example))
        if self.altered_lines:
            warn("%s: %d event(s) read from text that is not byte-exact kernel output (non-breaking spaces or "
                 "bytes that are not UTF-8); they have byte_exact: false" % (label, self.altered_lines))
        self.problem_lines = self.altered_lines = 0
        self.problem_example = None

    def _seen_in_other_file(self, path: str, host: t.Optional[str], timestamp: float, message: str) -> bool:
        """rsyslog writes kernel lines to several files (Debian: kern.log and syslog). The n-th copy of
        a (host, second, message) line in one file is a duplicate when another file already had n."""
        key = hash((host, int(timestamp), message))  # an int keeps memory small on hosts with event spam
        per_file = self._file_lines.get(key)
        if per_file is None:
            if len(self._file_lines) >= MAX_COPY_KEYS:
                self._copies_full = True
                return False
            per_file = self._file_lines[key] = {}
        count = per_file.get(path, 0) + 1
        per_file[path] = count
        return any(other >= count for name, other in per_file.items() if name != path)

    def end_stream(self) -> None:
        self._invoked = None
        self._stream_first = None
        self._edge = collections.Counter(self._edge_base)  # each later source matches the edge afresh
        del self._edge_candidates[10000:]

    def cover_from(self, start: float) -> None:
        """The sources read so far hold every kernel message from ``start`` on."""
        self.covered_since = start
        self._edge_base = collections.Counter(
            message for stamp, message in self._edge_candidates if start <= stamp < start + EDGE_SECONDS)
        self._edge = collections.Counter(self._edge_base)

    def result(self, warn: t.Optional[Warn] = None) -> t.Dict[str, t.Any]:
        for event in self.events:  # a caller that resolved nothing: keep the mode, say nothing decoded it
            event.pop("_release", None)
        if self._copies_full and warn is not None:
            warn("more than %d distinct kernel event lines: later ones were not compared across files, so a line "
                 "rsyslog wrote to two files may count twice" % MAX_COPY_KEYS)
        return {
            "counts": dict(self.counts),
            "forms": dict(self.forms),
            "first_seen": dict((k, iso(v)) for k, v in self.first.items()),
            "last_seen": dict((k, iso(v)) for k, v in self.last.items()),
            "events": list(self.events),
            "events_dropped": self.events_total - len(self.events),
            "ignored": dict(self.ignored),
        }


def _decode(raw: bytes) -> t.Tuple[str, bool]:
    """Text of a log line; bool says whether bytes were not valid UTF-8 (shown as U+FFFD)."""
    raw = raw.replace(b"\x00", b"")
    try:
        return raw.decode("utf-8"), False
    except UnicodeDecodeError:
        return raw.decode("utf-8", "replace"), True


def _classify(message: str, kernel_release: t.Optional[str]) -> t.Optional[Match]:
    match = classify_message(message, kernel_release)
    if match is not None and kernel_release and str(match.fields.get("gfp_flags_source", "")).startswith("decoded"):
        match.fields.update(gfp_release=kernel_release, gfp_release_source="kernel_release option")
    return match


def _exact_message(line: str, normalised: str, message: str) -> bool:
    """Whether ``message`` (a suffix of the stripped, normalised line) holds a non-breaking space in ``line``."""
    if normalised is line:
        return True
    original = line.strip()
    return "\xa0" not in original[len(original) - len(message):] if message else True


# Bytes of a line enough to read its syslog and dmesg prefixes (time, a host of up to 255 characters, tag).
SPEAKER_BYTES = 4096


def _speaker(raw: bytes, reference: float) -> Speaker:
    """Who wrote a line, from its first SPEAKER_BYTES only: a long line from another program is dismissed
    without decoding or copying the rest of it."""
    return parse_prefix(normalise_spaces(raw[:SPEAKER_BYTES].decode("utf-8", "replace"))[0], reference)


def _who(hit: LineHit, reference: float) -> t.Tuple[Speaker, str, bool, t.Optional[float], t.Optional[str]]:
    """(speaker of the line, origin, kernel, timestamp, host); a line without prefix continues the line before it."""
    speaker = _speaker(hit.line, reference)
    origin, kernel, timestamp, host = speaker.origin, speaker.kernel, speaker.timestamp, speaker.host
    if speaker.origin == "text" and hit.previous is not None:
        # A line without prefix continues the line before it (wrapping): same speaker, same time.
        previous = _speaker(hit.previous, reference)
        if previous.origin == "syslog":
            origin, kernel, timestamp, host = "syslog", previous.kernel, previous.timestamp, previous.host
        elif previous.origin == "dmesg":
            origin, timestamp = "dmesg", previous.timestamp
    return speaker, origin, kernel, timestamp, host


def _note_release(summary: Summary, hit: LineHit, path: str, reference: float) -> None:
    """A kernel line of the file naming the release that wrote it (boot line, taint line of a dump)."""
    if len(hit.line) > SPEAKER_BYTES:
        return  # both lines are short; a long one is no kernel's
    speaker, _origin, kernel, _timestamp, _host = _who(hit, reference)
    named = release_of(speaker.message) if kernel else None
    if named is not None and _usable_release(named[0]):
        summary.note_release(path, hit.offset, named[0], named[1])


def feed_line_hit(summary: Summary, hit: LineHit, path: str, reference: float,
                  kernel_release: t.Optional[str]) -> t.Optional[bool]:
    """Classify one file line; returns whether its bytes were invalid UTF-8 (None: not an event line).

    Who wrote the line is settled first, from its prefix: a line another program wrote is only counted in
    ``ignored.not_kernel`` and its message is never decoded whole, let alone classified.
    """
    if not confirm_line(hit.line):
        if BOOT_NEEDLE in hit.line or TAINT_NEEDLE in hit.line:
            _note_release(summary, hit, path, reference)
        return None  # no event text (a line found for its non-breaking spaces only, or handed in unchecked)
    speaker_head, origin, kernel, timestamp, host = _who(hit, reference)
    if not kernel:
        summary.ignored["not_kernel"] += 1
        return False
    raw_text, invalid = _decode(hit.line)
    text, spaced = normalise_spaces(raw_text)
    # A line within SPEAKER_BYTES was parsed whole already (bytes that are not UTF-8 decode alike either way).
    speaker = speaker_head if len(hit.line) <= SPEAKER_BYTES and b"\x00" not in hit.line else parse_prefix(text, reference)
    match = _classify(speaker.message, kernel_release)
    if match is None:
        return None
    message = speaker.message
    exact = not invalid and _exact_message(raw_text, text, message)
    if not match.complete and hit.following is not None:
        # A wrapped line (mail clients, narrow terminals): the rest of the message is on the next line.
        following_raw, _bad = _decode(hit.following)
        following, following_spaced = normalise_spaces(following_raw)
        if following.strip() and not has_prefix(following):
            joined = _classify(message + " " + following.strip(), kernel_release)
            if joined is not None and joined.form == match.form:
                match = joined
                exact = exact and not following_spaced
    summary.add(match, "files", origin, timestamp, speaker.uptime, message, path, host, exact,
                (("files", path), hit.offset))
    return invalid


def expand_paths(patterns: t.Sequence[str], warn: Warn) -> t.Tuple[t.List[t.Tuple[str, os.stat_result]], t.List[str]]:
    """Regular files matching ``patterns``, oldest first, with the stat they were chosen by; and notes on
    what was skipped. Nothing is opened here: FIFOs, devices, sockets and directories are recognised by
    their stat and never opened (opening some devices has side effects; a FIFO would block)."""
    found = {}  # type: t.Dict[str, os.stat_result]
    notes = []
    for pattern in patterns:
        matches = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else ([pattern] if os.path.lexists(pattern) else [])
        if not matches:
            notes.append("%s: no such file" % pattern)
        for path in matches:
            try:
                if os.path.islink(path):
                    # Never follow a link out of the directory it sits in (a root-run module reading
                    # whatever a link points at would disclose it).
                    real = os.path.realpath(path)
                    if os.path.dirname(real) != os.path.realpath(os.path.dirname(path)):
                        notes.append("%s: symlink to %s outside its directory; not followed" % (path, real))
                        continue
                st = os.stat(path)
            except OSError as exc:
                notes.append("%s: %s" % (path, exc.strerror))
                continue
            if not stat.S_ISREG(st.st_mode):
                notes.append("%s: not a regular file; skipped" % path)
                continue
            found[path] = st
    if len(notes) > MAX_NOTES:  # a glob over /proc/*/fd/* skips thousands of links: say how many, not each
        notes[MAX_NOTES:] = ["%d more paths skipped for the same reasons" % (len(notes) - MAX_NOTES)]
    return sorted(found.items(), key=lambda item: (item[1].st_mtime, item[0])), notes


def read_head(path: str, expected: t.Optional[os.stat_result] = None) -> t.Optional[t.Tuple[int, int, bytes]]:
    """(dev, ino, first HEAD_BYTES of the decompressed content) of a file, or None."""
    try:
        with open_regular(path, expected) as raw:
            st = os.fstat(raw.fileno())
            if st.st_size == 0:
                return st.st_dev, st.st_ino, b""
            compression = compression_of(raw.read(6))
            raw.seek(0)
            head = read_up_to(open_decompressed(raw, compression), HEAD_BYTES)
            return st.st_dev, st.st_ino, head
    except (IOError, OSError):
        return None


def _usable_release(release: str) -> bool:
    try:
        parse_release(release)
        return True
    except ValueError:
        return False


def _nearest_release(releases: t.Sequence[t.Tuple[int, str, str]], position: int) -> t.Optional[t.Tuple[int, str, str]]:
    """The release named last before ``position``, or the first one after it."""
    chosen = None
    for entry in releases:
        if entry[0] <= position or chosen is None:
            chosen = entry
        if entry[0] > position:
            break
    return chosen


def _file_release_resolver(summary: Summary, path: str,
                           older: t.Sequence[str]) -> t.Callable[[int], t.Optional[t.Tuple[str, str]]]:
    """Release for a position of ``path``: the one its kernel lines named last before it (else first after it),
    else the newest one named by ``older`` files of this scan (the same host's earlier log)."""
    own = summary.releases.get(path)
    if own:
        def in_file(position: int) -> t.Optional[t.Tuple[str, str]]:
            offset, release, what = _nearest_release(own, position)  # type: ignore[misc]
            where = "%s of %s (an earlier run)" % (what, path) if offset < 0 else "%s at offset %d of %s" % (what, offset, path)
            return release, where
        return in_file
    for name in reversed(older):
        named = summary.releases.get(name)
        if named:
            offset, release, what = named[-1]
            where = "%s at offset %d of %s" % (what, offset, name) if offset >= 0 else "%s of %s" % (what, name)
            return lambda _position: (release, where)
    return lambda _position: None


def scan_file(summary: Summary, path: str, old_records: t.List[t.Dict[str, t.Any]],
              kernel_release: t.Optional[str], warn: Warn,
              present: t.Optional[t.Dict[t.Tuple[int, int], bytes]] = None,
              expected: t.Optional[os.stat_result] = None) -> t.Tuple[t.Dict[str, t.Any], t.Optional[t.Dict[str, t.Any]]]:
    """Scan one file from where the state says; (report, new state record)."""
    report = {"path": path}  # type: t.Dict[str, t.Any]
    try:
        raw = open_regular(path, expected)
    except NotRegularFile as exc:
        warn("%s: %s; skipped" % (path, exc.strerror))
        report["status"] = "unreadable"
        return report, None
    except (IOError, OSError) as exc:
        warn("%s: cannot open (%s); skipped" % (path, exc.strerror or exc))
        report["status"] = "unreadable"
        return report, None
    with raw:
        st = os.fstat(raw.fileno())
        # An empty regular file has nothing to read; /proc and /sys files say size 0 too, and some of them
        # (/proc/kmsg) would wait for data: they are never read.
        compression = compression_of(raw.read(6)) if st.st_size else None
        raw.seek(0)
        report["compression"] = compression
        head = read_up_to(open_decompressed(raw, compression), HEAD_BYTES) if st.st_size else b""
        # An unchanged compressed file needs no decompression at all.
        for record in old_records:
            if (compression and record.get("dev") == st.st_dev and record.get("ino") == st.st_ino
                    and record.get("raw_size") == st.st_size and record.get("mtime") == int(st.st_mtime)):
                report.update({"status": "unchanged", "start": record["offset"], "end": record["offset"]})
                return report, dict(record, path=path)
        size = None if compression else st.st_size
        start, why = resume_offset(old_records, st.st_dev, st.st_ino, size, lambda n: head[:n], bool(compression),
                                   present)
        report["status"] = why
        # Without kernel_release, the lines naming the release are looked for in the same pass: the boot line in
        # every chunk, taint lines where an event is. A resumed file starts from the release it named before.
        needles = EVENT_NEEDLES if kernel_release else EVENT_NEEDLES + (BOOT_NEEDLE,)
        local = () if kernel_release else (TAINT_NEEDLE,)
        remembered = _remembered_release(old_records, st, start)
        if remembered is not None and not kernel_release:
            summary.note_release(path, -1, remembered[0], remembered[1])
        if compression:
            raw.seek(0)
            stream = open_decompressed(raw, compression)
            start = skip_bytes(stream, start, path, warn)
            items = scan_stream(stream, path, start, warn, needles=needles, local_needles=local)
        else:
            # Up to the size seen now: lines appended while we read are left for the next run.
            items = scan_plain_file(raw, path, start, st.st_size, warn, needles=needles, local_needles=local)
        report["start"] = start
        invalid = 0
        end = start
        reference = st.st_mtime
        for item in items:
            if isinstance(item, int):
                end = item
                continue
            bad = feed_line_hit(summary, item, path, reference, kernel_release)
            if bad:
                invalid += 1
        summary.end_stream()
        if invalid:
            warn("%s: %d matching line(s) had bytes that are not UTF-8; shown as U+FFFD" % (path, invalid))
        summary.report_problems(path, warn)
        report["end"] = end
        report["bytes_read"] = end - start
        record = file_record(path, st.st_dev, st.st_ino, end, head[:min(len(head), HEAD_BYTES)], bool(compression))
        if compression:
            record.update({"raw_size": st.st_size, "mtime": int(st.st_mtime)})
        named = summary.releases.get(path)
        if named:
            record["release"] = [named[-1][1], named[-1][2]]
        return report, record


def _remembered_release(records: t.List[t.Dict[str, t.Any]], st: os.stat_result,
                        start: int) -> t.Optional[t.Tuple[str, str]]:
    """The last release a file named up to ``start``, kept in its state record by an earlier run."""
    if start <= 0:
        return None
    for record in records:
        if record.get("release") and record["offset"] == start and (record["dev"], record["ino"]) == (st.st_dev, st.st_ino):
            return record["release"][0], record["release"][1]
    for record in records:  # rotated: the same content under another inode
        if record.get("release") and record["offset"] == start:
            return record["release"][0], record["release"][1]
    return None


def _boot_epoch() -> float:
    # kmsg times are the kernel's monotonic clock since boot.
    return time.time() - time.clock_gettime(time.CLOCK_MONOTONIC)


def _boot_id() -> t.Optional[str]:
    try:
        with open_regular("/proc/sys/kernel/random/boot_id") as handle:
            return handle.read(64).decode("ascii", "replace").strip()
    except (IOError, OSError):
        return None


def running_release() -> str:
    return os.uname()[2]


def scan(sources: t.Optional[t.Sequence[str]], paths: t.Optional[t.Sequence[str]], since: t.Optional[float],
         state: t.Dict[str, t.Any], kernel_release: t.Optional[str], max_events: int,
         include_userspace_kmsg: bool, warn: Warn, kmsg_path: str = "/dev/kmsg",
         journalctl: t.Optional[str] = None,
         journal_dirs: t.Sequence[str] = ("/var/log/journal", "/run/log/journal"),
         fallback_release: t.Optional[str] = None) -> t.Tuple[t.Dict[str, t.Any], t.Dict[str, t.Any]]:
    """Run the scan; returns (result, new state). ``sources`` None means every source that exists.

    ``kernel_release`` decodes every GFP mode printed without names. Without it each source is searched for
    the release that wrote it (the boot line, the taint line of a stack dump) and ``fallback_release`` (the
    running kernel when None) is used, with a warning, where the log names none.
    """
    fallback = fallback_release or running_release()
    summary = Summary(since, max_events)
    new_state = next_state(state)
    report = {}  # type: t.Dict[str, t.Any]
    explicit = sources is not None
    wanted = list(sources) if explicit else list(SOURCES)
    coverage = []  # type: t.List[float]

    if "kmsg" in wanted:
        report["kmsg"] = _scan_kmsg(summary, kmsg_path, state.get("kmsg") or {}, new_state, since,
                                    kernel_release, include_userspace_kmsg, warn, coverage, fallback)
        if explicit and report["kmsg"]["status"] == "skipped":
            warn("kmsg source skipped: %s" % report["kmsg"]["reason"])
        summary.end_stream()
        summary.report_problems("kmsg", warn)
        if coverage:
            summary.cover_from(min(coverage))

    if "journal" in wanted:
        missing = None
        if journalctl is None:
            missing = "journalctl not found"
        else:
            missing = journal_available(journal_dirs)
        if missing:
            report["journal"] = {"status": "skipped", "reason": missing}
            if explicit:
                warn("journal source skipped: %s" % missing)
        else:
            report["journal"] = _scan_journal(summary, journalctl, state.get("journal") or {}, new_state, since,
                                              kernel_release, include_userspace_kmsg, warn, coverage, fallback)
        summary.end_stream()
        summary.report_problems("journal", warn)
        if coverage:
            summary.cover_from(min(coverage))

    if "files" in wanted:
        files, notes = expand_paths(list(paths or DEFAULT_PATHS), warn)
        reports = []
        present = {}  # type: t.Dict[t.Tuple[int, int], bytes]
        if state.get("files"):
            for path, st in files:
                identity = read_head(path, st)
                if identity is not None:
                    present[(identity[0], identity[1])] = identity[2]
        scanned = []  # type: t.List[str]
        for path, st in files:
            file_report, record = scan_file(summary, path, state.get("files") or [], kernel_release, warn, present, st)
            reports.append(file_report)
            if record is not None:
                new_state["files"].append(record)
            if summary.pending(("files", path)):
                summary.resolve_releases(("files", path), _file_release_resolver(summary, path, scanned), fallback,
                                         warn, path)
            scanned.append(path)
        status = "scanned" if files else "skipped"
        report["files"] = {"status": status, "files": reports, "notes": notes}
        if not files:
            report["files"]["reason"] = "no log file matched %s" % ", ".join(paths or DEFAULT_PATHS)
            if explicit:
                warn("files source: %s" % report["files"]["reason"])

    result = summary.result(warn)
    result["sources"] = report
    result["skipped_sources"] = sorted(name for name, item in report.items() if item.get("status") == "skipped")
    return result, new_state


def run_scan(options: t.Mapping[str, t.Any], state: t.Dict[str, t.Any], warn: Warn, journalctl: t.Optional[str],
             now: float) -> t.Tuple[t.Dict[str, t.Any], t.Dict[str, t.Any]]:
    """Check ``options`` (validated against SCAN_OPTIONS) and scan; returns (result, new state).

    The result also says which ``kernel_release`` was given (or the running kernel each log fell back to)
    and ``since`` as an ISO time. Raises ValueError, naming the option, for a bad ``since``,
    ``kernel_release`` or ``max_events``.
    """
    since = parse_since(options["since"], now)  # its ValueError names "since" already
    kernel_release = options["kernel_release"] or None
    if kernel_release is not None:
        if len(kernel_release) > 128:
            raise ValueError("kernel_release: longer than any kernel release (%d characters)" % len(kernel_release))
        try:
            parse_release(kernel_release)
        except ValueError as exc:
            raise ValueError("kernel_release: %s" % exc)
    max_events = options["max_events"]
    if not 0 <= max_events <= MAX_EVENTS:
        # Bounded before it sizes the event deque (10**24 raised OverflowError there).
        raise ValueError("max_events must be between 0 and %d, got %s" % (
            MAX_EVENTS, max_events if abs(max_events) < 10 ** 30 else "a %d-digit number" % len(str(abs(max_events)))))
    result, new_state = scan(options["sources"], options["paths"], since, state, kernel_release, options["max_events"],
                             options["include_userspace_kmsg"], warn, journalctl=journalctl)
    result.update(kernel_release=kernel_release or running_release(), since=iso(since))
    return result, new_state


def _scan_kmsg(summary: Summary, kmsg_path: str, old: t.Dict[str, t.Any], new_state: t.Dict[str, t.Any],
               since: t.Optional[float], kernel_release: t.Optional[str], include_userspace: bool, warn: Warn,
               coverage: t.List[float], fallback: str) -> t.Dict[str, t.Any]:
    if not os.path.exists(kmsg_path):
        return {"status": "skipped", "reason": "%s does not exist" % kmsg_path}
    records, problem = read_kmsg(kmsg_path, warn)
    if problem:
        return {"status": "skipped", "reason": problem}
    try:
        live = stat.S_ISCHR(os.stat(kmsg_path).st_mode)
    except OSError:
        live = False
    boot_id = _boot_id()
    boot = _boot_epoch()
    after = -1
    if old.get("boot_id") == boot_id and isinstance(old.get("seq"), int):
        after = old["seq"]
    new_count = 0
    releases = []  # type: t.List[t.Tuple[int, str, str]]
    where = ("kmsg", kmsg_path)  # type: Context
    for index, record in enumerate(records):
        if not any(needle in record.message for needle in _TEXT_NEEDLES):
            if record.seq > after:
                new_count += 1
            continue
        text, spaced = normalise_spaces(record.message)
        if not live and record.facility == 0 and len(releases) < MAX_RELEASES:
            named = release_of(text)
            if named is not None and _usable_release(named[0]) and (not releases or releases[-1][1] != named[0]):
                releases.append((index, named[0], named[1]))
        if record.seq <= after:
            continue
        new_count += 1
        if not confirm_text(text):
            continue
        if record.facility != 0:
            # The kernel logs with facility 0 only; anything else was written into /dev/kmsg by a
            # process (any root process can), so it proves nothing about the kernel.
            if not include_userspace:
                summary.ignored["userspace_kmsg"] += 1
                continue
            origin = "kmsg_userspace"
        else:
            origin = "kmsg"
        speaker = parse_prefix(text, time.time())
        match = _classify(speaker.message, kernel_release)
        if match is None:
            continue
        stamp = boot + record.usec / 1e6
        summary.add(match, "kmsg", origin, stamp, record.usec / 1e6, speaker.message,
                    exact=not spaced, context=(where, index))
    if summary.pending(where):
        if live:
            # /dev/kmsg holds this boot's records: the running kernel wrote them.
            summary.resolve_releases(where, lambda _index: (fallback, "running kernel (this boot's ring buffer)"),
                                     fallback, warn, kmsg_path)
        else:
            def in_copy(index: int) -> t.Optional[t.Tuple[str, str]]:
                entry = _nearest_release(releases, index)
                return None if entry is None else (entry[1], "%s in record %d of %s" % (entry[2], entry[0], kmsg_path))
            summary.resolve_releases(where, in_copy, fallback, warn, kmsg_path)
    if records:
        coverage.append(boot + records[0].usec / 1e6)
        new_state["kmsg"] = {"boot_id": boot_id, "seq": records[-1].seq}
    return {"status": "scanned", "records": len(records), "new_records": new_count,
            "oldest": iso(boot + records[0].usec / 1e6) if records else None}


def _scan_journal(summary: Summary, journalctl: str, old: t.Dict[str, t.Any], new_state: t.Dict[str, t.Any],
                  since: t.Optional[float], kernel_release: t.Optional[str], include_userspace: bool, warn: Warn,
                  coverage: t.List[float], fallback: str) -> t.Dict[str, t.Any]:
    cursor = old.get("cursor") if isinstance(old.get("cursor"), str) else None
    first = old.get("first") if cursor and _is_time(old.get("first")) else None
    entries = 0
    last_cursor = cursor
    boots = {}  # type: t.Dict[str, t.Tuple[str, str]]
    for item in read_journal(journalctl, since, cursor, warn):
        if isinstance(item, str):
            warn("journal source skipped: %s" % item)
            return {"status": "skipped", "reason": item}
        if isinstance(item, int):
            entries = item
            continue
        entry = item  # type: JournalEntry
        if entry.cursor:
            last_cursor = entry.cursor
        if first is None and entry.realtime is not None:
            first = entry.realtime
        if not entry.message:
            continue
        text, spaced = normalise_spaces(entry.message)
        if entry.facility in (None, 0) and entry.boot_id and entry.boot_id not in boots and len(boots) < MAX_RELEASES:
            named = release_of(text)
            if named is not None and _usable_release(named[0]):
                boots[entry.boot_id] = (named[0], "%s of boot %s in the journal" % (named[1], entry.boot_id))
        if not confirm_text(text):
            continue
        origin = "journal"
        if entry.facility not in (None, 0):
            if not include_userspace:
                summary.ignored["userspace_kmsg"] += 1
                continue
            origin = "journal_userspace"
        match = _classify(text, kernel_release)
        if match is None:
            continue
        summary.add(match, "journal", origin, entry.realtime, None, text, exact=not spaced,
                    context=(("journal", entry.boot_id), 0))
    this_boot = _boot_id()
    for boot_id in set(event["_release"][0][1] for event in summary.events
                       if event.get("_release", (("",),))[0][0] == "journal"):
        if boot_id in boots:
            found = boots[boot_id]
        elif boot_id is not None and boot_id == this_boot:
            found = (fallback, "running kernel (this boot's journal)")
        else:
            found = None
        summary.resolve_releases(("journal", boot_id), lambda _position, found=found: found, fallback, warn,
                                 "journal boot %s" % boot_id)
    if first is not None:
        coverage.append(first)
    if last_cursor:
        new_state["journal"] = {"cursor": last_cursor, "first": first}
    return {"status": "scanned", "entries": entries, "oldest": iso(first)}


def _is_time(value: t.Any) -> bool:
    """An epoch time as a state file may hold it: a finite, non-negative number (not a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < 1e12
