# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""kernel_log: an ansible-rulebook event source that follows kernel logs as they are written.

One event per XFS allocation deadlock, page allocation failure or stall, hung task and OOM kill, recognised by
the same code as the kernel_log_scan module (plugins/module_utils/_kernel_log), so the same lines count and the
same lines do not: a user-space program quoting the kernel's text is no event.

Runs on the controller or in an execution environment (Python 3.9+), with the collection installed.
"""

import asyncio
import collections
import errno
import glob
import json
import logging
import os
import re
import socket
import stat
import sys
import time
from typing import Any, Deque, Dict, List, Optional, Tuple

DOCUMENTATION = r"""
---
short_description: Follow kernel logs and emit kernel memory events.
description:
  - An ansible-rulebook event source plugin that follows the kernel ring buffer (C(/dev/kmsg)), the journal
    (C(journalctl --dmesg --follow --output=json)) or log files (rotation and truncation followed, like
    C(tail -F)), including a central syslog server's per-host files.
  - Emits one event per XFS C(possible memory allocation deadlock), C(page allocation failure),
    C(page allocation stalls), hung task and OOM kill, recognised with the same patterns and the same
    kernel-origin rules as the M(memfrag.linux.kernel_log_scan) module. A syslog line counts only with the
    C(kernel) tag, ring-buffer and journal records only with facility 0; a user-space line quoting the
    kernel's text is no event.
  - Every source starts at the end: only what is written after the plugin started is reported.
  - 'Each event is C({"kernel_log": {...}, "meta": {"hosts": HOST}}): the decoded fields (C(kind), C(form),
    C(order), C(mode), C(gfp_flags), C(comm), C(pid), C(size), C(function), C(seconds), C(killed_pid)...
    as the kernel printed them), C(message) (the kernel message) and C(line) (the raw log line, files only),
    C(host), C(source), C(origin), C(path), C(timestamp) (ISO 8601, UTC) and C(rate) (allocation events from
    that host in the last O(reclaim_rate_window) seconds, and whether that reached O(reclaim_rate_events)).
    C(meta.hosts) is the host, so a C(run_playbook) action runs only there.'
  - A host name that is not a plain inventory host name (letters, digits, C(.), C(_), C(-); not C(all) or
    C(ungrouped)) would be an inventory pattern in C(--limit); such lines give no event and a warning.
options:
  sources:
    description:
      - What to follow. C(kmsg) is this host's ring buffer, C(journal) the kernel messages in this host's
        journal (or in O(journal_directory)), C(files) the files in O(paths).
      - Follow one source per host: the same message in two of them gives two events, except within
        O(dedup_window) seconds of each other.
    type: list
    elements: str
    choices: [kmsg, journal, files]
    default: [kmsg]
  paths:
    description:
      - Files to follow, as paths or globs; globs are expanded again every O(rescan_interval) seconds, so
        per-host files that appear later are followed from their first line.
      - Files that exist when the plugin starts are followed from their end.
      - A symlink is followed only to a file in the same directory; FIFOs and other non-regular files are skipped.
    type: list
    elements: str
    default: [/var/log/kern.log, /var/log/messages]
  host_from:
    description:
      - Where a file line's host comes from.
      - C(line) is the syslog line's own host field; a line without one takes the name of its file's directory
        when the path's directory part is a glob (C(/var/log/remote/*/messages)), else O(host).
      - C(directory) is always the name of the file's directory. Use it when the server names the directories
        from the connection (rsyslog C(%FROMHOST%)): the host field in a line is whatever the sender wrote.
      - C(local) is always O(host).
    type: str
    choices: [line, directory, local]
    default: line
  host:
    description:
      - The inventory name of this host, for C(kmsg) and local C(journal) events and file lines without a host.
      - Defaults to this machine's host name.
    type: str
  kernel_release:
    description:
      - The kernel release that decodes GFP modes printed without flag names (XFS prints C(mode:0x250) only).
      - Defaults to the running kernel for this host's events; other hosts' events keep the C(mode) without
        C(gfp_flags) unless this is set (decode them with the M(memfrag.linux.gfp_flags) filter).
    type: str
  journalctl:
    description: The journalctl program.
    type: str
    default: journalctl
  journal_directory:
    description:
      - Read the journal files in this directory (C(journalctl --directory)) instead of this host's journal,
        e.g. a C(systemd-journal-remote) server's; each event's host is then the entry's C(_HOSTNAME).
    type: str
  kmsg_path:
    description: The ring buffer device.
    type: str
    default: /dev/kmsg
  poll_interval:
    description: Seconds between checks of followed files for new lines, rotation and truncation.
    type: float
    default: 0.25
  rescan_interval:
    description: Seconds between expansions of the globs in O(paths).
    type: float
    default: 5
  reclaim_rate_events:
    description:
      - Allocation events (XFS deadlocks, page allocation failures and stalls) from one host within
        O(reclaim_rate_window) seconds that set C(rate.exceeded) on the event that reaches the count.
    type: int
    default: 5
  reclaim_rate_window:
    description: Seconds over which O(reclaim_rate_events) are counted.
    type: float
    default: 600
  dedup_window:
    description:
      - Seconds within which the same message from the same host seen in a second source is a copy (the
        kernel's line reaches the ring buffer, the journal and syslog). 0 turns this off.
    type: float
    default: 2
"""

EXAMPLES = r"""
# This host's kernel: the ring buffer.
- memfrag.linux.kernel_log:
    sources: [kmsg]

# A central rsyslog server writing /var/log/remote/<sender>/messages (template with %FROMHOST%).
- memfrag.linux.kernel_log:
    sources: [files]
    paths: [/var/log/remote/*/messages]
    host_from: directory

# A systemd-journal-remote server.
- memfrag.linux.kernel_log:
    sources: [journal]
    journal_directory: /var/log/journal/remote
"""

logger = logging.getLogger(__name__)

# The kinds the reclaim rate counts: the allocations that fail because free memory is fragmented. Hung tasks and
# OOM kills are reported, but reclaim is not the answer to them.
ALLOCATION_KINDS = ("xfs_alloc_deadlock", "page_alloc_failure", "page_alloc_stall")

# A host name is the --limit of the playbooks the rulebook runs: it must name one host, never a pattern
# ("all", "web*", "a:b", "!x", "~re", "a,b").
_HOST_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,252}")
_NOT_HOSTS = ("all", "ungrouped")
SOURCES = ("kmsg", "journal", "files")
HOST_FROM = ("line", "directory", "local")
MAX_MESSAGE = 1024  # as kernel_log_scan's events
READ_CHUNK = 1024 * 1024
# Per file and check: a file that grew by gigabytes is read over several checks, so other sources keep flowing.
MAX_READ_PER_CHECK = 8 * READ_CHUNK


# ---- the collection's kernel-log code ------------------------------------------------------------------------

def _own_collection_root() -> Optional[str]:
    """The directory holding ansible_collections/ when this file sits in an installed collection."""
    here = os.path.abspath(globals().get("__file__") or "")
    parts = here.split(os.sep)
    # .../ansible_collections/memfrag/linux/extensions/eda/plugins/event_source/kernel_log.py
    if len(parts) >= 9 and parts[-8:-5] == ["ansible_collections", "memfrag", "linux"]:
        return os.sep.join(parts[:-8]) or os.sep
    return None


def _kernel_log_modules() -> Tuple[Any, Any, Any]:
    """(patterns, sources, kinds) of this collection's module_utils/_kernel_log.

    ansible-rulebook runs this file with runpy, not as part of a package, so the collections directory this
    file was installed in is put on sys.path: the module_utils used are those installed beside this plugin.
    """
    root = _own_collection_root()
    if root is not None and root not in sys.path:
        sys.path.insert(0, root)
    # pylint: disable=import-outside-toplevel
    from ansible_collections.memfrag.linux.plugins.module_utils._kernel_log import kinds, patterns, sources
    return patterns, sources, kinds


patterns, kernel_log_sources, kernel_log_kinds = _kernel_log_modules()
if not set(ALLOCATION_KINDS) <= set(kernel_log_kinds.KINDS):
    raise ImportError("kernel_log: the collection's kernel-log kinds %s lack %s" % (kernel_log_kinds.KINDS, ALLOCATION_KINDS))


class Recognised:
    """What the collection's patterns say about one line or record."""

    __slots__ = ("kernel", "host", "timestamp", "uptime", "origin", "message", "match", "exact", "release")

    def __init__(self, kernel: bool, host: Optional[str], timestamp: Optional[float], uptime: Optional[float],
                 origin: str, message: str, match: Any, exact: bool = True,
                 release: Optional[Tuple[str, str]] = None) -> None:
        self.kernel = kernel        # False: another program wrote the line (its tag is not "kernel")
        self.host = host            # the syslog host field, if the line had one
        self.timestamp = timestamp
        self.uptime = uptime
        self.origin = origin        # syslog | dmesg | text
        self.message = message      # the kernel message, prefixes removed
        self.match = match          # patterns.Match (form, kind, fields, complete) or None
        self.exact = exact          # False: non-breaking spaces were read as spaces
        self.release = release      # (release, which line) when the kernel's message names its release


def recognise(line: str, reference: float, kernel_release: Optional[str], previous: Optional[str] = None,
              following: Optional[str] = None, record: Optional[str] = None) -> Recognised:
    """The one adapter over the collection's patterns, used for every source, with kernel_log_scan's rules.

    A file line (``record`` None): who wrote it is read from its prefix (parse_prefix) and only the kernel's
    lines are classified (classify_message); a line without a prefix continues the line before it (same
    speaker and time); a message cut short (no mode yet) is joined with the following line when that line has
    no prefix of its own. A ``kmsg`` or ``journal`` record is the kernel's or not by its facility, which the
    caller checks: a kmsg record's dmesg stamps are removed, a journal message is classified as it is.
    Non-breaking spaces are read as spaces where the patterns do so.
    """
    normalise = getattr(patterns, "normalise_spaces", None)
    release_of = getattr(patterns, "release_of", None)

    def plain(text: str) -> str:
        return normalise(text)[0] if normalise is not None else text

    def named_release(message: str) -> Optional[Tuple[str, str]]:
        if release_of is not None and ("Linux version " in message or "ainted" in message):
            return release_of(message)
        return None

    original = line
    line = plain(line)
    exact = line == original
    if record == "journal":
        return Recognised(True, None, None, None, "journal", line, patterns.classify_message(line, kernel_release),
                          exact, named_release(line))
    speaker = patterns.parse_prefix(line, reference)
    if record == "kmsg":
        return Recognised(True, None, None, speaker.uptime, "kmsg", speaker.message,
                          patterns.classify_message(speaker.message, kernel_release), exact,
                          named_release(speaker.message))
    kernel, host, timestamp, origin = speaker.kernel, speaker.host, speaker.timestamp, speaker.origin
    if speaker.origin == "text" and previous is not None:
        before = patterns.parse_prefix(plain(previous), reference)
        if before.origin == "syslog":
            kernel, host, timestamp, origin = before.kernel, before.host, before.timestamp, "syslog"
        elif before.origin == "dmesg":
            timestamp, origin = before.timestamp, "dmesg"
    if not kernel:
        return Recognised(False, host, timestamp, speaker.uptime, origin, speaker.message, None)
    match = patterns.classify_message(speaker.message, kernel_release)
    message = speaker.message
    if not exact:  # as the scanner: only a non-breaking space inside the message makes it not byte-exact
        stripped = original.strip()
        exact = not message or "\xa0" not in stripped[len(stripped) - len(message):]
    if match is not None and not match.complete and following is not None:
        rest = plain(following).strip()
        if rest and not patterns.has_prefix(rest):
            joined = patterns.classify_message(message + " " + rest, kernel_release)
            if joined is not None and joined.form == match.form:
                match = joined  # the event's message stays the line's own, as kernel_log_scan reports it
                exact = exact and plain(rest) == rest
    return Recognised(True, host, timestamp, speaker.uptime, origin, message, match, exact, named_release(message))


def event_needles() -> Tuple[bytes, ...]:
    """Byte strings one of which is in every event line (lines without any are not decoded)."""
    needles = tuple(patterns.NEEDLES)
    nbsp = getattr(patterns, "NBSP_NEEDLE", None)
    return needles + ((nbsp,) if nbsp else ())


NEEDLES = event_needles()
# Lines that may name the kernel release of the host that wrote them (boot banner, taint lines of reports).
RELEASE_NEEDLES = tuple(getattr(patterns, "RELEASE_NEEDLES", ()))


# ---- options --------------------------------------------------------------------------------------------------

class Options:
    """The plugin's arguments, checked; ValueError names the argument."""

    def __init__(self, args: Dict[str, Any]) -> None:
        known = ("sources", "paths", "host_from", "host", "kernel_release", "journalctl", "journal_directory",
                 "kmsg_path", "poll_interval", "rescan_interval", "reclaim_rate_events", "reclaim_rate_window",
                 "dedup_window")
        unknown = sorted(k for k in args if k not in known and not str(k).startswith("eda_"))
        if unknown:
            raise ValueError("kernel_log: unknown argument(s) %s; known: %s" % (", ".join(unknown), ", ".join(known)))
        self.sources = _str_list(args, "sources", ["kmsg"])
        for source in self.sources:
            if source not in SOURCES:
                raise ValueError("kernel_log: sources: %r is not one of %s" % (source, ", ".join(SOURCES)))
        if not self.sources:
            raise ValueError("kernel_log: sources is empty")
        self.paths = _str_list(args, "paths", ["/var/log/kern.log", "/var/log/messages"])
        if "files" in self.sources and not self.paths:
            raise ValueError("kernel_log: paths is empty but sources has files")
        self.host_from = args.get("host_from") or "line"
        if self.host_from not in HOST_FROM:
            raise ValueError("kernel_log: host_from: %r is not one of %s" % (self.host_from, ", ".join(HOST_FROM)))
        own = args.get("host") or socket.gethostname()
        self.host = check_host(str(own))
        if self.host is None:
            raise ValueError("kernel_log: host: %r is not a plain inventory host name" % (own,))
        self.kernel_release = args.get("kernel_release") or None
        if self.kernel_release is not None:
            probe = patterns.classify_message("XFS: possible memory allocation deadlock in kmem_alloc (mode:0x250)",
                                              str(self.kernel_release))
            if probe is None or not probe.fields.get("gfp_flags"):
                raise ValueError("kernel_log: kernel_release: %r is not a kernel release GFP modes can be decoded for"
                                 % (self.kernel_release,))
        self.journalctl = str(args.get("journalctl") or "journalctl")
        self.journal_directory = args.get("journal_directory") or None
        self.kmsg_path = str(args.get("kmsg_path") or "/dev/kmsg")
        self.poll_interval = _number(args, "poll_interval", 0.25, 0.01, 60)
        self.rescan_interval = _number(args, "rescan_interval", 5.0, 0.05, 3600)
        self.reclaim_rate_events = int(_number(args, "reclaim_rate_events", 5, 1, 1000000))
        self.reclaim_rate_window = _number(args, "reclaim_rate_window", 600.0, 1, 7 * 86400)
        self.dedup_window = _number(args, "dedup_window", 2.0, 0, 60)


def _str_list(args: Dict[str, Any], name: str, default: List[str]) -> List[str]:
    value = args.get(name)
    if value is None:
        return list(default)
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(item, str) for item in value):
        raise ValueError("kernel_log: %s must be a list of strings, got %r" % (name, value))
    return list(value)


def _number(args: Dict[str, Any], name: str, default: float, low: float, high: float) -> float:
    value = args.get(name, default)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError("kernel_log: %s must be a number, got %r" % (name, value)) from None
    if not low <= number <= high:
        raise ValueError("kernel_log: %s must be between %s and %s, got %r" % (name, low, high, value))
    return number


def check_host(name: Optional[str]) -> Optional[str]:
    """``name`` when it is a plain host name that --limit reads as that one host, else None."""
    if not name or not _HOST_NAME.fullmatch(name) or name.lower() in _NOT_HOSTS:
        return None
    return name


def host_of_file_line(options: Options, line_host: Optional[str], path: str, pattern: str) -> Optional[str]:
    """The host a file line came from, by ``host_from`` (None: no usable name)."""
    directory = os.path.basename(os.path.dirname(path))
    if options.host_from == "local":
        return options.host
    if options.host_from == "directory":
        return directory
    if line_host:
        return line_host
    if glob.has_magic(os.path.dirname(pattern)):
        return directory
    return options.host


# ---- events ---------------------------------------------------------------------------------------------------

class Emitter:
    """Turns recognised lines into events: host check, OOM report context, copies across sources, the rate."""

    def __init__(self, options: Options, queue: Any) -> None:
        self.options = options
        self.queue = queue
        self.running_release = os.uname().release
        self._releases = {}  # type: Dict[str, Tuple[str, str]]
        self._invoked = {}  # type: Dict[str, Dict[str, Any]]
        self._recent = collections.OrderedDict()  # type: collections.OrderedDict
        self._rates = {}  # type: Dict[str, Deque[float]]
        self._bad_hosts = 0
        self.emitted = 0

    def release_for(self, host: Optional[str]) -> Optional[Tuple[str, str]]:
        """(release, where it comes from) that decodes a host's GFP modes printed without names, or None."""
        if self.options.kernel_release:
            return self.options.kernel_release, "kernel_release option"
        if host is None or host == self.options.host:
            return self.running_release, "running kernel"
        return self._releases.get(host)

    def learn_release(self, host: Optional[str], found: Recognised) -> None:
        """Remember the release a host's kernel named in its own log (boot banner, taint line)."""
        if host is not None and found.kernel and found.release is not None:
            if host not in self._releases and len(self._releases) >= 100000:
                self._releases.clear()  # bounded whatever host names lines carry
            self._releases[host] = (found.release[0], "%s in %s's log" % (found.release[1], host))

    def build(self, match: Any, stream: str, host: Optional[str], source: str, origin: str,
              timestamp: Optional[float], message: str, uptime: Optional[float] = None, path: Optional[str] = None,
              line: Optional[str] = None, now: Optional[float] = None, exact: bool = True,
              release: Optional[Tuple[str, str]] = None) -> List[Dict[str, Any]]:
        """The events for one recognised message: none (not a kind of event, a bad host, a copy), its
        ``kernel_log`` event, and after it a ``kernel_log_rate`` event when its host reached the reclaim rate.

        The rate is an event of its own so that a rule throttled on kernel_log events (diagnose) and one
        throttled on rate events (reclaim) never compete for the same event."""
        report = "%s\0%s" % (stream, host)  # a shared file holds the reports of many hosts
        if match.form == "oom_invoked":
            # The allocation that ran out of memory, for this report's kill line.
            if report not in self._invoked and len(self._invoked) >= 10000:
                self._invoked.clear()  # reports whose kill line never came; bounded whatever lines say
            self._invoked[report] = match.fields
            return []
        if match.kind is None:
            return []
        checked = check_host(host)
        if checked is None:
            self._bad_hosts += 1
            if self._bad_hosts <= 10 or self._bad_hosts % 1000 == 0:
                logger.warning("kernel_log: %s event from %s with host %r, which is not a plain inventory host name; "
                               "ignored (%d so far)", match.kind, path or source, (host or "")[:100], self._bad_hosts)
            return []
        now = time.monotonic() if now is None else now
        if self._copy(checked, message, source, now):
            return []
        data = {"kind": match.kind, "form": match.form, "host": checked, "source": source, "origin": origin,
                "timestamp": patterns.iso(timestamp), "message": message[:MAX_MESSAGE],
                "byte_exact": exact}  # type: Dict[str, Any]
        fields = match.fields
        if match.kind == "oom_kill" and report in self._invoked:
            # The allocation that ran out of memory, from this report's "invoked oom-killer" line.
            invoked = self._invoked.pop(report)
            fields = dict(fields, invoked_by=invoked.get("comm"))
            for key in ("order", "mode", "gfp_flags", "gfp_flags_source"):
                if invoked.get(key) is not None:
                    fields[key] = invoked[key]
        for key, value in fields.items():
            if value is not None and key not in data:
                data[key] = value
        if release is not None and str(data.get("gfp_flags_source", "")).startswith("decoded"):
            data["gfp_release"], data["gfp_release_source"] = release
        if getattr(match, "problems", None):
            data["problems"] = list(match.problems)  # numbers no kernel prints: those fields are null
        if uptime is not None:
            data["uptime"] = uptime
        if path is not None:
            data["path"] = path
        if line is not None:
            data["line"] = line[:MAX_MESSAGE * 2]
        rate = self._rate(checked, match.kind, now)
        data["rate"] = rate
        events = [{"kernel_log": data, "meta": {"hosts": checked}}]
        if rate["exceeded"]:
            events.append({"kernel_log_rate": dict(rate, host=checked, kind=match.kind, timestamp=data["timestamp"]),
                           "meta": {"hosts": checked}})
        return events

    def _copy(self, host: str, message: str, source: str, now: float) -> bool:
        """True when another source already gave this (host, message) within dedup_window: the n-th copy in
        one source is a duplicate when another source had n (a burst of the same line in one file is not)."""
        window = self.options.dedup_window
        if window <= 0:
            return False
        while self._recent:
            key, (first, _counts) = next(iter(self._recent.items()))
            if now - first <= window:
                break
            self._recent.popitem(last=False)
        key = (host, message)
        entry = self._recent.get(key)
        if entry is None:
            entry = (now, {})
            self._recent[key] = entry
        counts = entry[1]
        counts[source] = counts.get(source, 0) + 1
        return any(count >= counts[source] for other, count in counts.items() if other != source)

    def _rate(self, host: str, kind: str, now: float) -> Dict[str, Any]:
        window = self.options.reclaim_rate_window
        threshold = self.options.reclaim_rate_events
        times = self._rates.get(host)
        if kind in ALLOCATION_KINDS:
            if times is None:
                times = self._rates[host] = collections.deque(maxlen=max(threshold, 1000))
            times.append(now)
        if times is not None:
            while times and now - times[0] > window:
                times.popleft()
            if not times:
                del self._rates[host]
        if len(self._rates) > 100000:  # hosts that went quiet; the dict stays bounded whatever hosts lines name
            for name in [name for name, stamps in self._rates.items() if now - stamps[-1] > window]:
                del self._rates[name]
        count = len(times) if times else 0
        return {"events": count, "window": window, "threshold": threshold,
                "exceeded": kind in ALLOCATION_KINDS and count >= threshold}

    async def put(self, events: List[Dict[str, Any]]) -> None:
        for event in events:
            self.emitted += 1
            await self.queue.put(event)


# ---- the ring buffer ------------------------------------------------------------------------------------------

def kmsg_event(emitter: Emitter, raw: bytes, boot_epoch: float) -> List[Dict[str, Any]]:
    """The events for one /dev/kmsg record (Emitter.build). Only facility 0 is the kernel: a process writing
    into /dev/kmsg gets facility 1 (user) or its own, never 0."""
    if not any(needle in raw for needle in NEEDLES):
        return []
    record = kernel_log_sources.parse_kmsg_record(raw)
    if record is None:
        return []
    host = emitter.options.host
    release = emitter.release_for(host)
    found = recognise(record.message, time.time(), release[0] if release else None, record="kmsg")
    if found.match is None:
        return []
    if record.facility != 0:
        logger.info("kernel_log: a %s record in %s with facility %d was written by a process, not the kernel; ignored",
                    found.match.form, emitter.options.kmsg_path, record.facility)
        return []
    uptime = record.usec / 1e6
    return emitter.build(found.match, "kmsg", host, "kmsg", "kmsg", boot_epoch + uptime, found.message, uptime=uptime,
                         exact=found.exact, release=release)


def boot_epoch() -> float:
    """The wall time of boot: /dev/kmsg stamps records with the monotonic clock since boot."""
    return time.time() - time.clock_gettime(time.CLOCK_MONOTONIC)


async def follow_kmsg(emitter: Emitter) -> None:
    path = emitter.options.kmsg_path
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if not stat.S_ISCHR(os.fstat(fd).st_mode):
            raise ValueError("kernel_log: %s is not the kernel's ring buffer device" % path)
        os.lseek(fd, 0, os.SEEK_END)  # only records logged from now on
        loop = asyncio.get_running_loop()
        ready = asyncio.Event()
        loop.add_reader(fd, ready.set)
        logger.info("kernel_log: following %s", path)
        try:
            while True:
                await ready.wait()
                ready.clear()
                while True:
                    try:
                        raw = os.read(fd, 16384)  # one record per read
                    except BlockingIOError:
                        break
                    except OSError as exc:
                        if exc.errno == errno.EPIPE:
                            logger.warning("kernel_log: %s: records were overwritten before they were read", path)
                            continue
                        raise
                    if not raw:
                        break
                    await emitter.put(kmsg_event(emitter, raw, boot_epoch()))
        finally:
            loop.remove_reader(fd)
    finally:
        os.close(fd)


# ---- the journal ----------------------------------------------------------------------------------------------

def journal_argv(options: Options) -> List[str]:
    """journalctl's arguments: new kernel entries as JSON, one per line, until stopped."""
    argv = [options.journalctl, "--follow", "--lines=0", "--output=json", "--no-pager"]
    if options.journal_directory:
        # Other machines' journals: every boot, every host; --dmesg would mean this machine's boot only.
        return argv + ["--directory=" + options.journal_directory, "_TRANSPORT=kernel"]
    return argv + ["--dmesg"]


def journal_event(emitter: Emitter, raw: bytes) -> List[Dict[str, Any]]:
    """The events for one journalctl JSON line (Emitter.build). A process writing into /dev/kmsg reaches the journal with
    the kernel transport too; only facility 0 (or none) is the kernel, as in kernel_log_scan."""
    if (not any(needle in raw for needle in NEEDLES + RELEASE_NEEDLES)
            and b'"MESSAGE":[' not in raw.replace(b" ", b"")):
        return []
    try:
        entry = json.loads(raw)
    except ValueError:
        logger.warning("kernel_log: journalctl printed a line that is not JSON; skipped")
        return []
    if not isinstance(entry, dict):
        return []
    message = entry.get("MESSAGE")
    if isinstance(message, list):  # journald keeps non-UTF-8 messages as byte arrays
        message = bytes(v for v in message if isinstance(v, int) and 0 <= v < 256).decode("utf-8", "replace")
    if not isinstance(message, str) or not message:
        return []
    try:
        facility = int(entry["SYSLOG_FACILITY"])  # type: Optional[int]
    except (KeyError, TypeError, ValueError):
        facility = None
    if facility not in (None, 0):
        return []
    host = emitter.options.host
    if emitter.options.journal_directory:
        host = entry.get("_HOSTNAME") if isinstance(entry.get("_HOSTNAME"), str) else None
    if emitter.options.journal_directory:  # other machines: each one's release from its own banner or taint lines
        emitter.learn_release(host, recognise(message, time.time(), None, record="journal"))
    release = emitter.release_for(host)
    found = recognise(message, time.time(), release[0] if release else None, record="journal")
    if found.match is None:
        return []
    try:
        stamp = int(entry.get("__REALTIME_TIMESTAMP")) / 1e6  # type: Optional[float]
    except (TypeError, ValueError):
        stamp = None
    return emitter.build(found.match, "journal:%s" % host, host, "journal", "journal", stamp, found.message,
                         exact=found.exact, release=release)


async def follow_journal(emitter: Emitter) -> None:
    argv = journal_argv(emitter.options)
    proc = await asyncio.create_subprocess_exec(*argv, stdin=asyncio.subprocess.DEVNULL,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                                                limit=4 * patterns.MAX_LINE + 65536)
    logger.info("kernel_log: following the journal: %s", " ".join(argv))
    try:
        while True:
            try:
                raw = await proc.stdout.readline()
            except ValueError:  # longer than the limit: not a kernel record
                logger.warning("kernel_log: an overlong journal entry was skipped")
                continue
            if not raw:
                break
            await emitter.put(journal_event(emitter, raw))
        err = (await proc.stderr.read()).decode("utf-8", "replace").strip()
        code = await proc.wait()
        raise RuntimeError("kernel_log: %s stopped (rc=%s): %s" % (argv[0], code, err[-500:]))
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 5)
            except asyncio.TimeoutError:
                proc.kill()
                await proc.wait()


# ---- files ----------------------------------------------------------------------------------------------------

def expand(patterns_: List[str]) -> Dict[str, str]:
    """Regular files matching the paths or globs now: {path: the pattern that matched it}."""
    found = {}  # type: Dict[str, str]
    for pattern in patterns_:
        names = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
        for path in names:
            if path in found:
                continue
            try:
                if os.path.islink(path):
                    # Never follow a link out of its directory (as kernel_log_scan).
                    real = os.path.realpath(path)
                    if os.path.dirname(real) != os.path.realpath(os.path.dirname(path)):
                        continue
                if not stat.S_ISREG(os.stat(path).st_mode):
                    continue
            except OSError:
                continue
            found[path] = pattern
    return found


class FollowedFile:
    """One file followed like tail -F: by name, through rotation (a new file under the name) and truncation."""

    def __init__(self, path: str, pattern: str, from_end: bool) -> None:
        self.path = path
        self.pattern = pattern
        self.fd = None  # type: Optional[int]
        self.identity = None  # type: Optional[Tuple[int, int]]
        self.offset = 0
        self.carry = b""
        self.skipping = False   # inside a line longer than the patterns' MAX_LINE
        self.previous = None  # type: Optional[bytes]
        self.pending = None  # type: Optional[Tuple[bytes, Optional[bytes], float]]
        self.open(from_end)

    def open(self, from_end: bool) -> bool:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            return False
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):  # replaced by a FIFO or a device since the glob
            os.close(fd)
            return False
        self.fd = fd
        self.identity = (st.st_dev, st.st_ino)
        self.offset = st.st_size if from_end else 0
        self.carry, self.skipping, self.previous = b"", False, None
        return True

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def read_lines(self, final: bool = False) -> List[bytes]:
        """Complete lines appended since the last call (``final``: the file is left, its last part is a line)."""
        if self.fd is None:
            return []
        lines = []  # type: List[bytes]
        budget = MAX_READ_PER_CHECK
        while budget > 0:
            try:
                data = os.pread(self.fd, READ_CHUNK, self.offset)
            except OSError as exc:
                logger.warning("kernel_log: %s: read failed (%s)", self.path, exc.strerror)
                break
            if not data:
                break
            self.offset += len(data)
            budget -= len(data)
            self._split(data, lines)
        if final and self.carry and not self.skipping:
            lines.append(self.carry)
            self.carry = b""
        return lines

    def _split(self, data: bytes, lines: List[bytes]) -> None:
        start = 0
        while True:
            newline = data.find(b"\n", start)
            if newline == -1:
                break
            if self.skipping:
                self.skipping = False
            elif len(self.carry) + newline - start > patterns.MAX_LINE:
                self._overlong()
                self.skipping = False
            else:
                lines.append(self.carry + data[start:newline])
            self.carry = b""
            start = newline + 1
        if not self.skipping:
            self.carry += data[start:]
            if len(self.carry) > patterns.MAX_LINE:
                self.carry, self.skipping = b"", True
                self._overlong()

    def _overlong(self) -> None:
        # Not kernel output (a kernel record is at most about 1 KiB), as kernel_log_scan: dropped up to its newline.
        logger.warning("kernel_log: %s: a line of more than %d bytes was skipped", self.path, patterns.MAX_LINE)

    def check(self) -> str:
        """``same``, ``truncated``, ``replaced`` (a new file under the name) or ``gone``."""
        try:
            st = os.stat(self.path)
        except OSError:
            return "gone"
        if (st.st_dev, st.st_ino) != self.identity:
            return "replaced"
        if st.st_size < self.offset:
            return "truncated"
        return "same"


def _text(raw: Optional[bytes]) -> Optional[str]:
    """A log line's text; NUL bytes dropped, bytes that are not UTF-8 shown as U+FFFD (as kernel_log_scan)."""
    return None if raw is None else raw.replace(b"\x00", b"").decode("utf-8", "replace")


def _valid_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def file_event(emitter: Emitter, followed: FollowedFile, line: bytes, previous: Optional[bytes],
               following: Optional[bytes]) -> List[Dict[str, Any]]:
    """The events for one file line (Emitter.build). Only lines tagged ``kernel`` are the kernel's."""
    text = _text(line)
    found = recognise(text, time.time(), None, _text(previous), _text(following))
    if not found.kernel:
        return []
    host = host_of_file_line(emitter.options, found.host, followed.path, followed.pattern)
    emitter.learn_release(host, found)
    if found.match is None:
        return []
    release = emitter.release_for(host)
    if release is not None and found.match.fields.get("mode") is not None and "gfp_flags" not in found.match.fields:
        # The host is known only once the line is read: decode its GFP mode for that host's kernel now.
        found = recognise(text, time.time(), release[0], _text(previous), _text(following))
    return emitter.build(found.match, "file:" + followed.path, host, "files", found.origin, found.timestamp,
                         found.message, uptime=found.uptime, path=followed.path, line=text.rstrip("\r"),
                         exact=found.exact and _valid_utf8(line), release=release)


class FileFollower:
    """Every file the paths match, each followed from its end (or its start when it appeared later)."""

    def __init__(self, emitter: Emitter) -> None:
        self.emitter = emitter
        self.options = emitter.options
        self.files = {}  # type: Dict[str, FollowedFile]
        self.needles = NEEDLES + RELEASE_NEEDLES
        self.started = False
        self._said_nothing = False

    def rescan(self) -> None:
        matched = expand(self.options.paths)
        for path, pattern in matched.items():
            if path not in self.files:
                followed = FollowedFile(path, pattern, from_end=not self.started)
                if followed.fd is not None:
                    self.files[path] = followed
                    logger.info("kernel_log: following %s%s", path, "" if not self.started else " from its start")
        if not self.files and not self._said_nothing:
            self._said_nothing = True
            logger.warning("kernel_log: no file matches %s yet; looking again every %g s",
                           ", ".join(self.options.paths), self.options.rescan_interval)
        self.started = True

    async def check_all(self, now: float) -> None:
        for path in list(self.files):
            followed = self.files[path]
            state = followed.check()
            if state == "truncated":
                logger.info("kernel_log: %s was truncated; reading it from its start", path)
                await self._lines(followed, followed.read_lines(final=True), now)
                followed.offset, followed.carry, followed.skipping = 0, b"", False
            elif state in ("replaced", "gone"):
                # Rotated (renamed away, a new file created) or removed: what was written to the old file up to
                # now is still read, then the new file under the name is followed from its first line.
                await self._lines(followed, followed.read_lines(final=True), now)
                await self._flush(followed, now, force=True)
                followed.close()
                if state == "gone" or not followed.open(from_end=False):
                    del self.files[path]
                    continue
                logger.info("kernel_log: %s was replaced (rotated); following the new file", path)
            await self._lines(followed, followed.read_lines(), now)
            await self._flush(followed, now)

    async def _lines(self, followed: FollowedFile, lines: List[bytes], now: float) -> None:
        for line in lines:
            if followed.pending is not None:
                held, previous, _since = followed.pending
                followed.pending = None
                await self.emitter.put(file_event(self.emitter, followed, held, previous, line))
            if any(needle in line for needle in self.needles):
                previous = followed.previous
                probe = recognise(_text(line), time.time(), None, _text(previous))
                if probe.kernel and probe.match is not None and not probe.match.complete:
                    # Cut short (a wrapped line): wait for the next line, or a poll interval, before emitting.
                    followed.pending = (line, previous, now)
                else:
                    await self.emitter.put(file_event(self.emitter, followed, line, previous, None))
            followed.previous = line

    async def _flush(self, followed: FollowedFile, now: float, force: bool = False) -> None:
        if followed.pending is not None and (force or now - followed.pending[2] >= self.options.poll_interval):
            held, previous, _since = followed.pending
            followed.pending = None
            await self.emitter.put(file_event(self.emitter, followed, held, previous, None))

    async def flush(self) -> None:
        """Emit every line held back for a possible continuation."""
        for followed in list(self.files.values()):
            await self._flush(followed, time.monotonic(), force=True)

    def close(self) -> None:
        for followed in self.files.values():
            followed.close()
        self.files.clear()

    async def run(self) -> None:
        last_scan = None  # type: Optional[float]
        try:
            while True:
                now = time.monotonic()
                if last_scan is None or now - last_scan >= self.options.rescan_interval:
                    self.rescan()
                    last_scan = now
                await self.check_all(now)
                await asyncio.sleep(self.options.poll_interval)
        finally:
            self.close()


# ---- entry point ----------------------------------------------------------------------------------------------

async def main(queue: Any, args: Dict[str, Any]) -> None:
    """Follow the configured sources and put one event per kernel memory event on ``queue`` (until cancelled)."""
    options = Options(args)
    emitter = Emitter(options, queue)
    tasks = []
    if "kmsg" in options.sources:
        tasks.append(asyncio.ensure_future(follow_kmsg(emitter)))
    if "journal" in options.sources:
        tasks.append(asyncio.ensure_future(follow_journal(emitter)))
    if "files" in options.sources:
        tasks.append(asyncio.ensure_future(FileFollower(emitter).run()))
    try:
        # The first source to fail stops them all: a rulebook that silently lost its source would watch nothing.
        done, _pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            task.result()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


if __name__ == "__main__":
    # python kernel_log.py '{"sources": ["files"], "paths": ["/var/log/messages"]}': print events as they come.
    class _PrintQueue:
        async def put(self, event: Dict[str, Any]) -> None:
            print(json.dumps(event), flush=True)

    asyncio.run(main(_PrintQueue(), json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}))
