# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a sosreport or supportconfig holds for a diagnosis: its /proc files, kernel logs, host, kernel and time.

Private to the collection. Layouts (looked up in sos' plugins kernel, memory, logs, host, date, filesys, rpm,
and in supportconfig's memory_info/log functions):

- sos: one top directory holding copies at their host paths (``proc/buddyinfo``, ``proc/sys/vm/*``,
  ``var/log/messages*``, ``etc/sysctl.d/*``), command output in ``sos_commands/<plugin>/<command>``
  (``kernel/uname_-a``, ``kernel/sysctl_-a``, ``kernel/dmesg``, ``logs/journalctl_*``, ``date/date``,
  ``host/hostname``), and top-level links (``uname``, ``hostname``, ``date``, ``installed-rpms``);
- supportconfig: flat ``*.txt`` files made of sections, each ``#==[ Kind ]===#``, then ``# what``, then the
  content: ``memory.txt`` holds ``/proc/meminfo``, ``vmstat``, ``buddyinfo``, ``slabinfo``, ``zoneinfo`` and
  ``sysctl -a | grep ^vm``; ``messages.txt`` the syslog; ``boot.txt`` dmesg; ``basic-environment.txt``
  ``uname -a`` and ``date``; ``env.txt`` the sysctl configuration. Sections are written out as files at their
  host paths so the same readers apply.
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
SUPPORTCONFIG_FILES = ("basic-environment.txt", "memory.txt", "messages.txt", "boot.txt", "env.txt", "rpm.txt",
                       "slab.txt", "proc.txt")
SOS_MARKERS = ("sos_commands", "sos_reports", "proc/buddyinfo")
SUPPORTCONFIG_MARKERS = ("basic-environment.txt", "supportconfig.txt")
LOG_PATTERNS = ("var/log/messages*", "var/log/kern.log*", "var/log/syslog*", "sos_commands/logs/journalctl_*")
DMESG_PATTERN = "sos_commands/kernel/dmesg*"
# journalctl_--disk-usage, _--list-boots and the like hold no messages.
_NOT_LOGS = re.compile(r"journalctl_.*(--disk-usage|--list-boots|--verify|--header|--fields)")
WINDOW_SECONDS = 7 * 86400
_SECTION = re.compile(r"^#==\[ ?([^\]]{1,60}?) ?\]=*#\s*$")
_HOST_SAFE = re.compile(r"[^A-Za-z0-9._-]")
_MONTHS = dict((name, number) for number, name in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1))
_DATE = re.compile(r"^\s*(?:[A-Z][a-z]{2}\s+)?([A-Z][a-z]{2})\s+(\d{1,2})\s+(\d{2}):(\d{2}):(\d{2})\s+"
                   r"(?:([A-Za-z]{1,6}|[+-]\d{4})\s+)?(\d{4})\s*$")
_RPM_KERNEL = re.compile(r"^kernel(?:-default|-core)?-(\d[^\s]*?)(?:\.(?:x86_64|aarch64|ppc64le|s390x|i686|noarch))?(?:\s|$)")
MAX_TEXT = 1024 * 1024  # bytes read of any one small identity file


def layout_patterns(members: t.Mapping[str, Member], top: str) -> t.Sequence[str]:
    prefix = top + "/" if top else ""
    if any(prefix + marker in members for marker in SUPPORTCONFIG_MARKERS):
        return SUPPORTCONFIG_FILES
    return SOS_PATTERNS


def _read(root: str, relative: str, limit: int = MAX_TEXT) -> t.Optional[str]:
    path = os.path.join(root, *relative.split("/"))
    try:
        with open(path, "rb") as handle:
            return handle.read(limit).decode("utf-8", "replace")
    except (IOError, OSError):
        return None


def _write(root: str, relative: str, text: str, mtime: float) -> None:
    path = os.path.join(root, *relative.split("/"))
    if os.path.lexists(path):
        return  # a file the capture itself holds wins over a copy inside a section
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        os.makedirs(directory, 0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.utime(path, (mtime, mtime))


def sections(text: str) -> t.List[t.Tuple[str, str, str]]:
    """supportconfig text -> [(kind, what, content)]: ``#==[ Configuration File ]===#`` / ``# /proc/meminfo``."""
    found = []  # type: t.List[t.Tuple[str, str, str]]
    lines = text.split("\n")
    index = 0
    current = None  # type: t.Optional[t.List[t.Any]]
    while index < len(lines):
        header = _SECTION.match(lines[index])
        if header:
            if current is not None:
                found.append((current[0], current[1], "\n".join(current[2])))
            what = lines[index + 1][1:].strip() if index + 1 < len(lines) and lines[index + 1].startswith("#") else ""
            current = [header.group(1).strip(), what, []]
            index += 2 if what else 1
            continue
        if current is not None:
            current[2].append(lines[index])
        index += 1
    if current is not None:
        found.append((current[0], current[1], "\n".join(current[2])))
    return found


def _section_target(kind: str, what: str) -> t.Optional[str]:
    """Where a supportconfig section goes in the host-path tree, or None when it is not needed."""
    first = what.split(" - ")[0].strip().split()
    if not first:
        return None
    command = first[0]
    if kind.startswith("Configuration File") or kind.startswith("Log File"):
        path = command
        if re.match(r"^/proc/(%s)$" % "|".join(PROC_FILES), path) or re.match(r"^/proc/sys/vm/[a-z_0-9]+$", path):
            return path[1:]
        if re.match(r"^/etc/sysctl\.conf$|^/(etc|run|usr/lib|usr/local/lib|lib)/sysctl\.d/[^/]+\.conf$", path):
            return path[1:]
        if re.match(r"^/var/log/(messages|kern\.log|syslog|warn)(-[0-9]{8})?$", path):
            return path[1:]
        return None
    if kind.startswith("Command"):
        base = os.path.basename(command)
        if base == "sysctl" and "-a" in first:
            return "sos_commands/kernel/sysctl_-a"
        if base == "uname" and "-a" in first:
            return "sos_commands/kernel/uname_-a"
        if base == "date":
            return "sos_commands/date/date"
        if base == "hostname":
            return "sos_commands/host/hostname"
        if base == "journalctl" or base == "dmesg":
            return "sos_commands/logs/journalctl_supportconfig" if base == "journalctl" else "sos_commands/kernel/dmesg"
    return None


def unpack_supportconfig(root: str, files: t.Sequence[str]) -> t.List[str]:
    """Write the needed sections of the supportconfig text files under ``root`` at their host paths; the names
    of the files written."""
    written = []  # type: t.List[str]
    for name in files:
        if name not in SUPPORTCONFIG_FILES:
            continue
        path = os.path.join(root, name)
        try:
            mtime = os.stat(path).st_mtime
            with open(path, "rb") as handle:
                text = handle.read().decode("utf-8", "replace")
        except (IOError, OSError):
            continue
        for kind, what, content in sections(text):
            target = _section_target(kind, what)
            if target is None or target in written:
                continue
            _write(root, target, content.strip("\n") + "\n", mtime)
            written.append(target)
    return written


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


def discover_host(root: str, source: str) -> t.Tuple[str, str]:
    """(safe inventory name, where it came from)."""
    for relative in ("sos_commands/host/hostname", "sos_commands/general/hostname", "hostname", "etc/hostname"):
        line = _first_line(_read(root, relative, 4096))
        if line:
            return safe_host_name(line, ""), relative
    uname = _first_line(_read(root, "sos_commands/kernel/uname_-a", 4096) or _read(root, "uname", 4096))
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
    uptime-stamped lines would count every event a second time)."""
    def under(pattern: str) -> t.List[str]:
        return sorted(path for path in glob.glob(os.path.join(glob.escape(root), pattern))
                      if os.path.isfile(path) and not _NOT_LOGS.search(os.path.basename(path)))
    found = []  # type: t.List[str]
    for pattern in LOG_PATTERNS:
        found.extend(under(pattern))
    if not found:
        found = under(DMESG_PATTERN)
    return found


def running_sysctl(root: str) -> t.Tuple[t.Dict[str, str], t.Optional[str]]:
    """vm.* values the capture recorded as running: ``sysctl -a`` output, else proc/sys/vm/*."""
    text = _read(root, "sos_commands/kernel/sysctl_-a", 16 * 1024 * 1024)
    values = {}  # type: t.Dict[str, str]
    if text:
        for line in text.splitlines():
            key, sep, value = line.partition("=")
            key = key.strip()
            if sep and key.startswith("vm.") and len(key) < 128:
                values[key] = value.strip()
        if values:
            return values, "sos_commands/kernel/sysctl_-a"
    directory = os.path.join(root, "proc", "sys", "vm")
    if os.path.isdir(directory):
        for name in sorted(os.listdir(directory)):
            text = _read(root, "proc/sys/vm/" + name, 65536)
            if text is not None and re.match(r"^[a-z0-9_]+$", name):
                values["vm." + name] = text.strip()
    return values, ("proc/sys/vm" if values else None)


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


def open_capture(source: str, dest_root: str, limits: t.Optional[t.Mapping[str, int]] = None) -> t.Dict[str, t.Any]:
    """Copy what a diagnosis needs from ``source`` into the empty ``dest_root``, and describe the capture.

    Raises extract.ArchiveError when the capture is refused as a whole."""
    copied = read_capture(source, SOS_MARKERS + SUPPORTCONFIG_MARKERS, layout_patterns, dest_root, limits)
    layout = "sos"
    notes = list(copied["notes"])
    if any(name in copied["files"] for name in SUPPORTCONFIG_FILES) and not any(
            name.startswith("proc/") for name in copied["files"]):
        layout = "supportconfig"
        unpack_supportconfig(dest_root, sorted(copied["files"]))
    host, host_source = discover_host(dest_root, source)
    release, release_source = discover_release(dest_root)
    stamp, time_source = discover_time(dest_root, copied["newest_mtime"])
    proc_root = os.path.join(dest_root, "proc")
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
