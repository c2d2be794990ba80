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
  - "Order of effects: validation, the precedence check and a check that the running kernel and the
    drop-in's directory can be written at all (a read-only C(/proc/sys), as in most containers, fails
    here with nothing changed), then the runtime writes, each read back, then the file.
    If the kernel rejects a value, or keeps a different one (a clamp, or a kernel that silently
    ignores out-of-range writes), the values already written in this run are restored and the file
    is not touched, so nothing is persisted that the kernel did not take. If writing the file fails,
    the running values are restored as well."
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
        they are either never applied at boot or applied by only one of the two. A name with a control character
        (a newline, an escape) is refused.
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

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.memfrag.linux.plugins.module_utils._sysctl.apply import SysctlFailure, run

ARGUMENT_SPEC = dict(
    settings=dict(type="dict", required=True),
    state=dict(type="str", default="present", choices=["present", "absent"]),
    file=dict(type="path", default="/etc/sysctl.d/60-memfrag.conf"),
    apply=dict(type="bool", default=True),
    config_root=dict(type="path", default="/"),
    proc_root=dict(type="path", default="/proc"),
    force=dict(type="bool", default=False),
    skip_missing=dict(type="bool", default=False),
    on_override=dict(type="str", default="fail", choices=["fail", "warn"]),
)


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    try:
        outcome = run(module.params, module.check_mode, module._diff, module.atomic_move)
    except SysctlFailure as exc:
        for warning in exc.warnings:
            module.warn(warning)
        module.fail_json(msg=exc.msg, **exc.result)
    for warning in outcome.warnings:
        module.warn(warning)
    module.exit_json(**outcome.result)


if __name__ == "__main__":
    main()
