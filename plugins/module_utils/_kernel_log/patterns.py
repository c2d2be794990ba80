# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the kernel prints for allocation deadlocks, failures, stalls, hung tasks and OOM kills.

Two stages, because production logs are gigabytes of noise with a few hundred interesting lines:

1. ``NEEDLES``: four byte strings at least one of which is in every line of interest. Sources search
   big binary chunks with ``bytes.find`` (CPython's fast search) and only the lines around a hit
   are decoded. Four needles cover every form below (see ``needle_for_form`` in the tests).
2. ``classify_line``: the line's prefix (syslog, ``dmesg``, ``dmesg -T``, bare text) says who wrote
   it and when; the message is then matched against the exact forms of each kernel era
   (shared/reference/kernel-formats.md sections 5-7).

Only the kernel speaks: a syslog line counts only when its program tag is ``kernel``. A line
without any prefix (a mail-wrapped continuation, a pasted excerpt) takes the speaker of the line
before it when that line has a syslog prefix.
"""


import calendar
import datetime
import re
import time
import typing as t

from ansible_collections.memfrag.linux.plugins.module_utils._mm.gfp import decode, split_names

# Kinds reported in ``counts`` (always all present).

# Every message form we recognise; ``forms`` in the result counts lines per form. The oom_* forms
# other than oom_killed/oom_kill_shared_mm are parts of an OOM report, not kills.
FORMS = ("xfs_alloc_deadlock", "page_alloc_failure", "page_alloc_stall", "hung_task",
         "oom_invoked", "oom_kill_candidate", "oom_constraint", "oom_killed", "oom_kill_shared_mm")

FORM_KIND = {
    "xfs_alloc_deadlock": "xfs_alloc_deadlock",
    "page_alloc_failure": "page_alloc_failure",
    "page_alloc_stall": "page_alloc_stall",
    "hung_task": "hung_task",
    "oom_killed": "oom_kill",
    "oom_kill_shared_mm": "oom_kill",
}

# "allocation": XFS deadlock, page allocation failure and stall. "blocked for more than": hung task.
# "oom-kill": "invoked oom-killer" and the 5.x "oom-kill:constraint=" summary. " process ":
# "Killed process", "Kill process ... score/sharing same memory" and 2.6.32's "kill process".
NEEDLES = (b"allocation", b"blocked for more than", b"oom-kill", b" process ")
# " process " is common in noise (systemd's "Main process exited", "Killing process"): a hit counts
# only right after one of these words, checked in place before the line is even cut out.
NEEDLE_AFTER = {b" process ": (b"Kill", b"kill", b"Killed")}
# Cheap confirmation on the raw line before any decoding or prefix parsing.
CONFIRM = re.compile(rb"possible memory allocation deadlock|page allocation (?:failure|stalls)"
                     rb"|blocked for more than \d+ seconds|invoked oom-killer|oom-kill:constraint"
                     rb"|[Kk]ill(?:ed)? process")

# Longest line worth decoding. The kernel's own limit is 1024 bytes (LOG_LINE_MAX) plus a syslog
# prefix; anything far longer is not kernel output.
MAX_LINE = 64 * 1024

_MONTHS = dict((name, number) for number, name in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1))
_MON = r"(?P<mon>Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
_CLOCK = r"(?P<hh>\d\d):(?P<mi>\d\d):(?P<ss>\d\d)(?:\.(?P<frac>\d+))?"
_ISO = (r"(?P<iso>(?P<y>\d{4})-(?P<m>\d\d)-(?P<d>\d\d)[T ](?P<ihh>\d\d):(?P<imi>\d\d):(?P<iss>\d\d)"
        r"(?:[.,](?P<ifrac>\d+))?(?P<tz>Z|[+-]\d\d:?\d\d)?)")
_TAG = r"(?P<tag>[^\s:\[\]]+)(?:\[(?P<tagpid>\d+)\])?:(?:\s|$)"

# RFC 3164 (/var/log/messages, journalctl short/short-precise), with and without a host name.
_SYSLOG_BSD_NOHOST = re.compile(r"^" + _MON + r"\s+(?P<day>\d{1,2})\s+" + _CLOCK + r"\s+" + _TAG)
_SYSLOG_BSD = re.compile(r"^" + _MON + r"\s+(?P<day>\d{1,2})\s+" + _CLOCK + r"\s+(?P<host>\S+)\s+" + _TAG)
# RFC 5424-ish / rsyslog high precision / journalctl short-iso.
_SYSLOG_ISO_NOHOST = re.compile(r"^" + _ISO + r"\s+" + _TAG)
_SYSLOG_ISO = re.compile(r"^" + _ISO + r"\s+(?P<host>\S+)\s+" + _TAG)
# "thales kernel: ..." - syslog without a date, accepted only with the kernel tag (anything else
# is indistinguishable from "comm: message" kernel text).
_SYSLOG_DATELESS_KERNEL = re.compile(r"^(?P<host>[\w.-]+)\s+(?P<tag>kernel):\s")

# dmesg prefixes inside the message: "[  123.456789]", "[Tue Nov  5 11:18:34 2019]" (any weekday
# language, U+00A0 seen in mail), the CONFIG_PRINTK_CALLER field "[ T416120]".
_UPTIME = re.compile(r"^\[\s*(?P<up>\d+\.\d+)\]\s?")
_DMESG_T = re.compile(r"^\[\w+\s+" + _MON + r"\s+(?P<day>\d{1,2})\s+" + _CLOCK + r"\s+(?P<year>\d{4})\]\s?")
_CALLER = re.compile(r"^\[\s*[TC]\d+\]\s?")
_LEVEL = re.compile(r"^<\d{1,3}>")

_HEX = r"0x[0-9a-fA-F]+"
_XFS = re.compile(
    r"[Xx][Ff][Ss]: (?:(?P<comm>.+?)\((?P<pid>\d+)\) )?possible memory allocation deadlock"
    r"(?:\s+size (?P<size>\d+))?(?:\s+in (?P<function>\w+))?(?:\s*\(mode:(?P<mode>" + _HEX + r"))?")
_PAF = re.compile(
    r"^(?P<comm>.+?): page allocation failure[.:]?\s*(?:order:(?P<order>\d+),?)?"
    r"(?:\s*mode:(?P<mode>" + _HEX + r")(?:\((?P<names>[^)]*)\))?)?")
_STALL = re.compile(
    r"^(?P<comm>.+?): page allocation stalls for (?P<ms>\d+)ms,?\s*(?:order:(?P<order>\d+),?)?"
    r"(?:\s*mode:(?P<mode>" + _HEX + r")(?:\((?P<names>[^)]*)\))?)?")
_HUNG_TASK = re.compile(r"task (?P<comm>.+?):(?P<pid>\d+) blocked for more than (?P<seconds>\d+) seconds")
_HUNG_BARE = re.compile(r"^(?P<comm>\S(?:.*?\S)?):(?P<pid>\d+) blocked for more than (?P<seconds>\d+) seconds")
_HUNG_ANY = re.compile(r"blocked for more than (?P<seconds>\d+) seconds")
_OOM_INVOKED = re.compile(
    r"^(?P<comm>.+?) invoked oom-killer: gfp_mask=(?P<mode>" + _HEX + r")(?:\((?P<names>[^)]*)\))?"
    r"(?:, nodemask=[^,]*)?(?:, order=(?P<order>-?\d+))?")
_OOM_CONSTRAINT = re.compile(
    r"oom-kill:constraint=(?P<constraint>\w+)(?:.*?,task=(?P<comm>[^,]*),pid=(?P<pid>\d+))?")
_OOM_KILLED = re.compile(
    r"(?:^|: )Killed process (?P<pid>\d+)(?:, UID \d+,)? \((?P<comm>.*?)\)")
_OOM_CANDIDATE = re.compile(
    r"[Kk]ill process (?P<pid>\d+) \((?P<comm>.*?)\) score (?P<score>-?\d+) or (?:sacrifice child|a child)")
_OOM_SHARED = re.compile(r"Kill process (?P<pid>\d+) \((?P<comm>.*?)\) sharing same memory")


class Speaker(object):
    """Who wrote a line and when, from its prefix."""

    __slots__ = ("origin", "kernel", "tag", "timestamp", "uptime", "message", "host")

    def __init__(self, origin: str, kernel: bool, tag: t.Optional[str], timestamp: t.Optional[float],
                 uptime: t.Optional[float], message: str, host: t.Optional[str] = None) -> None:
        self.host = host            # syslog host field, when the line has one
        self.origin = origin        # syslog | dmesg | text
        self.kernel = kernel        # False: a syslog program other than the kernel wrote it
        self.tag = tag
        self.timestamp = timestamp  # epoch seconds, or None
        self.uptime = uptime        # seconds since boot from "[ 123.456]", or None
        self.message = message      # the text after every prefix


def _bsd_time(match: t.Match, reference: float) -> t.Optional[float]:
    """Local time without a year: the latest such moment not after ``reference`` (+1 day slack)."""
    try:
        year = time.localtime(reference).tm_year
        parts = (_MONTHS[match.group("mon")], int(match.group("day")), int(match.group("hh")),
                 int(match.group("mi")), int(match.group("ss")))
        for candidate_year in (year, year - 1):
            stamp = time.mktime((candidate_year,) + parts + (0, 0, -1))
            if stamp <= reference + 86400:
                return stamp + _fraction(match.group("frac"))
        return stamp
    except (ValueError, OverflowError):
        return None


def _fraction(digits: t.Optional[str]) -> float:
    return float("0." + digits) if digits else 0.0


def _iso_time(match: t.Match) -> t.Optional[float]:
    try:
        parts = (int(match.group("y")), int(match.group("m")), int(match.group("d")),
                 int(match.group("ihh")), int(match.group("imi")), int(match.group("iss")))
        datetime.datetime(*parts)  # rejects month 13, day 45 (mktime would roll them over)
        tz = match.group("tz")
        if tz is None:
            stamp = time.mktime(parts + (0, 0, -1))
        else:
            stamp = calendar.timegm(parts + (0, 0, 0))
            if tz != "Z":
                sign = -1 if tz[0] == "-" else 1
                digits = tz[1:].replace(":", "")
                stamp -= sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
        return stamp + _fraction(match.group("ifrac"))
    except (ValueError, OverflowError):
        return None


def parse_prefix(line: str, reference: float) -> Speaker:
    """Split a physical log line into who/when and the kernel message.

    ``reference`` (epoch seconds, e.g. the file's mtime) supplies the year syslog dates lack.
    """
    text = line.strip()
    if text.startswith("> "):  # mail quoting in pasted excerpts
        text = text[2:].lstrip()
    origin = "text"
    kernel = True
    tag = None
    host = None
    timestamp = None
    for pattern in (_SYSLOG_BSD_NOHOST, _SYSLOG_BSD, _SYSLOG_ISO_NOHOST, _SYSLOG_ISO, _SYSLOG_DATELESS_KERNEL):
        match = pattern.match(text)
        if match:
            # Without host, "Mar 5 10:00:00 node06 kernel: x" would read host "node06" as the tag:
            # a no-host match only stands when the tag is followed by the message, not by a tag.
            if pattern in (_SYSLOG_BSD_NOHOST, _SYSLOG_ISO_NOHOST) and match.group("tag") != "kernel":
                other = (_SYSLOG_BSD if pattern is _SYSLOG_BSD_NOHOST else _SYSLOG_ISO).match(text)
                if other:
                    match = other
            origin = "syslog"
            tag = match.group("tag")
            host = match.groupdict().get("host")
            kernel = tag == "kernel"
            if "iso" in match.groupdict() and match.group("iso"):
                timestamp = _iso_time(match)
            elif "mon" in match.groupdict():
                timestamp = _bsd_time(match, reference)
            text = text[match.end():]
            break
    uptime = None
    for _attempt in range(4):  # "<4>[ 12.3] [ T12] ..." in any order, each at most once in practice
        stripped = text.lstrip()
        match = _LEVEL.match(stripped)
        if match:
            text = stripped[match.end():]
            continue
        match = _UPTIME.match(stripped)
        if match:
            uptime = float(match.group("up"))
            origin = "dmesg" if origin == "text" else origin
            text = stripped[match.end():]
            continue
        match = _DMESG_T.match(stripped)
        if match:
            try:
                timestamp = time.mktime((int(match.group("year")), _MONTHS[match.group("mon")], int(match.group("day")),
                                         int(match.group("hh")), int(match.group("mi")), int(match.group("ss")), 0, 0, -1))
            except (ValueError, OverflowError):
                pass
            origin = "dmesg" if origin == "text" else origin
            text = stripped[match.end():]
            continue
        match = _CALLER.match(stripped)
        if match:
            text = stripped[match.end():]
            continue
        break
    return Speaker(origin, kernel, tag, timestamp, uptime, text.strip(), host)


class Match(object):
    """One recognised message: its form, kind (None for OOM report parts) and fields."""

    __slots__ = ("form", "kind", "fields", "complete")

    def __init__(self, form: str, fields: t.Dict[str, t.Any], complete: bool = True) -> None:
        self.form = form
        self.kind = FORM_KIND.get(form)
        self.fields = fields
        self.complete = complete  # False: a wrapped line; the next physical line may hold the rest


def _int(value: t.Optional[str]) -> t.Optional[int]:
    return int(value) if value is not None else None


def _gfp_fields(mode_text: t.Optional[str], names: t.Optional[str], kernel_release: t.Optional[str]) -> t.Dict[str, t.Any]:
    if mode_text is None:
        return {}
    mode = int(mode_text, 16)
    fields = {"mode": mode}  # type: t.Dict[str, t.Any]
    if names is not None:
        fields["gfp_flags"] = split_names(names)
        fields["gfp_flags_source"] = "kernel"
    elif kernel_release:
        try:
            fields["gfp_flags"] = decode(mode, kernel_release)
            fields["gfp_flags_source"] = "decoded for %s" % kernel_release
        except ValueError:
            pass
    return fields


def classify_message(message: str, kernel_release: t.Optional[str] = None) -> t.Optional[Match]:
    """Recognise one kernel message (prefixes already removed), or None."""
    if "allocation" in message:
        match = _XFS.search(message)
        if match:
            fields = {"comm": match.group("comm"), "pid": _int(match.group("pid")),
                      "size": _int(match.group("size")), "function": match.group("function")}
            fields.update(_gfp_fields(match.group("mode"), None, kernel_release))
            return Match("xfs_alloc_deadlock", fields, complete=match.group("mode") is not None)
        match = _PAF.search(message)
        if match:
            fields = {"comm": match.group("comm"), "order": _int(match.group("order"))}
            fields.update(_gfp_fields(match.group("mode"), match.group("names"), kernel_release))
            return Match("page_alloc_failure", fields, complete=match.group("mode") is not None)
        match = _STALL.search(message)
        if match:
            fields = {"comm": match.group("comm"), "order": _int(match.group("order")),
                      "seconds": int(match.group("ms")) / 1000.0}
            fields.update(_gfp_fields(match.group("mode"), match.group("names"), kernel_release))
            return Match("page_alloc_stall", fields, complete=match.group("mode") is not None)
    if "blocked for more than" in message:
        match = _HUNG_TASK.search(message) or _HUNG_BARE.search(message)
        if match:
            return Match("hung_task", {"comm": match.group("comm"), "pid": int(match.group("pid")),
                                       "seconds": int(match.group("seconds"))})
        match = _HUNG_ANY.search(message)
        if match:  # "INFO: task" / "comm:pid blocked ..." wrapped onto two lines
            return Match("hung_task", {"seconds": int(match.group("seconds"))}, complete=False)
    if "oom-kill" in message:
        match = _OOM_INVOKED.search(message)
        if match:
            fields = {"comm": match.group("comm"), "order": _int(match.group("order"))}
            fields.update(_gfp_fields(match.group("mode"), match.group("names"), kernel_release))
            return Match("oom_invoked", fields)
        match = _OOM_CONSTRAINT.search(message)
        if match:
            return Match("oom_constraint", {"constraint": match.group("constraint"), "comm": match.group("comm"),
                                            "killed_pid": _int(match.group("pid"))})
    if " process " in message:
        match = _OOM_KILLED.search(message)
        if match:
            return Match("oom_killed", {"comm": match.group("comm"), "killed_pid": int(match.group("pid"))})
        match = _OOM_SHARED.search(message)
        if match:
            return Match("oom_kill_shared_mm", {"comm": match.group("comm"), "killed_pid": int(match.group("pid"))})
        match = _OOM_CANDIDATE.search(message)
        if match:
            return Match("oom_kill_candidate", {"comm": match.group("comm"), "pid": int(match.group("pid"))})
    return None


def has_prefix(line: str) -> bool:
    """True when the line starts with a syslog or dmesg prefix (it is not a wrapped continuation)."""
    text = line.strip()
    return bool(_SYSLOG_BSD_NOHOST.match(text) or _SYSLOG_BSD.match(text) or _SYSLOG_ISO.match(text)
                or _SYSLOG_ISO_NOHOST.match(text) or _UPTIME.match(text) or _DMESG_T.match(text))


def iso(timestamp: t.Optional[float]) -> t.Optional[str]:
    """Epoch seconds -> ISO 8601 in UTC (``2024-03-05T22:42:57+00:00``)."""
    if timestamp is None:
        return None
    try:
        return datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc).replace(microsecond=0).isoformat()
    except (ValueError, OverflowError, OSError):
        return None


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|hour|hours|d|day|days|w|week|weeks)?\s*$")
_UNITS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hour": 3600, "hours": 3600,
          "d": 86400, "day": 86400, "days": 86400, "w": 604800, "week": 604800, "weeks": 604800}
_ISO_ONLY = re.compile(r"^" + _ISO + r"$")
_DATE_ONLY = re.compile(r"^(\d{4})-(\d\d)-(\d\d)$")


def parse_since(value: t.Optional[str], now: float) -> t.Optional[float]:
    """``24h``, ``30m``, ``7d``, ``2w``, ``3600`` (seconds), an ISO time or date -> epoch seconds.

    Raises ValueError with the accepted forms for anything else.
    """
    if value is None or str(value).strip() == "":
        return None
    text = str(value).strip()
    match = _DURATION.match(text)
    if match:
        return now - float(match.group(1)) * _UNITS[match.group(2) or "s"]
    match = _ISO_ONLY.match(text)
    if match:
        stamp = _iso_time(match)
        if stamp is not None:
            return stamp
    match = _DATE_ONLY.match(text)
    if match:
        try:
            datetime.date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
            return time.mktime((int(match.group(1)), int(match.group(2)), int(match.group(3)), 0, 0, 0, 0, 0, -1))
        except (ValueError, OverflowError):
            pass
    raise ValueError("since must be a duration such as 24h, 30m, 7d, 2w or 3600 (seconds), or an ISO time "
                     "such as 2024-03-05T22:00:00 or 2024-03-05; got %r" % (value,))
