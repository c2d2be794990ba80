# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which sysctl file wins at boot: the precedence rules of systemd-sysctl and ``sysctl --system``.

Private to the collection. Both appliers (systemd-sysctl.service, sysctl.d(5); procps-ng
``sysctl --system``, src/sysctl.c ``PreloadSystem``) work the same way:

1. ``*.conf`` files are collected from, in priority order, /etc/sysctl.d, /run/sysctl.d,
   /usr/local/lib/sysctl.d, /usr/lib/sysctl.d and /lib/sysctl.d;
2. a file name seen in a higher-priority directory shadows the same name in lower ones, and a
   file that is a symlink to /dev/null (or empty) masks that name;
3. the surviving files are applied in lexical order of their names, whatever their directory;
4. later assignments of a key overwrite earlier ones; a glob never overrides a key that has an
   explicit assignment anywhere, and ``-key`` excludes a key from globs.

They differ in two details: procps applies /etc/sysctl.conf after everything else when it is a
regular file, and systemd skips hidden files (names starting with a dot). We model both and report
the winner for each, because a host may boot with either and an operator may run either.
"""


import fnmatch
import os
import typing as t

from ansible_collections.memfrag.linux.plugins.module_utils._procfs.files import ProcFileError, path_under, read_text
from ansible_collections.memfrag.linux.plugins.module_utils._sysctl.dropin import Assignment, key_path, parse_sysctl_conf

# Priority order (highest first), as both appliers search them.
SYSCTL_DIRS = ("/etc/sysctl.d", "/run/sysctl.d", "/usr/local/lib/sysctl.d", "/usr/lib/sysctl.d", "/lib/sysctl.d")
SYSCTL_CONF = "/etc/sysctl.conf"
APPLIERS = ("systemd", "procps")
MAX_CONF_BYTES = 1024 * 1024


class ConfigFile(object):
    """One file an applier reads. ``path`` is as seen on the host (without config_root)."""

    __slots__ = ("name", "path", "masked", "assignments", "invalid_lines", "hidden", "error")

    def __init__(self, name: str, path: str) -> None:
        self.name = name
        self.path = path
        self.masked = False
        self.assignments = []  # type: t.List[Assignment]
        self.invalid_lines = []  # type: t.List[int]
        self.hidden = name.startswith(".")
        self.error = None  # type: t.Optional[str]


class BootConfig(object):
    """The files each applier reads, in application order, plus what was shadowed or masked."""

    def __init__(self) -> None:
        self.order = {"systemd": [], "procps": []}  # type: t.Dict[str, t.List[ConfigFile]]
        self.shadowed = []  # type: t.List[t.Dict[str, str]]
        self.masked = []  # type: t.List[str]
        self.warnings = []  # type: t.List[str]


def _is_dev_null_link(full: str) -> bool:
    # Checked before any root containment test: /dev/null is outside every config_root tree, and
    # a link to it is a mask, not an escape.
    if not os.path.islink(full):
        return False
    try:
        target = os.readlink(full)
    except OSError:
        return False
    return target == "/dev/null" or os.path.realpath(full) == "/dev/null"


def _load(config_root: str, conf: ConfigFile, overlay: t.Mapping[str, t.Optional[str]]) -> None:
    if conf.path in overlay:
        text = overlay[conf.path]
        if text is None:
            conf.masked = True
            return
    else:
        full = os.path.join(config_root, conf.path.lstrip("/"))
        if _is_dev_null_link(full):
            conf.masked = True
            return
        try:
            text = read_text(config_root, conf.path, MAX_CONF_BYTES)
        except ProcFileError as exc:
            conf.error = str(exc)
            return
    conf.assignments, conf.invalid_lines = parse_sysctl_conf(text)
    if not text.strip():
        # systemd treats an empty file like /dev/null; either way it sets nothing.
        conf.masked = True


def collect(config_root: str, overlay: t.Optional[t.Mapping[str, t.Optional[str]]] = None) -> BootConfig:
    """Read the sysctl configuration under ``config_root`` as both appliers would at boot.

    ``overlay`` maps host paths to planned content (None: the file will not exist), so the model
    can be evaluated on the state a change would produce before anything is written.
    """
    overlay = dict(overlay or {})
    boot = BootConfig()
    chosen = {}  # type: t.Dict[str, ConfigFile]
    seen_dirs = set()  # type: t.Set[str]
    for directory in SYSCTL_DIRS:
        names = set()  # type: t.Set[str]
        try:
            real_dir = path_under(config_root, directory)
            if os.path.isdir(real_dir):
                # Merged /usr: /lib/sysctl.d is /usr/lib/sysctl.d; reading it twice would only
                # report every vendor file as shadowed by itself.
                if os.path.realpath(real_dir) in seen_dirs:
                    continue
                seen_dirs.add(os.path.realpath(real_dir))
                names.update(os.listdir(real_dir))
        except ProcFileError as exc:
            boot.warnings.append("%s not read: %s" % (directory, exc))
        except OSError as exc:
            boot.warnings.append("%s not read: %s" % (directory, exc.strerror or exc))
        for path, text in overlay.items():
            if os.path.dirname(path) == directory and text is not None:
                names.add(os.path.basename(path))
        for name in sorted(names):
            if len(name) < 5 or not name.endswith(".conf"):
                continue
            path = directory + "/" + name
            full = os.path.join(config_root, path.lstrip("/"))
            if path not in overlay and os.path.isdir(full) and not os.path.islink(full):
                continue
            if path in overlay and overlay[path] is None:
                continue
            if name in chosen:
                boot.shadowed.append({"path": path, "by": chosen[name].path})
                continue
            conf = ConfigFile(name, path)
            _load(config_root, conf, overlay)
            chosen[name] = conf
            if conf.masked:
                boot.masked.append(path)
            if conf.error:
                boot.warnings.append("%s not read: %s" % (path, conf.error))
    ordered = [chosen[name] for name in sorted(chosen)]
    boot.order["systemd"] = [c for c in ordered if not c.hidden]
    boot.order["procps"] = list(ordered)
    full_conf = os.path.join(config_root, SYSCTL_CONF.lstrip("/"))
    if SYSCTL_CONF in overlay or os.path.isfile(full_conf):
        conf = ConfigFile(os.path.basename(SYSCTL_CONF), SYSCTL_CONF)
        _load(config_root, conf, overlay)
        if conf.error:
            boot.warnings.append("%s not read: %s" % (SYSCTL_CONF, conf.error))
        boot.order["procps"].append(conf)
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


def _glob_matches(pattern: str, key: str) -> bool:
    # glob(3) on /proc/sys paths: wildcards never cross a "/" (a name component).
    pattern_parts = key_path(pattern).split("/")
    key_parts = key_path(key).split("/")
    return len(pattern_parts) == len(key_parts) and all(
        fnmatch.fnmatchcase(k, p) for p, k in zip(pattern_parts, key_parts))


def winner(files: t.Sequence[ConfigFile], key: str) -> t.Optional[t.Dict[str, t.Any]]:
    """The assignment of ``key`` an applier leaves in effect after reading ``files``, or None."""
    explicit = None
    from_glob = None
    excluded = False
    for conf in files:
        if conf.masked:
            continue
        for assignment in conf.assignments:
            if assignment.glob:
                if not assignment.exclude and _glob_matches(assignment.key, key):
                    from_glob = (conf, assignment)
            elif assignment.key == key:
                if assignment.exclude:
                    excluded = True
                else:
                    explicit = (conf, assignment)
    chosen = explicit or (None if excluded else from_glob)
    if chosen is None:
        return None
    conf, assignment = chosen
    return {"file": conf.path, "line": assignment.line_number, "value": assignment.value,
            "glob": assignment.glob}


def assignments_of(files: t.Sequence[ConfigFile], key: str) -> t.List[t.Dict[str, t.Any]]:
    """Every assignment that names ``key`` (explicitly or by glob), in application order."""
    found = []
    for conf in files:
        if conf.masked:
            continue
        for assignment in conf.assignments:
            if assignment.exclude:
                continue
            if (assignment.glob and _glob_matches(assignment.key, key)) or assignment.key == key:
                found.append({"file": conf.path, "line": assignment.line_number, "value": assignment.value,
                              "glob": assignment.glob})
    return found


def analyse(boot: BootConfig, keys: t.Iterable[str]) -> t.Dict[str, t.Dict[str, t.Any]]:
    """Per key: the winning file, line and value under systemd-sysctl (top level) and procps."""
    result = {}
    for key in keys:
        systemd = winner(boot.order["systemd"], key)
        procps = winner(boot.order["procps"], key)
        entry = dict(systemd or {"file": None, "line": None, "value": None, "glob": False})
        entry["procps"] = procps or {"file": None, "line": None, "value": None, "glob": False}
        entry["assignments"] = assignments_of(boot.order["procps"], key)
        result[key] = entry
    return result


def values_equal(left: t.Optional[str], right: t.Optional[str]) -> bool:
    """Sysctl values compare by whitespace-separated fields, numerically where both are integers."""
    if left is None or right is None:
        return left is right
    a, b = left.split(), right.split()
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        if x == y:
            continue
        try:
            if int(x, 10) != int(y, 10):
                return False
        except ValueError:
            return False
    return True


def overrides(precedence: t.Mapping[str, t.Mapping[str, t.Any]], own_path: str,
              wanted: t.Mapping[str, str]) -> t.Tuple[t.List[str], t.List[str]]:
    """Messages for keys that another file wins at boot: (different value, same value).

    A later file with a different value defeats the baseline. One with the same value does no harm
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
