#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)


DOCUMENTATION = r"""
module: vm_sysctl
short_description: Set vm.* tunables at runtime and persist them in one precedence-checked sysctl.d drop-in
version_added: 0.1.0
author: memfrag.linux contributors (@memfrag)
description:
  - Persists C(vm.*) kernel tunables such as C(vm.min_free_kbytes) and C(vm.vfs_cache_pressure) in
    a single drop-in file (default C(/etc/sysctl.d/60-memfrag.conf)) and sets them in the running
    kernel by writing C(/proc/sys/vm) directly, then reads each value back.
  - "Validates before anything is written: values must be inside the range the running kernel
    accepts (by kernel version); C(vm.min_free_kbytes) above 5% of C(MemTotal) or below 128 kB and
    C(vm.vfs_cache_pressure=0) are refused unless O(force=true); the one-shot triggers
    C(vm.drop_caches) and C(vm.compact_memory) are always refused (use M(memfrag.linux.drop_caches)
    and M(memfrag.linux.compact_memory)); keys the kernel does not have fail, or are skipped with a
    warning when O(skip_missing=true)."
  - "Models what systemd-sysctl and C(sysctl --system) apply at boot: C(*.conf) files from
    C(/etc/sysctl.d), C(/run/sysctl.d), C(/usr/local/lib/sysctl.d), C(/usr/lib/sysctl.d) and
    C(/lib/sysctl.d) (a name in a higher directory shadows the same name in lower ones; a link to
    C(/dev/null), an empty file, a dangling link or a directory of that name masks it), applied in
    byte order of the file names whatever their directory, later assignments winning, globs never
    beating an explicit key. Where the two differ the result says so per applier: procps also reads
    hidden files, glob-expands file names and applies C(/etc/sysctl.conf) last; a later C(-key) line
    makes systemd-sysctl drop the key entirely; key spellings (C(vm//x), a trailing C(.)) and line
    ends (a lone carriage return, NUL) are read differently. The model is proven against the real
    programs (systemd 252, procps-ng 4.0.2) by the collection's test suite."
  - "Symlinks under O(config_root) are followed as the booted image would, with O(config_root) as
    C(/) (an absolute link such as C(99-sysctl.conf -> /etc/sysctl.conf) stays inside it)."
  - "If any other file would win a managed key at boot under either applier, or a later C(-key) line
    excludes it, the module fails before writing anything, naming that file, line and value (or
    only warns with O(on_override=warn)). An exclusion line of a managed key inside the drop-in
    itself is removed, with a warning."
  - "Order of effects: validation and the precedence check, then the runtime writes, then the file.
    If the kernel rejects a value, or keeps a different one (a clamp, or a kernel that silently
    ignores out-of-range writes), the values already written in this run are restored and the file
    is not touched, so nothing is persisted that the kernel did not take."
  - The drop-in is written atomically (temporary file in the same directory, then rename) with mode
    C(0644) and a header saying it is managed. Other assignments already in it stay, so several
    tasks can share it; one-shot triggers found in it are removed. When O(state=absent) leaves no
    assignment, the file is deleted.
  - "Symlinks: the drop-in itself must not be a symlink. A link to C(/dev/null) means an
    administrator masked that name, and a link elsewhere means the file is managed somewhere else;
    replacing either with a regular file would silently undo that decision, so the module fails
    and says which it is. Paths under O(config_root) and O(proc_root) that resolve outside them are
    never followed."
options:
  settings:
    description:
      - "Mapping of sysctl name to value, for example C({vm.min_free_kbytes: 1048576, vm.vfs_cache_pressure: 200})."
      - Names may use C(.) or C(/) as separator (C(vm/swappiness)); only keys directly under
        C(/proc/sys/vm) are accepted.
      - Values are integers, strings of integers, or lists of integers for multi-value tunables
        (C(vm.lowmem_reserve_ratio)). Booleans are refused because YAML turns C(on) and C(yes) into them.
      - With O(state=absent) only the names matter.
    type: dict
    required: true
  state:
    description:
      - C(present) persists and (with O(apply)) sets the values.
      - C(absent) removes the keys from the drop-in. The running kernel keeps its current values;
        RV(boot) says what will apply at the next boot instead.
    type: str
    choices: [present, absent]
    default: present
  file:
    description:
      - The drop-in, as a path on the target (inside O(config_root)).
      - Must be a C(.conf) file directly in one of the directories systemd-sysctl and
        C(sysctl --system) read; files elsewhere, and C(/etc/sysctl.conf), are refused because
        they are either never applied at boot or applied by only one of the two.
      - The name decides its place in the lexical order; a name sorting late (for example
        C(60-) is later than the usual C(50-) vendor files) lets the baseline win.
    type: path
    default: /etc/sysctl.d/60-memfrag.conf
  apply:
    description:
      - Also set the values in the running kernel through C(/proc/sys), and read them back.
      - When false, only the file changes; RV(runtime) still shows the current values.
    type: bool
    default: true
  config_root:
    description:
      - Directory that stands for C(/) when looking up C(/etc/sysctl.d), C(/run/sysctl.d),
        C(/usr/lib/sysctl.d) and the others, and where O(file) is written.
      - Point it at an image tree or a test tree; paths resolving outside it are refused.
    type: path
    default: /
  force:
    description:
      - Apply values refused by the safety policy, which are C(vm.min_free_kbytes) above 5% of
        C(MemTotal) or below 128 kB, and C(vm.vfs_cache_pressure=0).
      - Never lifts kernel ranges or the refusal of C(vm.drop_caches) and C(vm.compact_memory).
    type: bool
    default: false
  skip_missing:
    description:
      - Keys the running kernel does not have (for example C(vm.compaction_proactiveness) before
        5.9) are skipped with a warning instead of failing. Skipped keys are neither set nor persisted.
    type: bool
    default: false
  on_override:
    description:
      - What to do when another sysctl file would set a managed key to a different value at boot
        (it sorts later, lives in C(/etc/sysctl.conf), or shadows or masks the drop-in), or a later
        C(-key) line makes systemd-sysctl skip the key.
      - C(fail) stops before anything is written; C(warn) proceeds and returns warnings.
      - A later file that sets the same value gives a warning either way.
    type: str
    choices: [fail, warn]
    default: fail
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - memfrag.linux.proc_root
attributes:
  check_mode:
    support: full
    details: Nothing is written; RV(runtime) and the diff show what would change.
  diff_mode:
    support: full
    details: Shows the drop-in before and after, and the running values before and after.
  platform:
    support: full
    platforms: posix
    details: Linux only (C(/proc/sys)).
notes:
  - The running values of keys removed with O(state=absent) are not reset; the kernel has no
    "default" to go back to for computed tunables such as C(vm.min_free_kbytes). Reboot, or set the
    value explicitly.
  - The kernel may raise C(vm.min_free_kbytes) by itself later (memory hotplug, khugepaged); a
    user value is kept only if it is larger than what the kernel computes.
seealso:
  - module: memfrag.linux.drop_caches
  - module: memfrag.linux.compact_memory
  - name: sysctl.d(5)
    description: Configuration directories and precedence used by systemd-sysctl.
    link: https://www.freedesktop.org/software/systemd/man/latest/sysctl.d.html
"""

EXAMPLES = r"""
- name: Reserve more free memory and reclaim dentries/inodes harder
  memfrag.linux.vm_sysctl:
    settings:
      vm.min_free_kbytes: 262144
      vm.vfs_cache_pressure: 200

- name: Preview in an image tree without touching the running kernel
  memfrag.linux.vm_sysctl:
    settings:
      vm.watermark_scale_factor: 100
    config_root: /srv/images/web01
    apply: false
  check_mode: true
  diff: true

- name: Set compaction_proactiveness where the kernel has it, warn elsewhere
  memfrag.linux.vm_sysctl:
    settings:
      vm.compaction_proactiveness: 30
    skip_missing: true

- name: Keep going when a vendor file wins, but show it
  memfrag.linux.vm_sysctl:
    settings:
      vm.swappiness: 10
    on_override: warn

- name: Stop managing a key
  memfrag.linux.vm_sysctl:
    settings:
      vm.vfs_cache_pressure:
    state: absent
"""

RETURN = r"""
file:
  description: The drop-in path on the target, including O(config_root).
  returned: always
  type: str
  sample: /etc/sysctl.d/60-memfrag.conf
file_changed:
  description: Whether the drop-in content, mode or existence changed (or would in check mode).
  returned: always
  type: bool
runtime_changed:
  description: Whether a running value was changed (or would be in check mode).
  returned: always
  type: bool
settings:
  description: The managed keys with their normalized values (dotted names, whitespace collapsed).
  returned: always
  type: dict
  sample: {"vm.min_free_kbytes": "262144"}
persisted:
  description: Every assignment in the drop-in after this run (key to value).
  returned: always
  type: dict
  sample: {"vm.min_free_kbytes": "262144", "vm.vfs_cache_pressure": "200"}
runtime:
  description:
    - Per managed key, the running value before and after. C(after) is read back from the kernel,
      or is the planned value in check mode. With O(apply=false) both are the current value.
  returned: always
  type: dict
  sample: {"vm.min_free_kbytes": {"before": "67584", "after": "262144"}}
precedence:
  description:
    - Per managed key, which file wins at boot once this run is done. Top level is systemd-sysctl;
      C(procps) is C(sysctl --system), which also applies C(/etc/sysctl.conf) last.
    - C(file) is null when no file sets the key; C(line) counts newline-separated lines. C(value) is
      the text the applier writes. C(excluded_by) (systemd-sysctl only) names the C(-key) line that
      keeps it from writing the key at all, else null. C(assignments) lists every line naming the
      key (explicitly or by glob) in the order that applier reads them.
  returned: always
  type: dict
  sample:
    vm.min_free_kbytes:
      file: /etc/sysctl.d/60-memfrag.conf
      line: 4
      value: "262144"
      glob: false
      excluded_by: null
      assignments:
        - {file: /etc/sysctl.d/60-memfrag.conf, line: 4, value: "262144", glob: false}
      procps:
        file: /etc/sysctl.d/60-memfrag.conf
        line: 4
        value: "262144"
        glob: false
        assignments:
          - {file: /etc/sysctl.d/60-memfrag.conf, line: 4, value: "262144", glob: false}
boot:
  description: With O(state=absent), what each removed key gets at the next boot (same shape as RV(precedence)).
  returned: when state is absent
  type: dict
overrides:
  description: Messages naming each file that wins a managed key at boot with a different value, and each later C(-key) line that makes systemd-sysctl skip one.
  returned: always
  type: list
  elements: str
skipped_keys:
  description: Keys left out because the kernel does not have them (O(skip_missing=true)).
  returned: always
  type: list
  elements: str
kernel:
  description: The running kernel release used to choose ranges (C(/proc/sys/kernel/osrelease)), or null.
  returned: always
  type: str
  sample: 6.18.44
"""

import os
import stat
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native

from ansible_collections.memfrag.linux.plugins.module_utils._procfs.meminfo import mem_total_bytes
from ansible_collections.memfrag.linux.plugins.module_utils._procfs.release import parse_release, read_release
from ansible_collections.memfrag.linux.plugins.module_utils._units import KIB
from ansible_collections.memfrag.linux.plugins.module_utils._procfs.files import ProcFileError, path_under
from ansible_collections.memfrag.linux.plugins.module_utils._sysctl.dropin import is_managed, plan_dropin
from ansible_collections.memfrag.linux.plugins.module_utils._sysctl.precedence import (
    SYSCTL_DIRS, analyse, collect, overrides, shadow_of, values_equal)
from ansible_collections.memfrag.linux.plugins.module_utils._sysctl.validation import (
    TRIGGERS, normalize_key, read_runtime, runtime_has, validate,
    write_runtime)

FILE_MODE = 0o644


def _check_file_option(module, path):
    norm = os.path.normpath(path)
    if not os.path.isabs(path) or norm != path.rstrip("/"):
        module.fail_json(msg="file %s must be an absolute, normalized path" % path)
    directory, name = os.path.split(norm)
    if directory not in SYSCTL_DIRS or not name.endswith(".conf") or name.startswith(".") or len(name) < 6:
        module.fail_json(msg="file %s is not a visible *.conf file directly in one of %s; systemd-sysctl "
                             "and sysctl --system would not both apply it at boot" % (path, ", ".join(SYSCTL_DIRS)))
    return norm


def _dropin_location(module, config_root, file_path):
    """Absolute path of the drop-in under config_root, after the symlink checks."""
    try:
        directory = path_under(config_root, os.path.dirname(file_path))
    except ProcFileError as exc:
        module.fail_json(msg="refusing to write the drop-in: %s" % exc)
    # The directory is inside the root; the file itself is never followed (links are refused below).
    dest = os.path.join(directory, os.path.basename(file_path))
    if os.path.islink(dest):
        target = os.readlink(dest)
        if target == "/dev/null":
            module.fail_json(msg="%s is a symlink to /dev/null: an administrator masked this name. Remove the mask "
                                 "or choose another file; vm_sysctl does not replace it" % file_path)
        module.fail_json(msg="%s is a symlink (to %s), so the content is managed elsewhere; vm_sysctl writes only a "
                             "regular file it owns. Remove the link or choose another file" % (file_path, target))
    if os.path.exists(dest) and not os.path.isfile(dest):
        module.fail_json(msg="%s exists and is not a regular file" % file_path)
    return directory, dest


def _read_existing(module, dest):
    if not os.path.exists(dest):
        return None, None
    try:
        with open(dest, "rb") as handle:
            data = handle.read(1024 * 1024 + 1)
        mode = stat.S_IMODE(os.stat(dest).st_mode)
    except (IOError, OSError) as exc:
        module.fail_json(msg="cannot read %s: %s" % (dest, to_native(exc)))
    if len(data) > 1024 * 1024:
        module.fail_json(msg="%s is larger than 1 MiB; not a sysctl drop-in" % dest)
    return data.decode("utf-8", "replace"), mode


def _write_dropin(module, directory, dest, text):
    """Atomic replace of the drop-in with mode 0644; removes it when text is None."""
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
        module.atomic_move(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    # atomic_move copies the old file's mode onto the new one; the managed mode is 0644.
    os.chmod(dest, FILE_MODE)


def _runtime_text(values):
    return "".join("%s = %s\n" % (key, values[key]) for key in sorted(values))


def main():
    module = AnsibleModule(
        argument_spec=dict(
            settings=dict(type="dict", required=True),
            state=dict(type="str", default="present", choices=["present", "absent"]),
            file=dict(type="path", default="/etc/sysctl.d/60-memfrag.conf"),
            apply=dict(type="bool", default=True),
            config_root=dict(type="path", default="/"),
            proc_root=dict(type="path", default="/proc"),
            force=dict(type="bool", default=False),
            skip_missing=dict(type="bool", default=False),
            on_override=dict(type="str", default="fail", choices=["fail", "warn"]),
        ),
        supports_check_mode=True,
    )
    p = module.params
    config_root, proc_root, state = p["config_root"], p["proc_root"], p["state"]
    for option in ("config_root", "proc_root"):
        if not os.path.isdir(p[option]):
            module.fail_json(msg="%s %s is not a directory" % (option, p[option]))
    file_path = _check_file_option(module, p["file"])
    # On merged-/usr hosts /lib/sysctl.d is /usr/lib/sysctl.d: name the file the way the precedence
    # model reads that directory (the first of SYSCTL_DIRS that resolves to it).
    real_file_dir = os.path.realpath(os.path.join(config_root, os.path.dirname(file_path).lstrip("/")))
    for candidate in SYSCTL_DIRS:
        if os.path.realpath(os.path.join(config_root, candidate.lstrip("/"))) == real_file_dir:
            file_path = candidate + "/" + os.path.basename(file_path)
            break
    directory, dest = _dropin_location(module, config_root, file_path)

    release = read_release(proc_root)
    if release is None:
        module.warn("kernel version unknown (no readable %s/sys/kernel/osrelease); using the ranges of current kernels"
                    % proc_root)
    kernel = parse_release(release)

    result = dict(changed=False, file=dest, file_changed=False, runtime_changed=False, settings={}, persisted={},
                  runtime={}, precedence={}, overrides=[], skipped_keys=[], kernel=release)

    if state == "present":
        mem_total, why = mem_total_bytes(proc_root)
        meminfo = None if mem_total is None else mem_total // KIB
        if why:
            module.warn("MemTotal unknown: %s" % why)
        checked = validate(p["settings"], kernel, meminfo, lambda key: runtime_has(proc_root, key))
        refusals = list(checked.refused)
        if not p["force"]:
            refusals += ["%s (force: true applies it anyway)" % reason for reason in checked.forceable]
        else:
            for reason in checked.forceable:
                module.warn("forced: %s" % reason)
        if checked.missing and not p["skip_missing"]:
            refusals += ["%s (skip_missing: true skips it with a warning)" % r for r in checked.missing.values()]
        if refusals:
            module.fail_json(msg="refused, nothing was changed: " + "; ".join(refusals), refused=refusals, **result)
        for key in sorted(checked.missing):
            module.warn("skipped: %s" % checked.missing[key])
        result["skipped_keys"] = sorted(checked.missing)
        wanted = checked.values
    else:
        wanted = {}
        for name, _value in p["settings"].items():
            key, problem = normalize_key(name)
            if key is None:
                module.fail_json(msg=problem, **result)
            wanted[key] = ""
    result["settings"] = dict(wanted) if state == "present" else {}

    existing, old_mode = _read_existing(module, dest)
    if existing is not None and not is_managed(existing):
        module.warn("%s was not written by vm_sysctl; its assignments are kept but its comments are replaced by "
                    "the managed header" % file_path)
    new_text, persisted, notes = plan_dropin(existing, wanted, state, never_persist=TRIGGERS)
    for note in notes:
        module.warn("%s: %s" % (file_path, note))
    result["persisted"] = persisted
    file_changed = new_text != existing or (new_text is not None and old_mode != FILE_MODE)
    result["file_changed"] = file_changed

    boot = collect(config_root, {file_path: new_text})
    for warning in boot.warnings:
        module.warn(warning)
    result["precedence"] = analyse(boot, sorted(wanted))
    if state == "absent":
        result["boot"] = result.pop("precedence")
        result["precedence"] = {}
    else:
        conflicting, redundant = overrides(result["precedence"], file_path, wanted)
        reason = shadow_of(boot, file_path)
        if reason and wanted:
            conflicting.insert(0, reason + ", so none of its assignments apply at boot")
        for message in redundant:
            module.warn(message)
        result["overrides"] = conflicting
        if conflicting:
            if p["on_override"] == "fail":
                module.fail_json(msg="another sysctl file wins at boot, nothing was changed: " + "; ".join(conflicting)
                                 + " (on_override: warn proceeds anyway)", **result)
            for message in conflicting:
                module.warn(message)

    # Runtime: read everything first so a failure can be rolled back exactly.
    before = {}
    for key in sorted(wanted):
        try:
            before[key] = read_runtime(proc_root, key)
        except ProcFileError as exc:
            if state == "present":
                module.fail_json(msg="cannot read the running value: %s" % exc, **result)
    to_write = {}
    if state == "present" and p["apply"]:
        to_write = dict((k, v) for k, v in wanted.items() if not values_equal(before.get(k), v))
    after = dict(before)
    after.update(to_write)

    if not module.check_mode:
        written = []
        failure = None
        for key in sorted(to_write):
            error = write_runtime(proc_root, key, to_write[key])
            if error is None:
                written.append(key)
                try:
                    after[key] = read_runtime(proc_root, key)
                except ProcFileError as exc:
                    failure = "%s written but not readable back: %s" % (key, exc)
                    break
                if not values_equal(after[key], to_write[key]):
                    failure = ("%s: wrote %s but the kernel kept %s (clamped or ignored); nothing was persisted"
                               % (key, to_write[key], after[key]))
                    break
            else:
                failure = "%s = %s: %s; nothing was persisted" % (key, to_write[key], error)
                break
        if failure is None and file_changed:
            try:
                _write_dropin(module, directory, dest, new_text)
            except (IOError, OSError) as exc:
                failure = "writing %s failed: %s" % (dest, to_native(exc))
        if failure is not None:
            restore_errors = []
            for key in reversed(written):
                error = write_runtime(proc_root, key, before[key])
                if error is not None:
                    restore_errors.append("%s back to %s: %s" % (key, before[key], error))
            if restore_errors:
                failure += "; restoring the earlier running values failed: " + "; ".join(restore_errors)
            elif written:
                failure += "; running values restored (%s)" % ", ".join(written)
            result["runtime"] = dict((k, {"before": before.get(k), "after": before.get(k)}) for k in wanted)
            module.fail_json(msg=failure, **result)

    result["runtime"] = dict((k, {"before": before.get(k), "after": after.get(k)}) for k in sorted(wanted))
    result["runtime_changed"] = bool(to_write)
    result["changed"] = bool(file_changed or to_write)
    if module._diff:
        diffs = []
        if file_changed:
            diffs.append(dict(before_header=dest if existing is not None else "%s (absent)" % dest,
                              after_header=dest if new_text is not None else "%s (removed)" % dest,
                              before=existing or "", after=new_text or ""))
            if old_mode is not None and old_mode != FILE_MODE and new_text is not None:
                diffs.append(dict(before_header="%s mode" % dest, after_header="%s mode" % dest,
                                  before="%04o\n" % old_mode, after="%04o\n" % FILE_MODE))
        if to_write:
            diffs.append(dict(before_header="running kernel (%s/sys/vm)" % proc_root.rstrip("/"),
                              after_header="running kernel (%s/sys/vm)" % proc_root.rstrip("/"),
                              before=_runtime_text(dict((k, before[k]) for k in to_write)),
                              after=_runtime_text(to_write)))
        result["diff"] = diffs
    module.exit_json(**result)


if __name__ == "__main__":
    main()
