# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which sysctl file wins at boot: the precedence rules of systemd-sysctl and ``sysctl --system``.

Private to the collection. Learned from systemd 252 (``src/sysctl/sysctl.c``, ``conf-files.c``) and
procps-ng 4.0.2 (``src/sysctl.c`` ``PreloadSystem``, ``Preload``, ``write_setting_list``), and proven
against the real programs by tests/e2e/test_sysctl_oracle.py. What both do:

1. entries whose names end in ``.conf`` are collected from, in priority order, /etc/sysctl.d,
   /run/sysctl.d, /usr/local/lib/sysctl.d, /usr/lib/sysctl.d and /lib/sysctl.d; a name seen in a
   higher directory shadows the same name in lower ones, whatever the entry is (a link to
   /dev/null, an empty file, a dangling link or a directory all shadow and set nothing);
2. the surviving names are read in byte order of the names, whatever their directory.

Where they differ (so the winner is reported per applier):

- systemd skips hidden names; procps reads them, and passes each path through ``glob()`` with
  braces, so a file named ``50-*.conf`` makes it read every match instead (and stops at the first
  match it cannot open), and one named ``1\\x.conf`` reads ``1x.conf`` when that exists; procps then
  reads /etc/sysctl.conf last when it is a regular file;
- systemd keeps one entry per key: a later line replaces an earlier one (one with the same value
  text keeps the earlier's place), an exclusion ``-key`` replaces it too, so the key is not written
  at all; globs then skip every key that has an entry. procps writes every line in order (the last
  write wins); a glob skips a key only when some line spells exactly the path glob() returned, which
  keeps the glob's own spelling (``vm//x`` does not keep ``vm.*`` off ``vm/x``, nor does ``vm.x`` keep
  ``vm//*`` off it), and an exclusion only keeps globs away (a glob exclusion ``-vm.dirty_*`` none);
- systemd expands braces in a glob key (``vm.{swap,dirty}* = 1``, GLOB_BRACE); procps does not;
- line splitting and blank stripping differ (see dropin.py).

Symlinks under ``config_root`` are followed as the booted image would, with ``config_root`` as
``/`` (an absolute ``/etc/sysctl.d/99-sysctl.conf -> /etc/sysctl.conf`` stays inside it); no path
ever resolves outside it.
"""


import os
import re
import stat
import typing as t

from ansible_collections.memfrag.linux.plugins.module_utils._sysctl.dropin import (
    APPLIERS, Assignment, key_path, parse_sysctl_conf)

# Priority order (highest first), as both appliers search them (Debian's systemd is built with split /usr).
SYSCTL_DIRS = ("/etc/sysctl.d", "/run/sysctl.d", "/usr/local/lib/sysctl.d", "/usr/lib/sysctl.d", "/lib/sysctl.d")
SYSCTL_CONF = "/etc/sysctl.conf"
# Both appliers read a file of any size (systemd-sysctl only stops at a line of 1 MiB, see dropin.py); the
# model reads this much, far past any real sysctl file, and warns about a larger one it cannot judge.
MAX_CONF_BYTES = 16 * 1024 * 1024
_MAX_LINKS = 40  # the kernel's limit of symlinks followed in one lookup (ELOOP)
_NO_WINNER = {"file": None, "line": None, "value": None, "glob": False}

__all__ = ("APPLIERS", "SYSCTL_DIRS", "SYSCTL_CONF", "BootConfig", "ConfigFile", "analyse", "collect",
           "overrides", "resolve_in_root", "shadow_of", "values_equal", "winner")


def resolve_in_root(root: str, path: str) -> t.Optional[str]:
    """The host path ``path`` names when ``root`` is ``/``, following symlinks the way a chroot would.

    An absolute link target starts again at ``root``, ``..`` stops at ``root``: the result is
    always inside ``root``. None when a component is missing, not a directory, or links loop.
    """
    pending = [part for part in path.split("/") if part]
    done = []  # type: t.List[str]
    hops = 0
    while pending:
        part = pending.pop(0)
        if part == ".":
            continue
        if part == "..":
            if done:
                done.pop()
            continue
        candidate = os.path.join(root, *(done + [part]))
        try:
            info = os.lstat(candidate)
        except OSError:
            return None
        if stat.S_ISLNK(info.st_mode):
            hops += 1
            if hops > _MAX_LINKS:
                return None
            try:
                target = os.readlink(candidate)
            except OSError:
                return None
            if target.startswith("/"):
                done = []
            pending = [p for p in target.split("/") if p] + pending
            continue
        if pending and not stat.S_ISDIR(info.st_mode):
            return None
        done.append(part)
    return os.path.join(root, *done) if done else root


def _glob_regex(pattern: str) -> "t.Pattern[str]":
    """fnmatch(3) without flags, as glob(3) applies it to one name: * ? [set] [!set] [^set] and \\ escapes."""
    out = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        i += 1
        if char == "*":
            out.append(".*")
        elif char == "?":
            out.append(".")
        elif char == "\\" and i < len(pattern):
            out.append(re.escape(pattern[i]))
            i += 1
        elif char == "[":
            j = i
            if j < len(pattern) and pattern[j] in "!^":
                j += 1
            if j < len(pattern) and pattern[j] == "]":
                j += 1
            while j < len(pattern) and pattern[j] != "]":
                j += 1
            if j >= len(pattern):
                out.append("\\[")
                continue
            body = pattern[i:j]
            i = j + 1
            negate = body[:1] in ("!", "^")
            if negate:
                body = body[1:]
            body = body.replace("\\", "\\\\")
            out.append("[%s%s]" % ("^" if negate else "", body.replace("[", "\\[")))
        else:
            out.append(re.escape(char))
    return re.compile("(?s:%s)\\Z" % "".join(out))


def _has_magic(pattern: str) -> bool:
    # glob(3) only treats "[" as magic when a "]" follows it.
    return "*" in pattern or "?" in pattern or ("[" in pattern and "]" in pattern[pattern.index("["):])


def _unescape(pattern: str) -> str:
    # glob(3) without GLOB_NOESCAPE: a backslash quotes the character after it.
    out = []
    index = 0
    while index < len(pattern):
        if pattern[index] == "\\" and index + 1 < len(pattern):
            index += 1
        out.append(pattern[index])
        index += 1
    return "".join(out)


def _name_glob(pattern: str, names: t.Iterable[str], nocheck: bool) -> t.List[str]:
    """glob(3) of one directory entry name: matches in byte order; leading dots only matched literally."""
    if not _has_magic(pattern):
        # Without wildcards glob() looks the unquoted name up (``1\\x.conf`` reads ``1x.conf`` when that
        # exists) and, with GLOB_NOCHECK, hands back the pattern as written when it does not.
        literal = _unescape(pattern)
        if literal in names:
            return [literal]
        return [pattern] if nocheck else []
    regex = _glob_regex(pattern)
    found = sorted((n for n in names if regex.match(n) and (not n.startswith(".") or pattern.startswith("."))),
                   key=os.fsencode)
    if found:
        return found
    return [pattern] if nocheck else []


def _brace_split(pattern: str) -> t.Optional[t.Tuple[str, t.List[str], str]]:
    """(before, alternatives, after) of the first well-formed {a,b} in ``pattern`` (GLOB_BRACE), or None."""
    start = pattern.find("{")
    while start != -1:
        depth = 0
        alternatives = []
        last = start + 1
        for index in range(start, len(pattern)):
            char = pattern[index]
            if char == "{":
                depth += 1
            elif char == "}":
                depth -= 1
                if depth == 0:
                    alternatives.append(pattern[last:index])
                    return pattern[:start], alternatives, pattern[index + 1:]
            elif char == "," and depth == 1:
                alternatives.append(pattern[last:index])
                last = index + 1
        start = pattern.find("{", start + 1)
    return None


def _procps_glob(pattern: str, names: t.Iterable[str], nocheck: bool = True) -> t.List[str]:
    """What glob(GLOB_NOCHECK|GLOB_BRACE) gives procps for one file name in a sysctl directory."""
    names = list(names)
    braces = _brace_split(pattern)
    if braces is not None:
        before, alternatives, after = braces
        found = []  # type: t.List[str]
        for alternative in alternatives:
            # Each alternative is globbed without GLOB_NOCHECK; only if none matched is the pattern kept.
            found.extend(_procps_glob(before + alternative + after, names, nocheck=False))
        if found:
            return found
    return _name_glob(pattern, names, nocheck)


class ConfigFile(object):
    """One file an applier reads. ``path`` is as seen on the host (without config_root).

    ``kind`` is what the entry is: ``file``, ``empty`` (an empty file or /dev/null: a mask),
    ``directory`` or ``missing`` (a dangling link): the last two set nothing either.
    """

    __slots__ = ("name", "path", "kind", "text", "hidden", "error", "_parsed")

    def __init__(self, name: str, path: str) -> None:
        self.name = name
        self.path = path
        self.kind = "missing"
        self.text = None  # type: t.Optional[str]
        self.hidden = name.startswith(".")
        self.error = None  # type: t.Optional[str]
        self._parsed = {}  # type: t.Dict[str, t.Tuple[t.List[Assignment], t.List[int]]]

    @property
    def masked(self) -> bool:
        return self.kind == "empty"

    def assignments(self, applier: str) -> t.List[Assignment]:
        return self.parsed(applier)[0]

    def invalid_lines(self, applier: str) -> t.List[int]:
        return self.parsed(applier)[1]

    def parsed(self, applier: str) -> t.Tuple[t.List[Assignment], t.List[int]]:
        if applier not in self._parsed:
            self._parsed[applier] = parse_sysctl_conf(self.text or "", applier)
        return self._parsed[applier]


class BootConfig(object):
    """The files each applier reads, in application order, plus what was shadowed or masked."""

    def __init__(self) -> None:
        self.order = {"systemd": [], "procps": []}  # type: t.Dict[str, t.List[ConfigFile]]
        self.shadowed = []  # type: t.List[t.Dict[str, str]]
        self.masked = []  # type: t.List[str]
        self.warnings = []  # type: t.List[str]


def _load(config_root: str, conf: ConfigFile, overlay: t.Mapping[str, t.Optional[str]]) -> None:
    """Fill ``conf.kind`` and ``conf.text`` from the overlay or the tree; never blocks, never leaves the root."""
    if conf.path in overlay:
        text = overlay[conf.path]
        conf.kind, conf.text = ("empty", None) if not text or not text.strip() else ("file", text)
        return
    parent = resolve_in_root(config_root, os.path.dirname(conf.path))
    if parent is None:
        return
    try:
        if os.readlink(os.path.join(parent, conf.name)) == "/dev/null":
            # The usual mask; inside an image tree /dev/null may not exist, the effect is the same.
            conf.kind = "empty"
            return
    except OSError:
        pass  # not a link
    real = resolve_in_root(config_root, conf.path)
    if real is None:
        conf.kind = "missing"
        return
    try:
        info = os.stat(real)
    except OSError as exc:
        conf.error = exc.strerror or str(exc)
        return
    if stat.S_ISDIR(info.st_mode):
        conf.kind = "directory"
        return
    if stat.S_ISCHR(info.st_mode) and info.st_rdev == os.makedev(1, 3):
        conf.kind = "empty"
        return
    if not stat.S_ISREG(info.st_mode):
        # A FIFO would block both appliers at boot; never open one here.
        conf.error = "not a regular file; neither applier can read it at boot"
        return
    try:
        fd = os.open(real, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as handle:
            data = handle.read(MAX_CONF_BYTES + 1)
    except (IOError, OSError) as exc:
        conf.error = "not readable: %s" % (exc.strerror or exc)
        return
    if len(data) > MAX_CONF_BYTES:
        conf.error = ("larger than %d bytes; not a sysctl file (both appliers would still read it, so the winners "
                      "reported here may be wrong)" % MAX_CONF_BYTES)
        return
    text = data.decode("utf-8", "replace")
    conf.kind, conf.text = ("empty", None) if not text.strip() else ("file", text)


def _list_dir(config_root: str, directory: str, overlay: t.Mapping[str, t.Optional[str]],
              warnings: t.List[str]) -> t.List[str]:
    names = set()  # type: t.Set[str]
    real = resolve_in_root(config_root, directory)
    if real is not None and os.path.isdir(real):
        try:
            names.update(os.listdir(real))
        except OSError as exc:
            warnings.append("%s not read: %s" % (directory, exc.strerror or exc))
    for path, text in overlay.items():
        if os.path.dirname(path) == directory:
            if text is None:
                names.discard(os.path.basename(path))
            else:
                names.add(os.path.basename(path))
    return sorted(names, key=os.fsencode)


def collect(config_root: str, overlay: t.Optional[t.Mapping[str, t.Optional[str]]] = None) -> BootConfig:
    """Read the sysctl configuration under ``config_root`` as both appliers would at boot.

    ``overlay`` maps host paths to planned content (None: the file will not exist), so the model
    can be evaluated on the state a change would produce before anything is written.
    """
    overlay = dict(overlay or {})
    boot = BootConfig()
    chosen = {}  # type: t.Dict[str, str]  # name -> directory that provides it
    listings = {}  # type: t.Dict[str, t.List[str]]
    seen_dirs = set()  # type: t.Set[str]
    for directory in SYSCTL_DIRS:
        real = resolve_in_root(config_root, directory)
        if real is not None and os.path.isdir(real):
            # Merged /usr: /lib/sysctl.d is /usr/lib/sysctl.d; reading it twice would only report
            # every vendor file as shadowed by itself (the appliers skip the names as already seen).
            if os.path.realpath(real) in seen_dirs:
                continue
            seen_dirs.add(os.path.realpath(real))
        listings[directory] = _list_dir(config_root, directory, overlay, boot.warnings)
        for name in listings[directory]:
            if len(name) < 5 or not name.endswith(".conf"):
                continue
            if name in chosen:
                boot.shadowed.append({"path": directory + "/" + name, "by": chosen[name] + "/" + name})
                continue
            chosen[name] = directory

    loaded = {}  # type: t.Dict[str, ConfigFile]

    def load(name: str, path: str) -> ConfigFile:
        if path not in loaded:
            conf = ConfigFile(name, path)
            _load(config_root, conf, overlay)
            loaded[path] = conf
            if conf.masked:
                boot.masked.append(path)
            if conf.kind == "directory":
                boot.warnings.append("%s is a directory: it shadows that name in later directories, and neither "
                                     "applier reads anything from it" % path)
            if conf.error:
                boot.warnings.append("%s not read: %s" % (path, conf.error))
        return loaded[path]

    for name in sorted(chosen, key=os.fsencode):
        directory = chosen[name]
        conf = load(name, directory + "/" + name)
        if not conf.hidden:
            boot.order["systemd"].append(conf)
        # procps hands "<directory>/<name>" to glob(); a name with glob characters or braces reads its matches.
        for match in _procps_glob(name, listings[directory]):
            expanded = load(match, directory + "/" + match)
            if expanded.kind == "missing" or expanded.error:
                break  # procps stops reading this glob's files at the first it cannot open
            boot.order["procps"].append(expanded)
    # procps reads /etc/sysctl.conf last when stat() (following links) says it is a regular file.
    if SYSCTL_CONF in overlay:
        present = overlay[SYSCTL_CONF] is not None
    else:
        real_conf = resolve_in_root(config_root, SYSCTL_CONF)
        present = real_conf is not None and os.path.isfile(real_conf)
    if present:
        boot.order["procps"].append(load(os.path.basename(SYSCTL_CONF), SYSCTL_CONF))
    return boot


def shadow_of(boot: BootConfig, path: str) -> t.Optional[str]:
    """Why the file at ``path`` is not applied at boot (shadowed or masked), or None."""
    for entry in boot.shadowed:
        if entry["path"] == path:
            masked = entry["by"] in boot.masked
            return "%s is %s by %s" % (path, "masked" if masked else "shadowed", entry["by"])
    if path in boot.masked:
        return "%s is empty or a link to /dev/null" % path
    return None


def _brace_expansions(pattern: str) -> t.List[str]:
    """Every pattern GLOB_BRACE makes of ``pattern`` (``vm/{swap,dirty}*``: ``vm/swap*``, ``vm/dirty*``)."""
    braces = _brace_split(pattern)
    if braces is None:
        return [pattern]
    before, alternatives, after = braces
    found = []  # type: t.List[str]
    for alternative in alternatives:
        found.extend(_brace_expansions(before + alternative + after))
    return found


def _glob_matches(pattern: str, target: str) -> bool:
    # systemd-sysctl globs keys with GLOB_BRACE (procps does not, see _procps_glob_result).
    return any(_glob_matches_one(expanded, target) for expanded in _brace_expansions(pattern))


def _glob_matches_one(pattern: str, target: str) -> bool:
    # glob(3) on /proc/sys paths: wildcards never cross a "/" and never match a leading ".".
    pattern_parts = pattern.strip("/").split("/")
    target_parts = target.split("/")
    if len(pattern_parts) != len(target_parts):
        return False
    for pat, name in zip(pattern_parts, target_parts):
        if _has_magic(pat):
            if not _glob_regex(pat).match(name) or (name.startswith(".") and not pat.startswith(".")):
                return False
        elif pat != name:
            return False
    return True


def _procps_glob_result(path: str, target: str) -> t.Optional[str]:
    """The path glob(3) returns for ``target`` (``vm/swappiness``) from procps' pattern ``path``, or None.

    glob() keeps the pattern's own spelling and only replaces its wildcard components:
    ``/proc/sys/vm//swap*`` gives ``/proc/sys/vm//swappiness``, which procps then compares as a string
    with the paths other lines spell (so ``vm.swappiness`` does not keep that glob off the key).
    """
    if path.endswith("/"):
        return None
    wanted = ["proc", "sys"] + target.split("/")
    resolved = []  # type: t.List[str]  # where the kernel has got to
    spelled = []  # type: t.List[str]
    for part in path.split("/"):
        if part in ("", "."):
            spelled.append(part)
            continue
        if part == "..":
            if resolved:
                resolved.pop()
            spelled.append(part)
            continue
        if _has_magic(part):
            index = len(resolved)
            if resolved != wanted[:index] or index >= len(wanted):
                return None
            name = wanted[index]
            if not _glob_regex(part).match(name) or (name.startswith(".") and not part.startswith(".")):
                return None
            part = name
        resolved.append(part)
        spelled.append(part)
    return "/".join(spelled) if resolved == wanted else None


def _procps_is_glob(assignment: Assignment) -> bool:
    # procps decides on the path as spelled (string_is_glob(node->path)), before the kernel resolves it.
    return any(char in (assignment.path or "") for char in "*?[")


def _describe(conf: ConfigFile, assignment: Assignment) -> t.Dict[str, t.Any]:
    return {"file": conf.path, "line": assignment.line_number, "value": assignment.value, "glob": assignment.glob}


def _systemd_winner(files: t.Sequence[ConfigFile], target: str) -> t.Dict[str, t.Any]:
    # An ordered table of key -> entry, as systemd-sysctl builds it: a new value (or an exclusion)
    # for a key moves it to the end; the same value text again keeps the earlier place. The entry
    # reported is the latest line that carries the value in effect.
    table = {}  # type: t.Dict[str, t.List[t.Any]]  # key -> [position, conf, assignment]
    position = 0
    for conf in files:
        for assignment in conf.assignments("systemd"):
            key = assignment.target if assignment.target is not None else "\0" + assignment.key
            current = table.get(key)
            position += 1
            if current is not None and current[2].value == assignment.value:
                table[key] = [current[0], conf, assignment]
                continue
            table[key] = [position, conf, assignment]
    entry = table.get(target)
    if entry is not None:
        if entry[2].value is None:
            result = dict(_NO_WINNER)
            result["excluded_by"] = {"file": entry[1].path, "line": entry[2].line_number}
            return result
        result = _describe(entry[1], entry[2])
        result["excluded_by"] = None
        return result
    best = None  # type: t.Optional[t.List[t.Any]]
    for key, candidate in table.items():
        if candidate[2].glob and candidate[2].value is not None and _glob_matches(key, target):
            if best is None or candidate[0] > best[0]:
                best = candidate
    result = _describe(best[1], best[2]) if best is not None else dict(_NO_WINNER)
    result["excluded_by"] = None
    return result


def _procps_winner(files: t.Sequence[ConfigFile], target: str) -> t.Dict[str, t.Any]:
    # procps writes every line in order; a glob skips a key when some line (even an exclusion) spells
    # exactly the path glob() returned for it, compared as strings.
    spelled = set()  # type: t.Set[str]
    for conf in files:
        for assignment in conf.assignments("procps"):
            spelled.add(assignment.path or "")
    best = None  # type: t.Optional[t.Tuple[ConfigFile, Assignment]]
    for conf in files:
        for assignment in conf.assignments("procps"):
            if assignment.exclude:
                continue
            if _procps_is_glob(assignment):
                result = _procps_glob_result(assignment.path or "", target)
                if result is not None and result not in spelled:
                    best = (conf, assignment)
            elif assignment.target == target:
                best = (conf, assignment)
    return _describe(best[0], best[1]) if best is not None else dict(_NO_WINNER)


def winner(files: t.Sequence[ConfigFile], key: str, applier: str = "systemd") -> t.Optional[t.Dict[str, t.Any]]:
    """The assignment of ``key`` (dotted) ``applier`` leaves in effect after reading ``files``, or None."""
    found = (_systemd_winner if applier == "systemd" else _procps_winner)(files, key_path(key))
    return found if found["file"] is not None else None


def _assignments_of(files: t.Sequence[ConfigFile], target: str, applier: str) -> t.List[t.Dict[str, t.Any]]:
    found = []
    for conf in files:
        for assignment in conf.assignments(applier):
            if assignment.exclude:
                continue
            if applier == "procps" and _procps_is_glob(assignment):
                if _procps_glob_result(assignment.path or "", target) is not None:
                    found.append(_describe(conf, assignment))
                continue
            pattern = assignment.target
            if (assignment.glob and pattern and _glob_matches(pattern, target)) or assignment.target == target:
                found.append(_describe(conf, assignment))
    return found


def analyse(boot: BootConfig, keys: t.Iterable[str]) -> t.Dict[str, t.Dict[str, t.Any]]:
    """Per key: the winning file, line and value under systemd-sysctl (top level) and procps.

    The systemd entry also says ``excluded_by`` (file, line) when a later ``-key`` line keeps
    systemd-sysctl from writing the key at all. ``assignments`` lists every line that names the key
    (explicitly or by glob) in the order that applier reads them.
    """
    result = {}
    for key in keys:
        target = key_path(key)
        entry = _systemd_winner(boot.order["systemd"], target)
        entry["assignments"] = _assignments_of(boot.order["systemd"], target, "systemd")
        procps = _procps_winner(boot.order["procps"], target)
        procps["assignments"] = _assignments_of(boot.order["procps"], target, "procps")
        entry["procps"] = procps
        result[key] = entry
    return result


_KERNEL_NUMBER_CHARS = 21


def _kernel_integers(text: str) -> t.Optional[t.List[int]]:
    """The integers proc_dointvec() takes from ``text``: base 0 (0x hex, leading-0 octal), each ended by
    a blank; it stops at the first field that is not a number (``65536 # keep`` is 65536). None if
    the first field is not a number."""
    values = []  # type: t.List[int]
    for field in re.split(r"[ \t\n\r\v\f]+", text.strip(" \t\n\r\v\f")):
        # proc_get_long() copies at most TMPBUFLEN - 1 = 21 characters and rejects a longer number (EINVAL);
        # checked before int(), which raises past 4,300 digits (a sysctl.d value of 5,000 digits was a traceback).
        if len(field) > _KERNEL_NUMBER_CHARS:
            break
        match = re.match(r"^(-?)(?:0[xX]([0-9a-fA-F]+)|0([0-7]+)|([1-9][0-9]*|0))$", field)
        if match is None:
            break
        sign, hexadecimal, octal, decimal = match.groups()
        number = int(hexadecimal, 16) if hexadecimal else int(octal, 8) if octal else int(decimal, 10)
        values.append(-number if sign else number)
    return values or None


def values_equal(left: t.Optional[str], right: t.Optional[str]) -> bool:
    """Whether the kernel ends up with the same value from both texts.

    Integers compare as the kernel parses them (``0x40`` and ``0100`` are 64; a trailing ``# note``
    is ignored); other values compare by whitespace-separated fields.
    """
    if left is None or right is None:
        return left is right
    a, b = _kernel_integers(left), _kernel_integers(right)
    if a is not None and b is not None:
        return a == b
    return left.split() == right.split()


def overrides(precedence: t.Mapping[str, t.Mapping[str, t.Any]], own_path: str,
              wanted: t.Mapping[str, str]) -> t.Tuple[t.List[str], t.List[str]]:
    """Messages for keys that another file wins at boot: (different value or not set, same value).

    A later file with a different value defeats the baseline, and so does a later ``-key`` line
    (systemd-sysctl then does not write the key at all). One with the same value does no harm
    today but will silently win once the baseline changes, so it is worth a warning.
    """
    conflicting = []  # type: t.List[str]
    redundant = []  # type: t.List[str]
    for key in sorted(wanted):
        entry = precedence.get(key, {})
        for applier, found in (("systemd-sysctl", entry), ("sysctl --system", entry.get("procps", {}))):
            path = found.get("file")
            if path == own_path:
                continue
            excluded = found.get("excluded_by")
            if excluded:
                conflicting.append("-%s in %s line %s excludes %s, so %s does not set it at boot at all (the "
                                   "assignment in %s is dropped)" % (key, excluded["file"], excluded["line"], key,
                                                                     applier, own_path))
                continue
            if path is None:
                message = "%s: %s would not set %s at boot (%s is shadowed or masked)" % (
                    own_path, applier, key, own_path)
                conflicting.append(message)
                continue
            message = "%s = %s in %s line %s overrides %s at boot under %s" % (
                key, found.get("value"), path, found.get("line"), own_path, applier)
            if values_equal(found.get("value"), wanted[key]):
                redundant.append(message + " (same value today)")
            else:
                conflicting.append(message + " (wanted %s)" % wanted[key])
    return conflicting, redundant
