# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the kernel prints for allocation deadlocks, failures, stalls, hung tasks and OOM kills.

Three stages, because production logs are gigabytes of noise with a few hundred interesting lines, and
because anyone who can write to syslog chooses what the scanner reads:

1. ``NEEDLES``: five byte strings at least one of which is in every line of interest. Sources search big
   binary chunks for them (libc's strstr or ``bytes.find``); each hit is confirmed in place by the whole
   literal around it (``LITERALS``, O(1) per hit) before the line is even cut out.
2. ``parse_prefix``: the line's prefix says who wrote it and when. Only the kernel speaks: a syslog line
   counts only with the bare tag ``kernel:`` (the kernel's own lines never carry a pid), and that is
   decided before any message is classified.
3. ``classify_message``: each form is found by a literal ``str.find`` and then parsed from fixed
   positions with anchored, bounded patterns (shared/reference/kernel-formats.md sections 5-7). No
   pattern searches with a lazy or greedy run followed by more pattern, so no line costs more than
   linear time however it is built (tests/unit/.../test_kernel_log_linear.py).

Numbers are bounded before conversion: a value the kernel cannot print (a pid past PID_MAX_LIMIT, a
5,000-digit order, a 40-digit GFP mode) leaves that field null and is reported in ``Match.problems``.
"""


import calendar
import datetime
import re
import time
import typing as t

from ansible_collections.memfrag.linux.plugins.module_utils._mm.gfp import decode, split_names


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

# ---- stage 1: needles and the literals that confirm them ----------------------------------------

# The literal of every form, and the needle searched for it. A needle is chosen so that its first two
# bytes are uncommon in log text (strstr's SIMD scan looks for those two bytes first).
_LITERAL_NEEDLE = (
    (b"possible memory allocation deadlock", b"allocation"),
    (b"page allocation failure", b"allocation"),
    (b"page allocation stalls for ", b"allocation"),
    (b"blocked for more than ", b"blocked for more than "),
    (b"invoked oom-killer", b"m-kill"),
    (b"oom-kill:constraint", b"m-kill"),
    (b"Killed process", b"Killed process"),
    (b"Kill process", b"ll process"),
    (b"kill process", b"ll process"),
)
NEEDLES = tuple(sorted(set(needle for _literal, needle in _LITERAL_NEEDLE)))
# needle -> ((literal, where the needle sits in it), ...)
LITERALS = dict((needle, tuple((literal, literal.index(needle)) for literal, n in _LITERAL_NEEDLE if n == needle))
                for needle in NEEDLES)
_TEXT_LITERALS = tuple(literal.decode("ascii") for literal, _needle in _LITERAL_NEEDLE)
_HUNG = "blocked for more than "
_SECONDS_AFTER = re.compile(rb"[0-9]+ seconds")
_HUNG_TEXT = re.compile(r"blocked for more than [0-9]+ seconds")

# U+00A0 in UTF-8. Text pasted from web pages and tickets has it between words; such lines are read with
# plain spaces and their events are marked as not byte-exact kernel output.
NBSP_NEEDLE = b"\xc2\xa0"

# Lines naming the kernel release that wrote a log (see release_of): the boot line, searched over the whole log
# (its first two bytes are rare), and the taint line of a stack dump ("Not tainted" / "Tainted:"), searched only in
# the chunks that hold an event (the dump follows the event it explains).
BOOT_NEEDLE = b"Linux version "
TAINT_NEEDLE = b"ainted"
RELEASE_NEEDLES = (BOOT_NEEDLE, TAINT_NEEDLE)

# Longest line worth decoding. A kernel record is at most 1024 bytes (PRINTKRB_RECORD_MAX; LOG_LINE_MAX
# before 5.10) and rsyslog's default message limit is 8 KiB; with a syslog prefix, dmesg stamps and mail
# quoting nothing the kernel wrote comes near this. Longer lines are skipped whole, at memchr speed.
MAX_LINE = 8 * 1024


def confirm_at(buf: t.Union[bytes, bytearray], hit: int, needle: bytes) -> bool:
    """True when the needle found at ``hit`` sits inside one of its literals (a few compares)."""
    for literal, offset in LITERALS[needle]:
        start = hit - offset
        if start >= 0 and buf.startswith(literal, start):
            if literal == b"blocked for more than ":
                return _SECONDS_AFTER.match(buf, start + len(literal)) is not None
            return True
    return False


_LITERAL_BYTES = tuple(literal for literal, _needle in _LITERAL_NEEDLE if literal != b"blocked for more than ")
_HUNG_BYTES = re.compile(rb"blocked for more than [0-9]+ seconds")


def confirm_line(line: bytes) -> bool:
    """True when a raw line holds one of the literals, non-breaking spaces read as spaces (C-level scans only)."""
    if NBSP_NEEDLE in line:
        line = line.replace(NBSP_NEEDLE, b" ")
    return any(literal in line for literal in _LITERAL_BYTES) or _HUNG_BYTES.search(line) is not None


def confirm_text(message: str) -> bool:
    """True when decoded text holds one of the literals (kmsg and journal records, NBSP lines)."""
    for literal in _TEXT_LITERALS:
        if literal == _HUNG:
            if _HUNG_TEXT.search(message):
                return True
        elif literal in message:
            return True
    return False


def normalise_spaces(text: str) -> t.Tuple[str, bool]:
    """(text with U+00A0 read as a space, whether anything changed)."""
    if "\xa0" in text:
        return text.replace("\xa0", " "), True
    return text, False


# ---- bounded numbers -------------------------------------------------------------------------------

PID_MAX_LIMIT = 4 * 1024 * 1024   # include/linux/threads.h: the most pid_max can be on 64-bit
U32_MAX = 0xFFFFFFFF              # gfp_t is an unsigned int; stall milliseconds are %u
U64_MAX = 0xFFFFFFFFFFFFFFFF
S64_MAX = 0x7FFFFFFFFFFFFFFF
ORDER_MAX = 63                    # an order past this would be more pages than a 64-bit address space holds
_MAX_DIGITS = 20                  # no bound above has more decimal digits; longer text is never converted
_MAX_HEX_DIGITS = 16


def _number(digits: t.Optional[str], name: str, maximum: int, problems: t.List[str], minimum: int = 0) -> t.Optional[int]:
    """``digits`` (ASCII, maybe with a leading minus) as an int within [minimum, maximum], else None and a problem."""
    if digits is None:
        return None
    negative = digits.startswith("-")
    body = digits[1:] if negative else digits
    if len(body) > _MAX_DIGITS:
        problems.append("%s with %d digits" % (name, len(body)))
        return None
    value = -int(body) if negative else int(body)
    if not minimum <= value <= maximum:
        problems.append("%s %d out of range" % (name, value))
        return None
    return value


def _hex(digits: t.Optional[str], name: str, problems: t.List[str]) -> t.Optional[int]:
    if digits is None:
        return None
    if len(digits) > _MAX_HEX_DIGITS:
        problems.append("%s with %d hex digits" % (name, len(digits)))
        return None
    value = int(digits, 16)
    if value > U32_MAX:
        problems.append("%s %#x out of range" % (name, value))
        return None
    return value


# ---- stage 2: who wrote a line and when ------------------------------------------------------------

_MONTHS = dict((name, number) for number, name in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1))
_MON = r"(?P<mon>Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
_SP = r"[ \t]"
_CLOCK = r"(?P<hh>[0-9]{2}):(?P<mi>[0-9]{2}):(?P<ss>[0-9]{2})(?:\.(?P<frac>[0-9]{1,9}))?"
_ISO = (r"(?P<iso>(?P<y>[0-9]{4})-(?P<m>[0-9]{2})-(?P<d>[0-9]{2})[T ](?P<ihh>[0-9]{2}):(?P<imi>[0-9]{2})"
        r":(?P<iss>[0-9]{2})(?:[.,](?P<ifrac>[0-9]{1,9}))?(?P<tz>Z|[+-][0-9]{2}:?[0-9]{2})?)")

# RFC 3164 (/var/log/messages, journalctl short/short-precise) and RFC 5424-ish / rsyslog high precision /
# journalctl short-iso: the time, then the host (may be absent), then the program tag.
_STAMP_BSD = re.compile(_MON + _SP + r"{1,4}(?P<day>[0-9]{1,2})" + _SP + r"{1,4}" + _CLOCK + _SP + r"{1,16}")
_STAMP_ISO = re.compile(_ISO + _SP + r"{1,16}")
_KERNEL_TAG = re.compile(r"kernel:(?:[ \t]|$)")
_HOST = re.compile(r"(?P<host>[^ \t]{1,255})" + _SP + r"{1,16}")
_TAG = re.compile(r"(?P<tag>[^\s:\[\]]{1,128})(?:\[(?P<tagpid>[0-9]{1,20})\])?:")
# "thales kernel: ..." - syslog without a date, accepted only with the kernel tag (anything else is
# indistinguishable from "comm: message" kernel text).
_SYSLOG_DATELESS_KERNEL = re.compile(r"(?P<host>[\w.-]{1,255})" + _SP + r"{1,16}kernel:(?:[ \t]|$)")

# dmesg prefixes inside the message: "[  123.456789]", "[Tue Nov  5 11:18:34 2019]" (any weekday
# language), the CONFIG_PRINTK_CALLER field "[ T416120]", a console level "<4>".
_UPTIME = re.compile(r"\[[ ]{0,16}(?P<up>[0-9]{1,12}\.[0-9]{1,9})\] ?")
_DMESG_T = re.compile(r"\[\w{1,32}" + _SP + "{1,8}" + _MON + _SP + r"{1,8}(?P<day>[0-9]{1,2})" + _SP + "{1,8}"
                      + _CLOCK + _SP + r"{1,8}(?P<year>[0-9]{4})\] ?")
_CALLER = re.compile(r"\[[ ]{0,16}[TC][0-9]{1,10}\] ?")
_LEVEL = re.compile(r"<[0-9]{1,3}>")


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


# Syslog stamps repeat (a burst of lines shares its second): mktime, the costly part, is remembered.
_BSD_STAMPS = {}  # type: t.Dict[t.Tuple[t.Any, ...], t.Optional[float]]


def _bsd_time(match: t.Match, reference: float) -> t.Optional[float]:
    """Local time without a year: the latest such moment not after ``reference`` (+1 day slack)."""
    key = (match.group("mon"), match.group("day"), match.group("hh"), match.group("mi"), match.group("ss"), reference)
    if key not in _BSD_STAMPS:
        if len(_BSD_STAMPS) >= 4096:
            _BSD_STAMPS.clear()
        _BSD_STAMPS[key] = _bsd_seconds(key, reference)
    stamp = _BSD_STAMPS[key]
    return None if stamp is None else stamp + _fraction(match.group("frac"))


def _bsd_seconds(key: t.Tuple[t.Any, ...], reference: float) -> t.Optional[float]:
    try:
        year = time.localtime(reference).tm_year
        parts = (_MONTHS[key[0]], int(key[1]), int(key[2]), int(key[3]), int(key[4]))
        stamp = None
        for candidate_year in (year, year - 1):
            stamp = time.mktime((candidate_year,) + parts + (0, 0, -1))
            if stamp <= reference + 86400:
                return stamp
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


def _syslog(text: str, reference: float, position: int = 0) -> t.Optional[t.Tuple[bool, t.Optional[str], t.Optional[str], t.Optional[float], int]]:
    """(kernel, tag, host, timestamp, message start) when ``text`` has a syslog prefix at ``position``."""
    match = _STAMP_BSD.match(text, position)
    if match:
        stamp = _bsd_time(match, reference)
    else:
        match = _STAMP_ISO.match(text, position)
        if not match:
            dateless = _SYSLOG_DATELESS_KERNEL.match(text, position)
            if dateless:
                return True, "kernel", dateless.group("host"), None, dateless.end()
            return None
        stamp = _iso_time(match)
    position = match.end()
    # The kernel's lines carry exactly "kernel:", with or without the host before it. Anything else after a
    # syslog time - another tag, "kernel[4242]:" (the kernel never logs a pid), a tag that does not parse -
    # was written by a program.
    kernel_tag = _KERNEL_TAG.match(text, position)
    if kernel_tag:
        return True, "kernel", None, stamp, kernel_tag.end()
    host = None
    host_match = _HOST.match(text, position)
    if host_match:
        kernel_tag = _KERNEL_TAG.match(text, host_match.end())
        if kernel_tag:
            return True, "kernel", host_match.group("host"), stamp, kernel_tag.end()
        host = host_match.group("host")
        position = host_match.end()
    tag = _TAG.match(text, position)
    if tag:
        return False, tag.group("tag"), host, stamp, tag.end()
    return False, None, host, stamp, position


_SPACES = re.compile(r"\s*")


def parse_prefix(line: str, reference: float) -> Speaker:
    """Split a physical log line into who/when and the kernel message.

    ``reference`` (epoch seconds, e.g. the file's mtime) supplies the year syslog dates lack. Every
    pattern here is anchored at a position and bounded, and the text is cut once at the end: cost is
    linear in the line whatever it holds.
    """
    text = line.rstrip()
    position = _SPACES.match(text).end()
    if text.startswith("> ", position):  # mail quoting in pasted excerpts
        position = _SPACES.match(text, position + 2).end()
    origin = "text"
    kernel = True
    tag = None
    host = None
    timestamp = None
    found = _syslog(text, reference, position)
    if found is not None:
        kernel, tag, host, timestamp, position = found
        origin = "syslog"
    uptime = None
    for _attempt in range(4):  # "<4>[ 12.3] [ T12] ..." in any order, each at most once in practice
        position = _SPACES.match(text, position).end()
        match = _LEVEL.match(text, position)
        if match:
            position = match.end()
            continue
        match = _UPTIME.match(text, position)
        if match:
            uptime = float(match.group("up"))
            origin = "dmesg" if origin == "text" else origin
            position = match.end()
            continue
        match = _DMESG_T.match(text, position)
        if match:
            try:
                timestamp = time.mktime((int(match.group("year")), _MONTHS[match.group("mon")], int(match.group("day")),
                                         int(match.group("hh")), int(match.group("mi")), int(match.group("ss")), 0, 0, -1))
            except (ValueError, OverflowError):
                pass
            origin = "dmesg" if origin == "text" else origin
            position = match.end()
            continue
        match = _CALLER.match(text, position)
        if match:
            position = match.end()
            continue
        break
    return Speaker(origin, kernel, tag, timestamp, uptime, text[_SPACES.match(text, position).end():], host)


def has_prefix(line: str) -> bool:
    """True when the line starts with a syslog or dmesg prefix (it is not a wrapped continuation)."""
    position = _SPACES.match(line).end()
    return bool(_STAMP_BSD.match(line, position) or _STAMP_ISO.match(line, position) or _UPTIME.match(line, position)
                or _DMESG_T.match(line, position))


# ---- stage 3: the message forms ------------------------------------------------------------------

class Match(object):
    """One recognised message: its form, kind (None for OOM report parts) and fields."""

    __slots__ = ("form", "kind", "fields", "complete", "problems")

    def __init__(self, form: str, fields: t.Dict[str, t.Any], complete: bool = True,
                 problems: t.Optional[t.List[str]] = None) -> None:
        self.form = form
        self.kind = FORM_KIND.get(form)
        self.fields = fields
        self.complete = complete  # False: a wrapped line; the next physical line may hold the rest
        self.problems = problems or []  # numbers out of range (their fields are None)


# Kernel comm names are at most 15 bytes (TASK_COMM_LEN); where a comm has to be found between two
# literals, the window allows for that many characters with room to spare.
COMM_WINDOW = 64
_NAMES_MAX = 2048  # "(GFP_...|...)" as %pGg prints it is a few hundred characters at most

_XFS_NEEDLE = "possible memory allocation deadlock"
_XFS_PREFIX = re.compile(r"[Xx][Ff][Ss]: ")
_XFS_TAIL = re.compile(r"(?:\s+size (?P<size>[0-9]+))?(?:\s+in (?P<function>\w{1,128}))?"
                       r"(?:\s*\(mode:0x(?P<mode>[0-9a-fA-F]+))?", re.ASCII)
_PAF_NEEDLE = ": page allocation failure"
_STALL_NEEDLE = ": page allocation stalls for "
_GFP_TAIL = (r"(?:\s*order:(?P<order>[0-9]+),?)?(?:\s*mode:0x(?P<mode>[0-9a-fA-F]+)"
             r"(?:\((?P<names>[^)]{0,%d})\))?)?" % _NAMES_MAX)
_PAF_TAIL = re.compile(r"[.:]?\s*" + _GFP_TAIL, re.ASCII)
_STALL_TAIL = re.compile(r"(?P<ms>[0-9]+)ms,?\s*" + _GFP_TAIL, re.ASCII)
_HUNG_TAIL = re.compile(r"(?P<seconds>[0-9]+) seconds")
_HUNG_ANY = re.compile(r"blocked for more than (?P<seconds>[0-9]+) seconds")
_OOM_INVOKED_NEEDLE = " invoked oom-killer: gfp_mask=0x"
# 4.9-4.19 print "nodemask=%*pbl": a node list such as "0,2-3" holds commas, or "(null)".
_OOM_INVOKED_TAIL = re.compile(r"(?P<mode>[0-9a-fA-F]+)(?:\((?P<names>[^)]{0,%d})\))?"
                               r"(?:, nodemask=(?:\(null\)|[0-9]{1,5}(?:[,-][0-9]{1,5}){0,%d}))?"
                               r"(?:, order=(?P<order>-?[0-9]+))?" % (_NAMES_MAX, _NAMES_MAX))
_OOM_CONSTRAINT_NEEDLE = "oom-kill:constraint="
_WORD = re.compile(r"\w{1,128}", re.ASCII)
_PID_TAIL = re.compile(r",pid=(?P<pid>[0-9]+)")
_KILLED_HEAD = re.compile(r"(?P<pid>[0-9]+)(?:, UID [0-9]{1,20},)? \(")
_KILL_HEAD = re.compile(r"(?P<pid>[0-9]+) \(")
_SCORE_TAIL = re.compile(r"(?P<score>-?[0-9]+) or (?:sacrifice child|a child)")


def _gfp_fields(mode_text: t.Optional[str], names: t.Optional[str], kernel_release: t.Optional[str],
                problems: t.List[str]) -> t.Dict[str, t.Any]:
    if mode_text is None:
        return {}
    mode = _hex(mode_text, "mode", problems)
    fields = {"mode": mode}  # type: t.Dict[str, t.Any]
    if mode is None:
        return fields
    if names is not None:
        fields["gfp_flags"] = split_names(names)
        fields["gfp_flags_source"] = "kernel"
    elif kernel_release:
        decode_into(fields, kernel_release)
    return fields


def decode_into(fields: t.Dict[str, t.Any], release: str) -> bool:
    """Add ``gfp_flags`` decoded for ``release`` to fields holding a ``mode``; False when the release is unusable."""
    try:
        fields["gfp_flags"] = decode(fields["mode"], release)
    except ValueError:
        return False
    fields["gfp_flags_source"] = "decoded for %s" % release
    return True


# A kernel message holds the literal of its form once (a comm is at most 15 bytes and cannot hold another).
# Only the first few occurrences are looked at: a line repeating a literal thousands of times costs a few
# finds over its length, not a parse per repetition.
MAX_OCCURRENCES = 8


def _occurrences(message: str, needle: str, start: int = 0) -> t.Iterator[int]:
    found = message.find(needle, start)
    for _count in range(MAX_OCCURRENCES):
        if found == -1:
            return
        yield found
        found = message.find(needle, found + 1)


def _xfs(message: str, kernel_release: t.Optional[str]) -> t.Optional[Match]:
    for found in _occurrences(message, _XFS_NEEDLE):
        problems = []  # type: t.List[str]
        comm = pid = None
        if found >= 5 and _XFS_PREFIX.match(message, found - 5):
            start = True
        else:
            # "XFS: comm(pid) possible ...": the pid ends just before, the comm sits in a bounded window before it.
            start = False
            if message.startswith(") ", found - 2):
                digits = len(message[:found - 2].rstrip("0123456789"))
                paren = digits - 1
                if digits < found - 2 and paren >= 1 and message[paren] == "(":
                    prefix = _XFS_PREFIX.search(message, max(0, paren - 5 - COMM_WINDOW), paren)
                    if prefix is not None and prefix.end() < paren:
                        start = True
                        comm = message[prefix.end():paren]
                        pid = _number(message[digits:found - 2], "pid", PID_MAX_LIMIT, problems)
        if start:
            tail = _XFS_TAIL.match(message, found + len(_XFS_NEEDLE))
            fields = {"comm": comm, "pid": pid, "size": _number(tail.group("size"), "size", U64_MAX, problems),
                      "function": tail.group("function")}
            fields.update(_gfp_fields(tail.group("mode"), None, kernel_release, problems))
            return Match("xfs_alloc_deadlock", fields, complete=tail.group("mode") is not None, problems=problems)
    return None


def _page_alloc(message: str, kernel_release: t.Optional[str]) -> t.Optional[Match]:
    # "%s: page allocation failure" at the start of the message: the comm is everything before the first one.
    found = message.find(_PAF_NEEDLE, 1)
    if found != -1:
        problems = []  # type: t.List[str]
        tail = _PAF_TAIL.match(message, found + len(_PAF_NEEDLE))
        fields = {"comm": message[:found], "order": _number(tail.group("order"), "order", ORDER_MAX, problems)}
        fields.update(_gfp_fields(tail.group("mode"), tail.group("names"), kernel_release, problems))
        return Match("page_alloc_failure", fields, complete=tail.group("mode") is not None, problems=problems)
    for found in _occurrences(message, _STALL_NEEDLE, 1):
        tail = _STALL_TAIL.match(message, found + len(_STALL_NEEDLE))
        if tail:
            problems = []
            milliseconds = _number(tail.group("ms"), "stall milliseconds", U32_MAX, problems)
            fields = {"comm": message[:found], "order": _number(tail.group("order"), "order", ORDER_MAX, problems),
                      "seconds": None if milliseconds is None else milliseconds / 1000.0}
            fields.update(_gfp_fields(tail.group("mode"), tail.group("names"), kernel_release, problems))
            return Match("page_alloc_stall", fields, complete=tail.group("mode") is not None, problems=problems)
    return None


def _digits_before(message: str, end: int) -> int:
    """Start of the run of ASCII digits ending at ``end`` (looks back at most _MAX_DIGITS + 1 characters)."""
    start = end
    limit = max(0, end - _MAX_DIGITS - 1)
    while start > limit and "0" <= message[start - 1] <= "9":
        start -= 1
    return start


def _hung_task(message: str) -> t.Optional[Match]:
    task = message.find("task ")
    overlong = False
    for found in _occurrences(message, " " + _HUNG):
        tail = _HUNG_TAIL.match(message, found + 1 + len(_HUNG))
        digits = _digits_before(message, found)
        overlong = overlong or found - digits > _MAX_DIGITS
        colon = digits - 1
        if tail and digits < found and colon >= 0 and message[colon] == ":" and found - digits <= _MAX_DIGITS:
            comm = None
            if task != -1 and task + 5 < colon:  # "INFO: task comm:pid blocked ..."
                comm = message[task + 5:colon]
            elif colon >= 1 and not message[0].isspace() and not message[colon - 1].isspace():
                comm = message[:colon]  # "comm:pid blocked ..." after a wrapped "INFO: task"
            if comm is not None:
                problems = []  # type: t.List[str]
                return Match("hung_task", {"comm": comm,
                                           "pid": _number(message[digits:found], "pid", PID_MAX_LIMIT, problems),
                                           "seconds": _number(tail.group("seconds"), "seconds", S64_MAX, problems)},
                             problems=problems)
    tail = _HUNG_ANY.search(message)
    if tail:  # "INFO: task" / "comm:pid blocked ..." wrapped onto two lines
        problems = ["pid with more than %d digits" % _MAX_DIGITS] if overlong else []
        return Match("hung_task", {"seconds": _number(tail.group("seconds"), "seconds", S64_MAX, problems)},
                     complete=False, problems=problems)
    return None


def _oom_report(message: str, kernel_release: t.Optional[str]) -> t.Optional[Match]:
    for found in _occurrences(message, _OOM_INVOKED_NEEDLE, 1):
        tail = _OOM_INVOKED_TAIL.match(message, found + len(_OOM_INVOKED_NEEDLE))
        if tail:
            problems = []  # type: t.List[str]
            fields = {"comm": message[:found], "order": _number(tail.group("order"), "order", ORDER_MAX, problems, -1)}
            fields.update(_gfp_fields(tail.group("mode"), tail.group("names"), kernel_release, problems))
            return Match("oom_invoked", fields, problems=problems)
    for found in _occurrences(message, _OOM_CONSTRAINT_NEEDLE):
        word = _WORD.match(message, found + len(_OOM_CONSTRAINT_NEEDLE))
        if word:
            problems = []
            fields = {"constraint": word.group(), "comm": None, "killed_pid": None}
            # ",task=%s,pid=%d" further on (the comm holds no comma).
            for task in _occurrences(message, ",task=", word.end()):
                comma = message.find(",", task + 6)
                pid = _PID_TAIL.match(message, comma) if comma != -1 else None
                if pid:
                    fields.update(comm=message[task + 6:comma],
                                  killed_pid=_number(pid.group("pid"), "pid", PID_MAX_LIMIT, problems))
                    break
            return Match("oom_constraint", fields, problems=problems)
    return None


def _comm_in_parentheses(message: str, start: int, after: str) -> int:
    """End of a comm at ``start`` closed by ``after`` (``)`` + literal) within COMM_WINDOW, or -1."""
    return message.find(after, start, start + COMM_WINDOW + len(after))


def _oom_kill(message: str) -> t.Optional[Match]:
    for found in _occurrences(message, "Killed process "):
        if found == 0 or message.startswith(": ", found - 2):
            head = _KILLED_HEAD.match(message, found + 15)
            if head:
                end = _comm_in_parentheses(message, head.end(), ")")
                if end != -1:
                    problems = []  # type: t.List[str]
                    return Match("oom_killed", {"comm": message[head.end():end],
                                                "killed_pid": _number(head.group("pid"), "pid", PID_MAX_LIMIT, problems)},
                                 problems=problems)
    for found in _occurrences(message, "Kill process "):
        head = _KILL_HEAD.match(message, found + 13)
        if head:
            end = _comm_in_parentheses(message, head.end(), ") sharing same memory")
            if end != -1:
                problems = []
                return Match("oom_kill_shared_mm", {"comm": message[head.end():end],
                                                    "killed_pid": _number(head.group("pid"), "pid", PID_MAX_LIMIT, problems)},
                             problems=problems)
    for found in _occurrences(message, "ill process ", 1):
        if message[found - 1] in "Kk":
            head = _KILL_HEAD.match(message, found + 12)
            if head:
                window = head.end() + COMM_WINDOW + 8
                for end in _occurrences(message[:window], ") score ", head.end()):
                    score = _SCORE_TAIL.match(message, end + 8)
                    if score:
                        problems = []
                        return Match("oom_kill_candidate", {
                            "comm": message[head.end():end],
                            "pid": _number(head.group("pid"), "pid", PID_MAX_LIMIT, problems)}, problems=problems)
    return None


def classify_message(message: str, kernel_release: t.Optional[str] = None) -> t.Optional[Match]:
    """Recognise one kernel message (prefixes already removed), or None.

    ``kernel_release`` decodes a GFP mode printed without names at once; without it the event keeps the
    ``mode`` and the caller decodes it once the log's own release is known.
    """
    if "allocation" in message:
        match = _xfs(message, kernel_release) or _page_alloc(message, kernel_release)
        if match:
            return match
    if _HUNG in message:
        match = _hung_task(message)
        if match:
            return match
    if "oom-kill" in message:
        match = _oom_report(message, kernel_release)
        if match:
            return match
    if " process " in message:
        return _oom_kill(message)
    return None


# ---- the kernel release a log names ----------------------------------------------------------------

# "Linux version 3.10.0-1160.el7.x86_64 (mockbuild@...) ...", the boot line.
_LINUX_VERSION = re.compile(r"Linux version (?P<release>[0-9]{1,4}\.[0-9]{1,4}[^\s]{0,120})")
# "CPU: 3 PID: 1 Comm: x Not tainted 3.10.0-1160.el7.x86_64 #1", "Tainted: G    B   W  O  4.19.0-6 #1",
# 2.6.32's "Pid: 1, comm: x Not tainted 2.6.32-431.el6.x86_64 #1" and the hung-task "      Not tainted 5.10.0 #1".
_TAINTED = re.compile(r"(?:Not t|T)ainted(?:: [A-Z ]{0,64})? (?P<release>[0-9]{1,4}\.[0-9]{1,4}[^\s]{0,120})")


def release_of(message: str) -> t.Optional[t.Tuple[str, str]]:
    """(release, what line named it) when a kernel message names the running kernel's release."""
    found = message.find("Linux version ")
    if found != -1:
        match = _LINUX_VERSION.match(message, found)
        if match:
            return match.group("release"), "Linux version line"
    # One pass: each attempt is bounded (taint flags, release), and starts only at "N" or "T".
    match = _TAINTED.search(message) if "ainted" in message else None
    if match:
        return match.group("release"), "taint line"
    return None


# ---- times -----------------------------------------------------------------------------------------

def iso(timestamp: t.Optional[float]) -> t.Optional[str]:
    """Epoch seconds -> ISO 8601 in UTC (``2024-03-05T22:42:57+00:00``)."""
    if timestamp is None:
        return None
    try:
        return datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc).replace(microsecond=0).isoformat()
    except (ValueError, OverflowError, OSError):
        return None


_DURATION = re.compile(r"^\s*([0-9]{1,12}(?:\.[0-9]{1,9})?)\s*(s|sec|m|min|h|hour|hours|d|day|days|w|week|weeks)?\s*$")
_UNITS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hour": 3600, "hours": 3600,
          "d": 86400, "day": 86400, "days": 86400, "w": 604800, "week": 604800, "weeks": 604800}
_ISO_ONLY = re.compile(r"^" + _ISO + r"$")
_DATE_ONLY = re.compile(r"^([0-9]{4})-([0-9]{2})-([0-9]{2})$")


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
