# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What ``vm_sysctl`` does, as plain functions: check, plan, write the running kernel, read back,
roll back, persist the drop-in, and describe the change.

Private to the collection. The module is a shell around :func:`run`. The order of effects is the
module's contract:

1. everything that can refuse the run is checked before anything is written: the options, the
   values (``validation``), what wins at boot (``precedence``), and whether the running kernel and
   the drop-in's directory can be written at all (a read-only /proc/sys fails here, not half-way);
2. the running values are written one by one and each is read back; the first write the kernel
   rejects or changes stops the run, the values this run wrote are put back, the file is untouched;
3. the drop-in is replaced atomically; if that fails (or raises anything, including the
   SystemExit of ``AnsibleModule.fail_json`` inside ``atomic_move``), the running values are put
   back too, so the kernel never keeps a value the file does not have.
"""


import os
import stat
import tempfile
import typing as t

from ansible_collections.memfrag.linux.plugins.module_utils._procfs.files import ProcFileError, path_under
from ansible_collections.memfrag.linux.plugins.module_utils._procfs.meminfo import mem_total_bytes
from ansible_collections.memfrag.linux.plugins.module_utils._procfs.release import parse_release, read_release
from ansible_collections.memfrag.linux.plugins.module_utils._sysctl.dropin import is_managed, key_path, plan_dropin
from ansible_collections.memfrag.linux.plugins.module_utils._sysctl.precedence import (
    SYSCTL_DIRS, analyse, collect, overrides, shadow_of, values_equal)
from ansible_collections.memfrag.linux.plugins.module_utils._sysctl.runtime import (
    has_sysctl, read_value, write_problem, write_sysctl)
from ansible_collections.memfrag.linux.plugins.module_utils._sysctl.validation import TRIGGERS, decide, normalize_key, validate
from ansible_collections.memfrag.linux.plugins.module_utils._units import KIB

FILE_MODE = 0o644
# Larger than any sysctl drop-in; a bigger file is refused rather than read whole.
DROPIN_MAX_BYTES = 1024 * 1024

Writer = t.Callable[[str, str], t.Optional[str]]
Reader = t.Callable[[str], str]


class SysctlFailure(Exception):
    """The run stops: ``msg`` for fail_json, ``result`` the return values known so far."""

    def __init__(self, msg: str, result: t.Optional[t.Mapping[str, t.Any]] = None, **extra: t.Any) -> None:
        super(SysctlFailure, self).__init__(msg)
        self.msg = msg
        self.result = dict(result or {})
        self.result.update(extra)
        self.warnings = []  # type: t.List[str]


# ---- the drop-in file ---------------------------------------------------------------------------

def check_file_option(path: str) -> str:
    """The normalized ``file`` option; SysctlFailure unless both boot-time appliers read it."""
    norm = os.path.normpath(path)
    if not os.path.isabs(path) or norm != path.rstrip("/"):
        raise SysctlFailure("file %s must be an absolute, normalized path" % path)
    directory, name = os.path.split(norm)
    if any(ord(char) < 32 or ord(char) == 127 for char in name):
        # Both appliers would read it, but a newline or escape in a name garbles every log and listing that shows it.
        raise SysctlFailure("file %r has a control character in its name" % path)
    if directory not in SYSCTL_DIRS or not name.endswith(".conf") or name.startswith(".") or len(name) < 6:
        raise SysctlFailure("file %s is not a visible *.conf file directly in one of %s; systemd-sysctl "
                            "and sysctl --system would not both apply it at boot" % (path, ", ".join(SYSCTL_DIRS)))
    return norm


def canonical_file(config_root: str, file_path: str) -> str:
    """``file_path`` named the way the precedence model reads its directory.

    On merged-/usr hosts /lib/sysctl.d is /usr/lib/sysctl.d: the first of SYSCTL_DIRS that resolves
    to the same directory is the name systemd-sysctl and procps list the file under.
    """
    real_dir = os.path.realpath(os.path.join(config_root, os.path.dirname(file_path).lstrip("/")))
    for candidate in SYSCTL_DIRS:
        if os.path.realpath(os.path.join(config_root, candidate.lstrip("/"))) == real_dir:
            return candidate + "/" + os.path.basename(file_path)
    return file_path


def dropin_location(config_root: str, file_path: str) -> t.Tuple[str, str]:
    """``(directory, dest)``: where the drop-in lives under ``config_root``, after the symlink checks."""
    try:
        directory = path_under(config_root, os.path.dirname(file_path))
    except ProcFileError as exc:
        raise SysctlFailure("refusing to write the drop-in: %s" % exc)
    # The directory is inside the root; the file itself is never followed (links are refused here).
    dest = os.path.join(directory, os.path.basename(file_path))
    if os.path.islink(dest):
        target = os.readlink(dest)
        if target == "/dev/null":
            raise SysctlFailure("%s is a symlink to /dev/null: an administrator masked this name. Remove the mask "
                                "or choose another file; vm_sysctl does not replace it" % file_path)
        raise SysctlFailure("%s is a symlink (to %s), so the content is managed elsewhere; vm_sysctl writes only a "
                            "regular file it owns. Remove the link or choose another file" % (file_path, target))
    if os.path.exists(dest) and not os.path.isfile(dest):
        raise SysctlFailure("%s exists and is not a regular file" % file_path)
    return directory, dest


def read_dropin(dest: str) -> t.Tuple[t.Optional[str], t.Optional[int]]:
    """``(text, mode)`` of the drop-in, ``(None, None)`` when it does not exist."""
    if not os.path.exists(dest):
        return None, None
    try:
        with open(dest, "rb") as handle:
            data = handle.read(DROPIN_MAX_BYTES + 1)
        mode = stat.S_IMODE(os.stat(dest).st_mode)
    except (IOError, OSError) as exc:
        raise SysctlFailure("cannot read %s: %s" % (dest, exc))
    if len(data) > DROPIN_MAX_BYTES:
        raise SysctlFailure("%s is larger than 1 MiB; not a sysctl drop-in" % dest)
    return data.decode("utf-8", "replace"), mode


def directory_problem(directory: str) -> t.Optional[str]:
    """Why the drop-in cannot be written into ``directory`` (or the parent that would hold it), or None."""
    existing = directory
    while not os.path.isdir(existing):
        parent = os.path.dirname(existing)
        if parent == existing:
            break
        existing = parent
    if os.access(existing, os.W_OK | os.X_OK):
        return None
    try:
        read_only = bool(os.statvfs(existing).f_flag & os.ST_RDONLY)
    except OSError:
        read_only = False
    return "%s is %s" % (existing, "on a read-only file system" if read_only else "not writable by this user")


def write_dropin(directory: str, dest: str, text: t.Optional[str], replace: t.Callable[[str, str], t.Any]) -> None:
    """Atomic replace of the drop-in with mode 0644 (``replace`` renames, as AnsibleModule.atomic_move);
    removes it when ``text`` is None. Raises OSError/IOError."""
    if text is None:
        os.unlink(dest)
        return
    if not os.path.isdir(directory):
        os.makedirs(directory, 0o755)
    fd, tmp = tempfile.mkstemp(prefix=".memfrag-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(text.encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, FILE_MODE)
        replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    # atomic_move copies the old file's mode onto the new one; the managed mode is 0644.
    os.chmod(dest, FILE_MODE)


# ---- the running kernel -------------------------------------------------------------------------

def kernel_writer(proc_root: str) -> Writer:
    """``write(key, value)`` for dotted keys under ``proc_root`` (None on success, else why not)."""
    return lambda key, value: write_sysctl(proc_root, key_path(key), value)


def kernel_reader(proc_root: str) -> Reader:
    """``read(key)`` for dotted keys under ``proc_root`` (whitespace collapsed; ProcFileError)."""
    return lambda key: read_value(proc_root, key_path(key))


def plan_writes(wanted: t.Mapping[str, str], before: t.Mapping[str, t.Optional[str]]) -> t.Dict[str, str]:
    """The settings whose running value differs (``values_equal`` compares numbers and lists as the kernel does)."""
    return dict((key, value) for key, value in wanted.items() if not values_equal(before.get(key), value))


def write_and_verify(to_write: t.Mapping[str, str], write: Writer,
                     read: Reader) -> t.Tuple[t.Dict[str, str], t.List[str], t.Optional[str]]:
    """Write each value (sorted by key), read it back; stop at the first problem.

    Returns ``(after, written, failure)``: the values read back, the keys written (also the one
    whose read-back failed or differed: the kernel took a write there), and why it stopped, or None.
    Nothing is rolled back here; :func:`restore` does that.
    """
    after = {}  # type: t.Dict[str, str]
    written = []  # type: t.List[str]
    for key in sorted(to_write):
        error = write(key, to_write[key])
        if error is not None:
            return after, written, "%s = %s: %s; nothing was persisted" % (key, to_write[key], error)
        written.append(key)
        try:
            after[key] = read(key)
        except ProcFileError as exc:
            return after, written, "%s written but not readable back: %s" % (key, exc)
        if not values_equal(after[key], to_write[key]):
            return after, written, ("%s: wrote %s but the kernel kept %s (clamped or ignored); nothing was persisted"
                                    % (key, to_write[key], after[key]))
    return after, written, None


def restore(written: t.Sequence[str], before: t.Mapping[str, str], write: Writer) -> t.List[str]:
    """Put the keys written back to their earlier values, last written first; the problems, if any."""
    problems = []  # type: t.List[str]
    for key in reversed(list(written)):
        error = write(key, before[key])
        if error is not None:
            problems.append("%s back to %s: %s" % (key, before[key], error))
    return problems


def apply_settings(to_write: t.Mapping[str, str], before: t.Mapping[str, str], write: Writer, read: Reader,
                   persist: t.Optional[t.Callable[[], None]] = None) -> t.Tuple[t.Dict[str, str], t.Optional[str]]:
    """Write and verify the running values, then ``persist()``; all of it or none of it.

    Returns ``(after, failure)``. On a failure the values this call wrote are restored and
    ``failure`` says what happened, including the restore. If ``persist`` raises OSError/IOError
    that is a failure like any other; anything else it raises (SystemExit from fail_json) is
    re-raised after the restore.
    """
    after, written, failure = write_and_verify(to_write, write, read)
    if failure is None and persist is not None:
        try:
            persist()
        except (IOError, OSError) as exc:
            failure = "writing the drop-in failed: %s" % exc
        except BaseException:
            restore(written, before, write)
            raise
    if failure is None:
        return after, None
    problems = restore(written, before, write)
    if problems:
        failure += "; restoring the earlier running values failed: " + "; ".join(problems)
    elif written:
        failure += "; running values restored (%s)" % ", ".join(written)
    return dict(before), failure


# ---- the whole run ------------------------------------------------------------------------------

def _runtime_text(values: t.Mapping[str, str]) -> str:
    return "".join("%s = %s\n" % (key, values[key]) for key in sorted(values))


def dropin_changes(existing: t.Optional[str], new_text: t.Optional[str], old_mode: t.Optional[int]) -> bool:
    """Whether the drop-in's content, existence or mode changes."""
    return new_text != existing or (new_text is not None and old_mode != FILE_MODE)


def diffs(dest: str, existing: t.Optional[str], new_text: t.Optional[str], old_mode: t.Optional[int],
          before: t.Mapping[str, str], to_write: t.Mapping[str, str], proc_root: str) -> t.List[t.Dict[str, str]]:
    """The ``diff`` entries: the drop-in, its mode, and the running values that change."""
    result = []  # type: t.List[t.Dict[str, str]]
    if dropin_changes(existing, new_text, old_mode):
        result.append(dict(before_header=dest if existing is not None else "%s (absent)" % dest,
                           after_header=dest if new_text is not None else "%s (removed)" % dest,
                           before=existing or "", after=new_text or ""))
        if old_mode is not None and old_mode != FILE_MODE and new_text is not None:
            result.append(dict(before_header="%s mode" % dest, after_header="%s mode" % dest,
                               before="%04o\n" % old_mode, after="%04o\n" % FILE_MODE))
    if to_write:
        header = "running kernel (%s/sys/vm)" % proc_root.rstrip("/")
        result.append(dict(before_header=header, after_header=header,
                           before=_runtime_text(dict((k, before[k]) for k in to_write)),
                           after=_runtime_text(to_write)))
    return result


def _wanted(params: t.Mapping[str, t.Any], kernel: t.Optional[t.Tuple[int, int, int]],
            result: t.Dict[str, t.Any], warnings: t.List[str]) -> t.Dict[str, str]:
    """The settings to manage (key -> value; value '' for state=absent), after validation."""
    proc_root = params["proc_root"]
    if params["state"] == "absent":
        wanted = {}  # type: t.Dict[str, str]
        for name in params["settings"]:
            key, problem = normalize_key(name)
            if key is None:
                raise SysctlFailure(problem or "invalid key", result)
            wanted[key] = ""
        return wanted
    mem_total, why = mem_total_bytes(proc_root)
    if why:
        warnings.append("MemTotal unknown: %s" % why)
    checked = validate(params["settings"], kernel, None if mem_total is None else mem_total // KIB, lambda key: has_sysctl(proc_root, key_path(key)))
    refusals, notes = decide(checked, params["force"], params["skip_missing"])
    warnings.extend(notes)
    if refusals:
        raise SysctlFailure("refused, nothing was changed: " + "; ".join(refusals), result, refused=refusals)
    result["skipped_keys"] = sorted(checked.missing)
    result["settings"] = dict(checked.values)
    return dict(checked.values)


def _boot_check(params: t.Mapping[str, t.Any], file_path: str, new_text: t.Optional[str],
                wanted: t.Mapping[str, str], result: t.Dict[str, t.Any], warnings: t.List[str]) -> None:
    """Fill ``precedence`` (or ``boot`` for state=absent) and ``overrides``; refuse a run another file would undo."""
    boot = collect(params["config_root"], {file_path: new_text})
    warnings.extend(boot.warnings)
    winners = analyse(boot, sorted(wanted))
    if params["state"] == "absent":
        result["boot"] = winners
        return
    result["precedence"] = winners
    conflicting, redundant = overrides(winners, file_path, wanted)
    reason = shadow_of(boot, file_path)
    if reason and wanted:
        conflicting.insert(0, reason + ", so none of its assignments apply at boot")
    warnings.extend(redundant)
    result["overrides"] = conflicting
    if conflicting:
        if params["on_override"] == "fail":
            raise SysctlFailure("another sysctl file wins at boot, nothing was changed: " + "; ".join(conflicting)
                                + " (on_override: warn proceeds anyway)", result)
        warnings.extend(conflicting)


class Outcome(object):
    """A finished run: ``result`` for exit_json and the ``warnings`` to show."""

    def __init__(self, result: t.Dict[str, t.Any], warnings: t.List[str]) -> None:
        self.result = result
        self.warnings = warnings


def run(params: t.Mapping[str, t.Any], check_mode: bool, want_diff: bool,
        replace: t.Callable[[str, str], t.Any]) -> Outcome:
    """One vm_sysctl run over the module's ``params``; raises SysctlFailure (with its warnings).

    ``replace(src, dest)`` renames the finished temporary drop-in over the old one
    (``AnsibleModule.atomic_move`` in the module, ``os.replace`` in tests).
    """
    warnings = []  # type: t.List[str]
    try:
        return _run(params, check_mode, want_diff, replace, warnings)
    except SysctlFailure as exc:
        exc.warnings = warnings
        raise


def _run(params: t.Mapping[str, t.Any], check_mode: bool, want_diff: bool, replace: t.Callable[[str, str], t.Any],
         warnings: t.List[str]) -> Outcome:
    config_root, proc_root, state = params["config_root"], params["proc_root"], params["state"]
    for option in ("config_root", "proc_root"):
        if not os.path.isdir(params[option]):
            raise SysctlFailure("%s %s is not a directory" % (option, params[option]))
    file_path = canonical_file(config_root, check_file_option(params["file"]))
    directory, dest = dropin_location(config_root, file_path)

    release = read_release(proc_root)
    if release is None:
        warnings.append("kernel version unknown (no readable %s/sys/kernel/osrelease); using the ranges of current "
                        "kernels" % proc_root.rstrip("/"))
    result = dict(changed=False, file=dest, file_changed=False, runtime_changed=False, settings={}, persisted={},
                  runtime={}, precedence={}, overrides=[], skipped_keys=[], kernel=release)  # type: t.Dict[str, t.Any]
    wanted = _wanted(params, parse_release(release), result, warnings)

    existing, old_mode = read_dropin(dest)
    if existing is not None and not is_managed(existing):
        warnings.append("%s was not written by vm_sysctl; its assignments are kept but its comments are replaced by "
                        "the managed header" % file_path)
    new_text, persisted, notes = plan_dropin(existing, wanted, state, never_persist=TRIGGERS)
    warnings.extend("%s: %s" % (file_path, note) for note in notes)
    result["persisted"] = persisted
    file_changed = dropin_changes(existing, new_text, old_mode)
    result["file_changed"] = file_changed
    _boot_check(params, file_path, new_text, wanted, result, warnings)

    # Read every running value first, so that a failure can be rolled back exactly.
    before = {}  # type: t.Dict[str, str]
    read = kernel_reader(proc_root)
    for key in sorted(wanted):
        try:
            before[key] = read(key)
        except ProcFileError as exc:
            if state == "present":
                raise SysctlFailure("cannot read the running value: %s" % exc, result)
    to_write = plan_writes(wanted, before) if state == "present" and params["apply"] else {}
    unchanged = dict((k, {"before": before.get(k), "after": before.get(k)}) for k in sorted(wanted))

    # Anything that would stop the run half-way is asked before the first write.
    problems = [p for p in (write_problem(proc_root, key_path(key)) for key in sorted(to_write)) if p]
    if file_changed:
        problem = directory_problem(directory)
        if problem:
            problems.append("cannot write %s: %s" % (dest, problem))
    if problems:
        result["runtime"] = unchanged
        raise SysctlFailure("nothing was changed: " + "; ".join(sorted(set(problems))), result)

    after = dict(before)
    after.update(to_write)
    if not check_mode:
        persist = (lambda: write_dropin(directory, dest, new_text, replace)) if file_changed else None
        read_back, failure = apply_settings(to_write, before, kernel_writer(proc_root), read, persist)
        if failure is not None:
            result["runtime"] = unchanged
            raise SysctlFailure(failure, result)
        after.update(read_back)

    result["runtime"] = dict((k, {"before": before.get(k), "after": after.get(k)}) for k in sorted(wanted))
    result["runtime_changed"] = bool(to_write)
    result["changed"] = bool(file_changed or to_write)
    if want_diff:
        result["diff"] = diffs(dest, existing, new_text, old_mode, before, to_write, proc_root)
    return Outcome(result, warnings)
