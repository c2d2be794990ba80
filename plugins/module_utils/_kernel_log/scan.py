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
import time
import typing as t

from ansible_collections.memfrag.linux.plugins.module_utils._procfs.release import require_release as parse_release
from ansible_collections.memfrag.linux.plugins.module_utils._kernel_log.kinds import KINDS
from ansible_collections.memfrag.linux.plugins.module_utils._kernel_log.options import DEFAULT_PATHS, SOURCES
from ansible_collections.memfrag.linux.plugins.module_utils._kernel_log.patterns import (
    FORMS, Match, classify_message, has_prefix, iso, parse_prefix, parse_since, NEEDLES)
from ansible_collections.memfrag.linux.plugins.module_utils._kernel_log.sources import (
    JournalEntry, LineHit, compression_of, journal_available, open_decompressed, read_journal, read_kmsg, scan_plain_file,
    scan_stream, read_up_to, skip_bytes)
from ansible_collections.memfrag.linux.plugins.module_utils._kernel_log.state import HEAD_BYTES, file_record, resume_offset

_TEXT_NEEDLES = tuple(n.decode("ascii") for n in NEEDLES)

# Syslog stamps whole seconds (up to 1 s before the kernel's own time), and the ring buffer's wall time is
# uptime plus a boot time worked out now (as good as the clock's sync since boot). So a file line stamped just
# before the start of what the ring buffer or the journal covers may be a copy of a message just after it.
# Within this margin, a later source's event is a duplicate only when the earlier source has the same message
# at the start of its coverage.
EDGE_SECONDS = 2.0

Warn = t.Callable[[str], None]


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
        # Stream events (ring buffer, journal) near each stream's first event, and the messages at the start
        # of the coverage that a later source's copy may still match (see EDGE_SECONDS).
        self._stream_first = None  # type: t.Optional[float]
        self._edge_candidates = []  # type: t.List[t.Tuple[float, str]]
        self._edge_base = collections.Counter()  # type: t.Counter[str]
        self._edge = collections.Counter()  # type: t.Counter[str]

    def add(self, match: Match, source: str, origin: str, timestamp: t.Optional[float],
            uptime: t.Optional[float], message: str, path: t.Optional[str] = None,
            host: t.Optional[str] = None) -> None:
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
                 "timestamp": iso(timestamp), "message": message[:1024]}  # type: t.Dict[str, t.Any]
        if path is not None:
            event["path"] = path
        if uptime is not None:
            event["uptime"] = uptime
        for key, value in match.fields.items():
            if value is not None:
                event[key] = value
        if kind == "oom_kill" and self._invoked is not None:
            # The allocation that ran out of memory, from this report's "invoked oom-killer" line.
            for key in ("order", "mode", "gfp_flags"):
                if self._invoked.get(key) is not None:
                    event[key] = self._invoked[key]
            event["invoked_by"] = self._invoked.get("comm")
            self._invoked = None
        self.events_total += 1
        self.events.append(event)

    def _seen_in_other_file(self, path: str, host: t.Optional[str], timestamp: float, message: str) -> bool:
        """rsyslog writes kernel lines to several files (Debian: kern.log and syslog). The n-th copy of
        a (host, second, message) line in one file is a duplicate when another file already had n."""
        key = hash((host, int(timestamp), message))  # an int keeps memory small on hosts with event spam
        per_file = self._file_lines.setdefault(key, {})
        count = per_file.get(path, 0) + 1
        per_file[path] = count
        return any(other >= count for name, other in per_file.items() if name != path)

    def end_stream(self) -> None:
        self._invoked = None
        self._stream_first = None
        self._edge = collections.Counter(self._edge_base)  # each later source matches the edge afresh

    def cover_from(self, start: float) -> None:
        """The sources read so far hold every kernel message from ``start`` on."""
        self.covered_since = start
        self._edge_base = collections.Counter(
            message for stamp, message in self._edge_candidates if start <= stamp < start + EDGE_SECONDS)
        self._edge = collections.Counter(self._edge_base)

    def result(self) -> t.Dict[str, t.Any]:
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


def feed_line_hit(summary: Summary, hit: LineHit, path: str, reference: float,
                  kernel_release: t.Optional[str]) -> t.Optional[bool]:
    """Classify one file line; returns whether its bytes were invalid UTF-8 (None: not an event line)."""
    text, invalid = _decode(hit.line)
    speaker = parse_prefix(text, reference)
    match = classify_message(speaker.message, kernel_release)
    if match is None:
        return None
    if not match.complete and hit.following is not None:
        # A wrapped line (mail clients, narrow terminals): the rest of the message is on the next line.
        following, _bad = _decode(hit.following)
        if following.strip() and not has_prefix(following):
            joined = classify_message(speaker.message + " " + following.strip(), kernel_release)
            if joined is not None and joined.form == match.form:
                match = joined
    origin, kernel, timestamp, host = speaker.origin, speaker.kernel, speaker.timestamp, speaker.host
    if speaker.origin == "text" and hit.previous is not None:
        # A line without prefix continues the line before it (wrapping): same speaker, same time.
        previous = parse_prefix(_decode(hit.previous)[0], reference)
        if previous.origin == "syslog":
            origin, kernel, timestamp, host = "syslog", previous.kernel, previous.timestamp, previous.host
        elif previous.origin == "dmesg":
            origin, timestamp = "dmesg", previous.timestamp
    if not kernel:
        summary.ignored["not_kernel"] += 1
        return invalid
    summary.add(match, "files", origin, timestamp, speaker.uptime, speaker.message, path, host)
    return invalid


def expand_paths(patterns: t.Sequence[str], warn: Warn) -> t.Tuple[t.List[str], t.List[str]]:
    """Regular files matching ``patterns``, oldest first; and notes on what was skipped."""
    found = {}  # type: t.Dict[str, float]
    notes = []
    for pattern in patterns:
        matches = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else ([pattern] if os.path.lexists(pattern) else [])
        if not matches:
            notes.append("%s: no such file" % pattern)
        for path in matches:
            if os.path.islink(path):
                # Never follow a link out of the directory it sits in (a root-run module reading
                # whatever a link points at would disclose it).
                real = os.path.realpath(path)
                if os.path.dirname(real) != os.path.realpath(os.path.dirname(path)):
                    notes.append("%s: symlink to %s outside its directory; not followed" % (path, real))
                    continue
            try:
                st = os.stat(path)
            except OSError as exc:
                notes.append("%s: %s" % (path, exc.strerror))
                continue
            import stat as stat_mod
            if not stat_mod.S_ISREG(st.st_mode):
                notes.append("%s: not a regular file; skipped" % path)
                continue
            found[path] = st.st_mtime
    return sorted(found, key=lambda p: (found[p], p)), notes


def read_head(path: str) -> t.Optional[t.Tuple[int, int, bytes]]:
    """(dev, ino, first HEAD_BYTES of the decompressed content) of a file, or None."""
    try:
        with open(path, "rb") as raw:
            st = os.fstat(raw.fileno())
            compression = compression_of(raw.read(6))
            raw.seek(0)
            head = read_up_to(open_decompressed(raw, compression), HEAD_BYTES)
            return st.st_dev, st.st_ino, head
    except (IOError, OSError):
        return None


def scan_file(summary: Summary, path: str, old_records: t.List[t.Dict[str, t.Any]],
              kernel_release: t.Optional[str], warn: Warn,
              present: t.Optional[t.Dict[t.Tuple[int, int], bytes]] = None) -> t.Tuple[t.Dict[str, t.Any], t.Optional[t.Dict[str, t.Any]]]:
    """Scan one file from where the state says; (report, new state record)."""
    report = {"path": path}  # type: t.Dict[str, t.Any]
    try:
        raw = open(path, "rb")
    except (IOError, OSError) as exc:
        warn("%s: cannot open (%s); skipped" % (path, exc.strerror or exc))
        report["status"] = "unreadable"
        return report, None
    with raw:
        st = os.fstat(raw.fileno())
        compression = compression_of(raw.read(6))
        raw.seek(0)
        report["compression"] = compression
        head = read_up_to(open_decompressed(raw, compression), HEAD_BYTES)
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
        if compression:
            raw.seek(0)
            stream = open_decompressed(raw, compression)
            start = skip_bytes(stream, start, path, warn)
            items = scan_stream(stream, path, start, warn)
        else:
            # Up to the size seen now: lines appended while we read are left for the next run.
            items = scan_plain_file(raw, path, start, st.st_size, warn)
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
        report["end"] = end
        report["bytes_read"] = end - start
        record = file_record(path, st.st_dev, st.st_ino, end, head[:min(len(head), HEAD_BYTES)], bool(compression))
        if compression:
            record.update({"raw_size": st.st_size, "mtime": int(st.st_mtime)})
        return report, record


def _boot_epoch() -> float:
    # kmsg times are the kernel's monotonic clock since boot.
    return time.time() - time.clock_gettime(time.CLOCK_MONOTONIC)


def _boot_id() -> t.Optional[str]:
    try:
        with open("/proc/sys/kernel/random/boot_id") as handle:
            return handle.read().strip()
    except (IOError, OSError):
        return None


def scan(sources: t.Optional[t.Sequence[str]], paths: t.Optional[t.Sequence[str]], since: t.Optional[float],
         state: t.Dict[str, t.Any], kernel_release: t.Optional[str], max_events: int,
         include_userspace_kmsg: bool, warn: Warn, kmsg_path: str = "/dev/kmsg",
         journalctl: t.Optional[str] = None,
         journal_dirs: t.Sequence[str] = ("/var/log/journal", "/run/log/journal")) -> t.Tuple[t.Dict[str, t.Any], t.Dict[str, t.Any]]:
    """Run the scan; returns (result, new state). ``sources`` None means every source that exists."""
    summary = Summary(since, max_events)
    new_state = {"version": state.get("version", 1), "files": [], "journal": dict(state.get("journal") or {}),
                 "kmsg": dict(state.get("kmsg") or {})}
    report = {}  # type: t.Dict[str, t.Any]
    explicit = sources is not None
    wanted = list(sources) if explicit else list(SOURCES)
    coverage = []  # type: t.List[float]

    if "kmsg" in wanted:
        report["kmsg"] = _scan_kmsg(summary, kmsg_path, state.get("kmsg") or {}, new_state, since,
                                    kernel_release, include_userspace_kmsg, warn, coverage)
        if explicit and report["kmsg"]["status"] == "skipped":
            warn("kmsg source skipped: %s" % report["kmsg"]["reason"])
        summary.end_stream()
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
                                              kernel_release, include_userspace_kmsg, warn, coverage)
        summary.end_stream()
        if coverage:
            summary.cover_from(min(coverage))

    if "files" in wanted:
        files, notes = expand_paths(list(paths or DEFAULT_PATHS), warn)
        reports = []
        present = {}  # type: t.Dict[t.Tuple[int, int], bytes]
        if state.get("files"):
            for path in files:
                identity = read_head(path)
                if identity is not None:
                    present[(identity[0], identity[1])] = identity[2]
        for path in files:
            file_report, record = scan_file(summary, path, state.get("files") or [], kernel_release, warn, present)
            reports.append(file_report)
            if record is not None:
                new_state["files"].append(record)
        status = "scanned" if files else "skipped"
        report["files"] = {"status": status, "files": reports, "notes": notes}
        if not files:
            report["files"]["reason"] = "no log file matched %s" % ", ".join(paths or DEFAULT_PATHS)
            if explicit:
                warn("files source: %s" % report["files"]["reason"])

    result = summary.result()
    result["sources"] = report
    result["skipped_sources"] = sorted(name for name, item in report.items() if item.get("status") == "skipped")
    return result, new_state


def run_scan(options: t.Mapping[str, t.Any], state: t.Dict[str, t.Any], warn: Warn, journalctl: t.Optional[str],
             now: float) -> t.Tuple[t.Dict[str, t.Any], t.Dict[str, t.Any]]:
    """Check ``options`` (validated against SCAN_OPTIONS) and scan; returns (result, new state).

    The result also says which ``kernel_release`` decoded GFP modes and ``since`` as an ISO time. Raises
    ValueError, naming the option, for a bad ``since``, ``kernel_release`` or ``max_events``.
    """
    since = parse_since(options["since"], now)  # its ValueError names "since" already
    kernel_release = options["kernel_release"] or os.uname()[2]
    try:
        parse_release(kernel_release)
    except ValueError as exc:
        raise ValueError("kernel_release: %s" % exc)
    if options["max_events"] < 0:
        raise ValueError("max_events must be 0 or more, got %d" % options["max_events"])
    result, new_state = scan(options["sources"], options["paths"], since, state, kernel_release, options["max_events"],
                             options["include_userspace_kmsg"], warn, journalctl=journalctl)
    result.update(kernel_release=kernel_release, since=iso(since))
    return result, new_state


def _scan_kmsg(summary: Summary, kmsg_path: str, old: t.Dict[str, t.Any], new_state: t.Dict[str, t.Any],
               since: t.Optional[float], kernel_release: t.Optional[str], include_userspace: bool, warn: Warn,
               coverage: t.List[float]) -> t.Dict[str, t.Any]:
    if not os.path.exists(kmsg_path):
        return {"status": "skipped", "reason": "%s does not exist" % kmsg_path}
    records, problem = read_kmsg(kmsg_path, warn)
    if problem:
        return {"status": "skipped", "reason": problem}
    boot_id = _boot_id()
    boot = _boot_epoch()
    after = -1
    if old.get("boot_id") == boot_id and isinstance(old.get("seq"), int):
        after = old["seq"]
    new_count = 0
    for record in records:
        if record.seq <= after:
            continue
        new_count += 1
        if not any(needle in record.message for needle in _TEXT_NEEDLES):
            continue
        speaker = parse_prefix(record.message, time.time())
        match = classify_message(speaker.message, kernel_release)
        if match is None:
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
        stamp = boot + record.usec / 1e6
        summary.add(match, "kmsg", origin, stamp, record.usec / 1e6, speaker.message)
    if records:
        coverage.append(boot + records[0].usec / 1e6)
        new_state["kmsg"] = {"boot_id": boot_id, "seq": records[-1].seq}
    return {"status": "scanned", "records": len(records), "new_records": new_count,
            "oldest": iso(boot + records[0].usec / 1e6) if records else None}


def _scan_journal(summary: Summary, journalctl: str, old: t.Dict[str, t.Any], new_state: t.Dict[str, t.Any],
                  since: t.Optional[float], kernel_release: t.Optional[str], include_userspace: bool, warn: Warn,
                  coverage: t.List[float]) -> t.Dict[str, t.Any]:
    cursor = old.get("cursor") if isinstance(old.get("cursor"), str) else None
    first = old.get("first") if cursor else None
    entries = 0
    last_cursor = cursor
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
        if not entry.message or not any(needle in entry.message for needle in _TEXT_NEEDLES):
            continue
        match = classify_message(entry.message, kernel_release)
        if match is None:
            continue
        origin = "journal"
        if entry.facility not in (None, 0):
            if not include_userspace:
                summary.ignored["userspace_kmsg"] += 1
                continue
            origin = "journal_userspace"
        summary.add(match, "journal", origin, entry.realtime, None, entry.message)
    if first is not None:
        coverage.append(first)
    if last_cursor:
        new_state["journal"] = {"cursor": last_cursor, "first": first}
    return {"status": "scanned", "entries": entries, "oldest": iso(first)}
