# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a sosreport or supportconfig holds for a diagnosis: its /proc files, kernel logs, host, kernel and time.

Private to the collection. Layouts (looked up in sos' plugins kernel, memory, logs, host, date, filesys, rpm,
and in supportutils' ``supportconfig`` script and ``supportconfig.rc``):

- sos: one top directory holding copies at their host paths (``proc/buddyinfo``, ``var/log/messages*``,
  ``etc/sysctl.d/*``), command output in ``sos_commands/<plugin>/<command>`` (``kernel/uname_-a``,
  ``kernel/sysctl_-a``, ``kernel/dmesg``, ``logs/journalctl_*``, ``date/date``, ``host/hostname``), and
  top-level links (``uname``, ``hostname``, ``date``, ``installed-rpms``). sos rarely copies proc/sys/vm: the
  running vm values are in ``sysctl -a``.
- supportconfig: ``scc_<host>_<yymmdd>_<hhmm>/`` of flat ``*.txt`` files made of sections. A section is a
  ``#==[ Command ]===...#``, ``#==[ Configuration File ]===...#`` or ``#==[ Log File ]===...#`` line, then
  ``# <command with its full path>`` or ``# <file>`` (``# <file> - File not found``, ``# <file> - Last N
  Lines``), then the output; a configuration file is copied without its comment and blank lines.
  ``basic-environment.txt``: ``date``, ``uname -a``. ``memory.txt``: ``/proc/meminfo``, ``/proc/pagetypeinfo``,
  ``/proc/vmstat``, ``sysctl -a | grep ^vm``, ``/proc/buddyinfo``, ``/proc/slabinfo``, ``/proc/zoneinfo``.
  ``proc.txt``: every ``/proc/sys`` file (``/proc/sys/vm/*``, ``/proc/sys/kernel/osrelease``). ``env.txt``:
  the sysctl configuration (``/etc/sysctl.conf``, ``/lib``, ``/usr/lib``, ``/usr/local/lib``, ``/etc``,
  ``/run`` ``sysctl.d/*.conf``) and ``sysctl -a``. ``messages.txt``: ``/var/log/messages`` (whole or its last
  lines), or ``journalctl --no-pager --output=short-iso`` when there is no syslog file (SLES 15 and later);
  with ``-l`` the rotated ``messages-<date>`` files sit next to it as ``messages-<date>.txt``. ``boot.txt``:
  ``uname -a``, ``journalctl --boot=0 ... --output=short-iso`` and ``dmesg -T``.
  The sections a diagnosis needs are written out as files at their host paths (commands at their sos
  places), so the same readers apply; each supportconfig file may supply only what it is known to hold.
"""

import calendar
import glob
import os
import re
import time
import typing as t

from ansible_collections.memfrag.linux.plugins.module_utils._archive.extract import Member, read_capture
from ansible_collections.memfrag.linux.plugins.module_utils._procfs.release import parse_release

PROC_FILES = ("buddyinfo", "zoneinfo", "pagetypeinfo", "meminfo", "slabinfo", "vmstat", "version")
SYSCTL_TREES = ("etc/sysctl.d/*", "run/sysctl.d/*", "usr/local/lib/sysctl.d/*", "usr/lib/sysctl.d/*", "lib/sysctl.d/*")
SOS_PATTERNS = tuple("proc/" + name for name in PROC_FILES) + SYSCTL_TREES + (
    "proc/sys/vm/*", "proc/sys/kernel/osrelease",
    "var/log/messages*", "var/log/kern.log*", "var/log/syslog*",
    "sos_commands/kernel/dmesg*", "sos_commands/logs/journalctl_*",
    "sos_commands/kernel/sysctl_-a", "etc/sysctl.conf",
    "sos_commands/kernel/uname_-a", "uname", "hostname", "etc/hostname", "sos_commands/host/hostname*",
    "sos_commands/general/hostname", "installed-rpms", "sos_commands/date/date*", "date",
)
# In the order they are unpacked: messages.txt before boot.txt (boot.txt's journal is used only without a log in
# messages.txt), the whole ``sysctl -a`` of env.txt before memory.txt's ``grep ^vm`` copy.
SUPPORTCONFIG_FILES = ("basic-environment.txt", "messages.txt", "env.txt", "memory.txt", "proc.txt", "boot.txt")
SUPPORTCONFIG_ROTATED = "messages-[0-9]*.txt"
# What each supportconfig file may supply: a section that claims /proc/buddyinfo inside messages.txt is ignored.
SUPPORTCONFIG_SUPPLIES = {
    "basic-environment.txt": ("uname", "date"),
    "messages.txt": ("log", "journal"),
    "memory.txt": ("proc", "sysctl"),
    "env.txt": ("sysctl_conf", "sysctl"),
    "proc.txt": ("proc", "proc_sys"),
    "boot.txt": ("uname", "journal", "dmesg"),
}
SOS_MARKERS = ("sos_commands", "sos_reports", "proc/buddyinfo")
SUPPORTCONFIG_MARKERS = ("basic-environment.txt", "supportconfig.txt")
LOG_PATTERNS = ("var/log/messages*", "var/log/kern.log*", "var/log/syslog*", "sos_commands/logs/journalctl_*")
DMESG_PATTERN = "sos_commands/kernel/dmesg*"
# journalctl_--disk-usage, _--list-boots and the like hold no messages.
_NOT_LOGS = re.compile(r"journalctl_.*(--disk-usage|--list-boots|--verify|--header|--fields)")
WINDOW_SECONDS = 7 * 86400
_SECTION = re.compile(rb"^#==\[ ?([A-Za-z ]{1,40}?) ?\]=*#\s*$")
_PROC_PATH = re.compile(r"^/proc/(?:%s|sys/vm/[a-z0-9_]{1,64}|sys/kernel/osrelease)$" % "|".join(PROC_FILES))
_SYSCTL_CONF_PATH = re.compile(r"^/(?:etc/sysctl\.conf|(?:etc|run|usr/lib|usr/local/lib|lib)/sysctl\.d/[^/*?\[\]]{1,200}\.conf)$")
_LOG_PATH = re.compile(r"^/var/log/(?:messages|kern\.log|syslog|warn)$")
_LAST_LINES = re.compile(r"^Last [0-9]+ Lines$")
_HOST_SAFE = re.compile(r"[^A-Za-z0-9._-]")
_MONTHS = dict((name, number) for number, name in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1))
_DATE = re.compile(r"^\s*(?:[A-Z][a-z]{2}\s+)?([A-Z][a-z]{2})\s+(\d{1,2})\s+(\d{2}):(\d{2}):(\d{2})\s+"
                   r"(?:([A-Za-z]{1,6}|[+-]\d{4})\s+)?(\d{4})\s*$")
_RPM_KERNEL = re.compile(r"^kernel(?:-default|-core)?-(\d[^\s]*?)(?:\.(?:x86_64|aarch64|ppc64le|s390x|i686|noarch))?(?:\s|$)")
MAX_TEXT = 1024 * 1024  # bytes read of any one small identity file
LINE_PIECE = 1024 * 1024  # at most this much of one supportconfig line is held at a time
MAX_NOTES = 50  # notes about ignored sections listed one by one


def layout_patterns(members: t.Mapping[str, Member], top: str) -> t.Sequence[str]:
    prefix = top + "/" if top else ""
    if any(prefix + marker in members for marker in SUPPORTCONFIG_MARKERS):
        return SUPPORTCONFIG_FILES + (SUPPORTCONFIG_ROTATED,)
    return SOS_PATTERNS


def _read(root: str, relative: str, limit: int = MAX_TEXT) -> t.Optional[str]:
    path = os.path.join(root, *relative.split("/"))
    try:
        with open(path, "rb") as handle:
            return handle.read(limit).decode("utf-8", "replace")
    except (IOError, OSError):
        return None


def _create(root: str, relative: str) -> t.BinaryIO:
    """A new file at ``root/relative`` (parents made), never through a link."""
    path = os.path.join(root, *relative.split("/"))
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        os.makedirs(directory, 0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    return os.fdopen(fd, "wb")


def section_target(kind: str, what: str) -> t.Optional[t.Tuple[str, str, t.Optional[str]]]:
    """(what it supplies, host path it is written at, a remark) for a supportconfig section a diagnosis needs,
    else None. ``kind`` is the header's word (``Command``, ``Configuration File``, ``Log File``), ``what``
    the line after it without its ``#``."""
    if kind in ("Configuration File", "Log File"):
        path, _sep, remark = what.partition(" - ")
        path = path.strip()
        remark = remark.strip()
        if remark == "File not found":
            # A name the glob listed that is no regular file: in a sysctl.d directory, a mask (a link to
            # /dev/null); its empty copy masks the same name in later directories, as the link did.
            if _SYSCTL_CONF_PATH.match(path) and not path.endswith("/*.conf"):
                return "sysctl_conf", path[1:], "masked (not a regular file on the host)"
            return None
        if remark and not _LAST_LINES.match(remark):
            return None
        if _PROC_PATH.match(path):
            return ("proc_sys" if path.startswith("/proc/sys/") else "proc"), path[1:], None
        if _SYSCTL_CONF_PATH.match(path):
            return "sysctl_conf", path[1:], None
        if _LOG_PATH.match(path):
            return "log", path[1:], ("only the %s were captured" % remark.lower()) if remark else None
        return None
    if kind != "Command":
        return None
    words = what.split()
    if not words or not words[0].startswith("/"):
        return None
    command, args = os.path.basename(words[0]), words[1:]
    if command == "uname" and args == ["-a"]:
        return "uname", "sos_commands/kernel/uname_-a", None
    if command == "date" and not args:
        return "date", "sos_commands/date/date", None
    if command == "sysctl" and args[:1] == ["-a"]:
        return "sysctl", "sos_commands/kernel/sysctl_-a", None
    if command == "dmesg":
        return "dmesg", "sos_commands/kernel/dmesg", None
    if command == "journalctl" and "--output=short-iso" in args and "grep" not in args and "-u" not in args:
        boot = [arg for arg in args if arg.startswith("--boot=")]
        name = "journalctl_--no-pager" + ("_" + re.sub(r"[^A-Za-z0-9=_-]", "_", boot[0][:20]) if boot else "")
        return "journal", "sos_commands/logs/" + name, None
    return None


def _header(line: bytes) -> t.Optional[str]:
    match = _SECTION.match(line)
    return match.group(1).decode("ascii").strip() if match else None


def _pieces(source: t.BinaryIO) -> t.Iterator[t.Tuple[bytes, bool]]:
    """(piece of a line, whether it starts the line): a line longer than LINE_PIECE comes in pieces, so one
    hostile line is never held whole; only a piece that starts a line can be a section header."""
    starts = True
    while True:
        piece = source.readline(LINE_PIECE)
        if not piece:
            return
        yield piece, starts
        starts = piece.endswith(b"\n")


def _note(notes: t.List[str], message: str) -> None:
    if len(notes) < MAX_NOTES:
        notes.append(message)
    elif len(notes) == MAX_NOTES:
        notes.append("more sections ignored; not listed")


def unpack_supportconfig_file(root: str, name: str, written: t.Dict[str, str], origins: t.Dict[str, str],
                              notes: t.List[str]) -> None:
    """Write the sections of ``root/name`` that it may supply at their host paths under ``root``, streaming
    (a messages.txt can be large), bytes as they are. ``written`` maps each path written to its origin; the
    first section for a path wins; ``origins`` maps it to the section it came from."""
    supplies = SUPPORTCONFIG_SUPPLIES[name]
    path = os.path.join(root, name)
    try:
        mtime = os.stat(path).st_mtime
        source = open(path, "rb")
    except (IOError, OSError):
        return
    logs_before = any(kind in ("log", "journal") for kind in written.values())
    out = None  # type: t.Optional[t.BinaryIO]
    blank = 0
    current = None  # type: t.Optional[str]
    empty_ok = False
    state = {"wrote": False}

    def finish() -> None:
        if out is not None:
            if not state["wrote"] and not empty_ok and written.get(current) == "sysctl_conf":
                # supportconfig leaves out comments and blank lines: a file with none left existed all the same,
                # and is no mask (an empty file is one to the precedence model).
                out.write(b"# supportconfig copied no setting from this file\n")
            out.close()
            os.utime(os.path.join(root, *current.split("/")), (mtime, mtime))

    with source:
        pieces = _pieces(source)
        pending = next(pieces, None)
        while pending is not None:
            piece, starts = pending
            kind = _header(piece) if starts else None
            if kind is None:
                if out is not None:
                    if starts and piece.endswith(b"\n") and not piece.strip():
                        blank += 1  # trailing blank lines are supportconfig's own separators
                    else:
                        out.write(b"\n" * blank + (piece.rstrip(b"\r\n") + b"\n" if piece.endswith(b"\n") else piece))
                        blank = 0
                        state["wrote"] = True
                pending = next(pieces, None)
                continue
            finish()
            out, blank, current, empty_ok = None, 0, None, False
            state["wrote"] = False
            pending = next(pieces, None)
            if pending is None or _header(pending[0]) is not None:
                continue
            what = pending[0].decode("utf-8", "replace").strip()
            pending = next(pieces, None)
            while pending is not None and not pending[1]:  # the rest of an overlong label line
                pending = next(pieces, None)
            target = section_target(kind, what[1:].strip()) if what.startswith("#") else None
            if target is None:
                continue
            supplies_kind, relative, remark = target
            if supplies_kind not in supplies and not (supplies_kind == "proc_sys" and "proc" in supplies):
                if supplies_kind in ("proc", "proc_sys", "sysctl_conf", "log"):
                    _note(notes, "ignored %s in %s: that file does not hold it" % (what[1:].strip()[:200], name))
                continue
            if supplies_kind == "journal" and name == "boot.txt" and logs_before:
                continue  # messages.txt held the log already: the same events must not count twice
            if relative in written or os.path.lexists(os.path.join(root, *relative.split("/"))):
                continue
            if remark:
                _note(notes, "%s from %s: %s" % ("/" + relative if supplies_kind != "journal" else what[1:].strip()[:200],
                                                 name, remark))
            out = _create(root, relative)
            current = relative
            empty_ok = remark is not None and remark.startswith("masked")
            written[relative] = supplies_kind
            origins[relative] = "%s: %s" % (name, what[1:].strip()[:120])
        finish()


def unpack_supportconfig(root: str, files: t.Sequence[str]) -> t.Tuple[t.Dict[str, str], t.List[str]]:
    """Write the needed sections of the supportconfig files under ``root`` at their host paths, and move the
    rotated ``messages-<date>.txt`` to ``var/log/messages-<date>``. Returns ({path: the section it came
    from}, notes)."""
    written = {}  # type: t.Dict[str, str]
    origins = {}  # type: t.Dict[str, str]
    notes = []  # type: t.List[str]
    for name in SUPPORTCONFIG_FILES:
        if name in files:
            unpack_supportconfig_file(root, name, written, origins, notes)
    for name in sorted(files):
        if re.match(r"^messages-[0-9]{1,14}\.txt$", name):
            relative = "var/log/" + name[:-4]
            if not os.path.lexists(os.path.join(root, "var", "log", name[:-4])):
                os.makedirs(os.path.join(root, "var", "log"), 0o700, exist_ok=True)
                os.rename(os.path.join(root, name), os.path.join(root, "var", "log", name[:-4]))
                origins[relative] = name
    return origins, notes


def safe_host_name(raw: t.Optional[str], fallback: str) -> str:
    """An inventory name from untrusted text: the first word, only [A-Za-z0-9._-], at most 63 characters."""
    words = (raw or "").strip().split()
    name = _HOST_SAFE.sub("_", words[0] if words else "").strip("._-")[:63].strip("._-")
    if not name:
        name = _HOST_SAFE.sub("_", fallback).strip("._-")[:63].strip("._-") or "capture"
    return name


def _first_line(text: t.Optional[str]) -> t.Optional[str]:
    for line in (text or "").splitlines():
        if line.strip():
            return line.strip()
    return None


def discover_host(root: str, source: str, read: bool = True) -> t.Tuple[str, str]:
    """(safe inventory name, where it came from); with ``read`` False, from the archive's name alone."""
    for relative in ("sos_commands/host/hostname", "sos_commands/general/hostname", "hostname", "etc/hostname"):
        line = _first_line(_read(root, relative, 4096)) if read else None
        if line:
            return safe_host_name(line, ""), relative
    uname = _first_line(_read(root, "sos_commands/kernel/uname_-a", 4096) or _read(root, "uname", 4096)) if read else None
    if uname and len(uname.split()) > 1:
        return safe_host_name(uname.split()[1], ""), "uname -a"
    base = os.path.basename(source.rstrip("/"))
    match = re.match(r"^(?:sosreport|scc)[-_]([A-Za-z0-9.-]+?)[-_]\d", base)
    return safe_host_name(match.group(1) if match else base.split(".")[0], "capture"), "archive name"


def discover_release(root: str) -> t.Tuple[t.Optional[str], t.Optional[str]]:
    """(kernel release, where it came from): uname -a, proc/version, proc/sys/kernel/osrelease, installed-rpms."""
    uname = _first_line(_read(root, "sos_commands/kernel/uname_-a", 4096) or _read(root, "uname", 4096))
    if uname:
        words = uname.split()
        if len(words) > 2 and parse_release(words[2]):
            return words[2][:64], "uname -a"
    version = _first_line(_read(root, "proc/version", 4096))
    if version:
        match = re.match(r"^Linux version (\S{1,64})", version)
        if match and parse_release(match.group(1)):
            return match.group(1), "proc/version"
    osrelease = _first_line(_read(root, "proc/sys/kernel/osrelease", 4096))
    if osrelease and parse_release(osrelease):
        return osrelease[:64], "proc/sys/kernel/osrelease"
    rpms = _read(root, "installed-rpms")
    if rpms:
        # More than one kernel package may be installed; the newest is the likeliest to have been running.
        found = []  # type: t.List[t.Tuple[t.Tuple[int, ...], str]]
        for line in rpms.splitlines():
            match = _RPM_KERNEL.match(line.strip())
            if match and parse_release(match.group(1)):
                numbers = tuple(int(n) for n in re.findall(r"\d+", match.group(1))[:8])
                found.append((numbers, match.group(1)[:64]))
        if found:
            return max(found)[1], "installed-rpms (newest kernel package; the running one is not recorded)"
    return None, None


def parse_date(text: t.Optional[str]) -> t.Optional[float]:
    """``date`` output (``Tue Mar  5 10:11:12 UTC 2024``) -> epoch seconds; None unless it says UTC, an offset, or
    no zone (then local time, as the scanner reads syslog)."""
    for line in (text or "").splitlines()[:5]:
        match = _DATE.match(line)
        if not match or match.group(1) not in _MONTHS:
            continue
        month_day = (_MONTHS[match.group(1)], int(match.group(2)))
        clock = (int(match.group(3)), int(match.group(4)), int(match.group(5)))
        parts = (int(match.group(7)),) + month_day + clock
        zone = match.group(6)
        try:
            if zone in ("UTC", "GMT", "Z"):
                return float(calendar.timegm(parts + (0, 0, 0)))
            if zone and zone[0] in "+-":
                offset = (int(zone[1:3]) * 3600 + int(zone[3:5]) * 60) * (1 if zone[0] == "+" else -1)
                return float(calendar.timegm(parts + (0, 0, 0)) - offset)
            return float(time.mktime(parts + (0, 0, -1)))
        except (ValueError, OverflowError):
            return None
    return None


def discover_time(root: str, newest_mtime: float) -> t.Tuple[t.Optional[float], t.Optional[str]]:
    for relative in ("sos_commands/date/date_--utc", "sos_commands/date/date", "date"):
        stamp = parse_date(_read(root, relative, 4096))
        if stamp is not None:
            return stamp, relative
    if newest_mtime > 0:
        return newest_mtime, "newest member time"
    return None, None


def iso_utc(stamp: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(stamp))


def log_files(root: str) -> t.List[str]:
    """Absolute paths of the kernel log files in the capture; dmesg only without syslog or journal text (its
    uptime-stamped lines would count every event a second time). The syslog files and sos' several journal
    files (whole, this boot, last boot) overlap: the scan counts a line found in two files once."""
    def under(pattern: str) -> t.List[str]:
        return sorted(path for path in glob.glob(os.path.join(glob.escape(root), pattern))
                      if os.path.isfile(path) and not _NOT_LOGS.search(os.path.basename(path)))
    found = []  # type: t.List[str]
    for pattern in LOG_PATTERNS:
        found.extend(under(pattern))
    if not found:
        # One ring buffer copy only: sos saves both ``dmesg`` and ``dmesg -T``; the plain one is the kernel's text.
        found = sorted(under(DMESG_PATTERN), key=lambda path: (os.path.basename(path) != "dmesg", path))[:1]
    return found


def running_sysctl(root: str) -> t.Tuple[t.Dict[str, str], t.Optional[str]]:
    """vm.* values the capture recorded as running, and where they came from: ``sysctl -a`` output (sos
    seldom copies proc/sys/vm), then proc/sys/vm/* for any key it lacks."""
    text = _read(root, "sos_commands/kernel/sysctl_-a", 16 * 1024 * 1024)
    values = {}  # type: t.Dict[str, str]
    sources = []  # type: t.List[str]
    for line in (text or "").splitlines():
        key, sep, value = line.partition("=")
        key = key.strip()
        if sep and key.startswith("vm.") and len(key) < 128:
            values[key] = value.strip()
    if values:
        sources.append("sysctl -a")
    directory = os.path.join(root, "proc", "sys", "vm")
    added = False
    if os.path.isdir(directory) and not os.path.islink(directory):
        for name in sorted(os.listdir(directory)):
            if not re.match(r"^[a-z0-9_]{1,64}$", name) or "vm." + name in values:
                continue
            value = _read(root, "proc/sys/vm/" + name, 65536)
            if value is not None:
                values["vm." + name] = value.strip()
                added = True
    if added:
        sources.append("proc/sys/vm")
    return values, (" and ".join(sources) if sources else None)


def fill_proc_sys_vm(root: str) -> t.List[str]:
    """Write proc/sys/vm/<name> from the capture's ``sysctl -a`` for each vm key it lacks (sos seldom copies
    proc/sys/vm), so memory_facts reads the vm tunables under proc_root as on a live host. The names written."""
    running, _source = running_sysctl(root)
    directory = os.path.join(root, "proc", "sys", "vm")
    if os.path.islink(directory) or (os.path.lexists(directory) and not os.path.isdir(directory)):
        return []
    written = []  # type: t.List[str]
    for key in sorted(running):
        name = key[3:]
        if re.match(r"^[a-z0-9_]{1,64}$", name) and not os.path.lexists(os.path.join(directory, name)):
            with _create(root, "proc/sys/vm/" + name) as handle:
                handle.write(running[key].encode("utf-8", "replace") + b"\n")
            written.append(name)
    return written


def sysctl_report(root: str) -> t.Dict[str, t.Any]:
    """Which file wins each vm key at this host's boot (both appliers), and whether the captured running
    value is what boot would apply. Read only: the precedence model over the capture's tree as ``/``."""
    from ansible_collections.memfrag.linux.plugins.module_utils._sysctl.precedence import analyse, collect, values_equal

    boot = collect(root)
    running, running_source = running_sysctl(root)
    keys = set()
    for applier in ("systemd", "procps"):
        for conf in boot.order[applier]:
            for assignment in conf.assignments(applier):
                if assignment.key.startswith("vm.") and not assignment.glob:
                    keys.add(assignment.key)
    analysed = analyse(boot, sorted(keys))
    entries = {}  # type: t.Dict[str, t.Any]
    differ = []  # type: t.List[str]
    for key in sorted(analysed):
        entry = analysed[key]
        boot_value = entry.get("value")
        current = running.get(key)
        same = None if current is None or entry.get("file") is None else values_equal(current, boot_value)
        entries[key] = {
            "systemd": {"file": entry.get("file"), "line": entry.get("line"), "value": boot_value,
                        "excluded_by": entry.get("excluded_by")},
            "procps": dict((k, entry["procps"].get(k)) for k in ("file", "line", "value")),
            "running": current,
            "running_matches_boot": same,
        }
        if same is False:
            differ.append("%s is %s in the capture, but %s line %s sets %s at boot" % (
                key, current, entry.get("file"), entry.get("line"), boot_value))
    return {"keys": entries, "running_source": running_source, "running_differs": differ,
            "files": [conf.path for conf in boot.order["systemd"]], "shadowed": boot.shadowed,
            "masked": boot.masked, "warnings": boot.warnings}


def _layout(files: t.Iterable[str]) -> str:
    names = set(files)
    if any(name in names for name in SUPPORTCONFIG_FILES) and not any(name.startswith("proc/") for name in names):
        return "supportconfig"
    return "sos"


def plan_capture(source: str, limits: t.Optional[t.Mapping[str, int]] = None) -> t.Dict[str, t.Any]:
    """What ``open_capture`` would copy from ``source``, from the archive's headers alone: nothing is written
    and no member's content is read (check mode). Raises extract.ArchiveError as open_capture does."""
    planned = read_capture(source, SOS_MARKERS + SUPPORTCONFIG_MARKERS, layout_patterns, None, limits)
    host, host_source = discover_host("", source, read=False)
    result = {
        "source": source,
        "layout": _layout(planned["files"]),
        "format": planned["format"],
        "top": planned["top"],
        "host": host,
        "host_source": host_source,
        "members": planned["members"],
        "would_extract": sorted(planned["files"]),
        "would_extract_bytes": planned["bytes"],
        "notes": list(planned["notes"]),
    }  # type: t.Dict[str, t.Any]
    result["summary"] = ["check mode: %s %s of %s (name from the %s); %d of %d members, %d bytes, would be "
                         "extracted: %s" % (result["layout"], result["format"], host, host_source,
                                            len(result["would_extract"]), result["members"], result["would_extract_bytes"],
                                            ", ".join(result["would_extract"]) or "none")] + result["notes"]
    return result


def open_capture(source: str, dest_root: str, limits: t.Optional[t.Mapping[str, int]] = None) -> t.Dict[str, t.Any]:
    """Copy what a diagnosis needs from ``source`` into the empty ``dest_root``, and describe the capture.

    Raises extract.ArchiveError when the capture is refused as a whole."""
    copied = read_capture(source, SOS_MARKERS + SUPPORTCONFIG_MARKERS, layout_patterns, dest_root, limits)
    layout = _layout(copied["files"])
    notes = list(copied["notes"])
    origins = {}  # type: t.Dict[str, str]
    if layout == "supportconfig":
        origins, unpack_notes = unpack_supportconfig(dest_root, sorted(copied["files"]))
        notes.extend(unpack_notes)
    host, host_source = discover_host(dest_root, source)
    release, release_source = discover_release(dest_root)
    stamp, time_source = discover_time(dest_root, copied["newest_mtime"])
    proc_root = os.path.join(dest_root, "proc")
    if release is not None and os.path.isdir(proc_root) and not os.path.lexists(
            os.path.join(proc_root, "sys", "kernel", "osrelease")):
        # sos seldom copies it; memory_facts reads the release (the watermark era) from proc_root, as on a live host.
        with _create(dest_root, "proc/sys/kernel/osrelease") as handle:
            handle.write(release.encode("ascii", "replace") + b"\n")
    if os.path.isdir(proc_root):
        fill_proc_sys_vm(dest_root)
    if not os.path.isfile(os.path.join(proc_root, "buddyinfo")):
        notes.append("the capture holds no proc/buddyinfo: there is nothing to judge fragmentation on")
    logs = log_files(dest_root)
    result = {
        "source": source,
        "layout": layout,
        "format": copied["format"],
        "top": copied["top"],
        "root": dest_root,
        "proc_root": proc_root,
        "has_buddyinfo": os.path.isfile(os.path.join(proc_root, "buddyinfo")),
        "host": host,
        "host_source": host_source,
        "kernel_release": release,
        "kernel_release_source": release_source,
        "capture_time": iso_utc(stamp) if stamp is not None else None,
        "capture_time_source": time_source,
        "since": iso_utc(stamp - WINDOW_SECONDS) if stamp is not None else None,
        "log_paths": [glob.escape(path) for path in logs],
        "log_files": [os.path.relpath(path, dest_root) for path in logs],
        "members": copied["members"],
        "extracted_files": len(copied["files"]),
        "extracted_bytes": copied["bytes"],
        "notes": notes,
    }  # type: t.Dict[str, t.Any]
    try:
        result["sysctl"] = sysctl_report(dest_root)
    except (OSError, ValueError) as exc:
        result["sysctl"] = None
        notes.append("sysctl configuration not analysed: %s" % exc)
    # A supportconfig's sources in its own words (the section each file was written from).
    for field in ("host_source", "kernel_release_source", "capture_time_source"):
        result[field] = origins.get(result[field], result[field])
    result["summary"] = summary_lines(result)
    return result


def summary_lines(capture: t.Mapping[str, t.Any]) -> t.List[str]:
    """What an operator reads first about one capture."""
    lines = ["%s %s of %s (name from %s), kernel %s (%s), taken %s (%s)" % (
        capture["layout"], capture["format"], capture["host"], capture["host_source"],
        capture["kernel_release"] or "unknown", capture["kernel_release_source"] or "not in the capture",
        capture["capture_time"] or "at an unknown time", capture["capture_time_source"] or "no date in the capture")]
    lines.append("kernel logs: %s; window from %s" % (", ".join(capture["log_files"]) or "none",
                                                      capture["since"] or "the start of the logs"))
    sysctl = capture.get("sysctl") or {}
    for key, entry in sorted((sysctl.get("keys") or {}).items()):
        systemd = entry["systemd"]
        running = entry["running"]
        state = ("not captured" if running is None else "the same" if entry["running_matches_boot"]
                 else "different" if entry["running_matches_boot"] is False else "not set at boot")
        lines.append("%s: boot sets %s from %s line %s (systemd-sysctl; sysctl --system: %s line %s), running %s: %s" % (
            key, systemd["value"], systemd["file"], systemd["line"], entry["procps"]["file"], entry["procps"]["line"],
            running, state))
    lines.extend(capture["notes"])
    return lines
