#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)


DOCUMENTATION = r"""
module: xfs_defrag
short_description: Defragment XFS files with xfs_fsr and set extent size hints, guarded and measured
version_added: 0.1.0
author: memfrag.linux contributors (@memfrag)
description:
  - Brings the extent count of the files in O(files) down with C(xfs_fsr), one file at a time, and sets an extent
    size hint on the directories in O(dirs) so that files created there later stay in few extents. Every file's
    extent count is measured before and after (C(FS_IOC_FSGETXATTR), as C(xfs_io -c stat) prints it).
  - Guarded like the reclaim triggers. One run at a time per host (the run lock M(memfrag.linux.compact_memory) and
    M(memfrag.linux.drop_caches) use, so a host never defragments and reclaims at once). One time budget for the
    whole run (O(time_limit)), enforced with C(timeout); files not started in time say so. C(xfs_fsr) runs at idle
    I/O priority (C(ionice -c 3), O(io_class)). Check mode measures, checks every guard and changes nothing.
  - "A file that a process holds open for writing or maps shared and writable is refused (O(allow_busy)). Why:
    C(xfs_fsr) copies the file into a temporary file in the same directory, then has the kernel swap the two files'
    extents; the kernel refuses the swap when the file's change or modify time moved since the copy started
    (and, up to 4.x kernels, when the file is mapped), so data is not lost, but a file written meanwhile was copied
    for nothing, and writes through an existing shared mapping are seen only through those timestamps.
    A running VM's disk image is such a file: stop the VM first, or accept that risk with O(allow_busy=true)."
  - Commands run through Ansible's run_command with argument lists, never a shell. A missing C(xfs_fsr) or
    C(xfs_io) fails the module naming the package (C(xfsprogs)).
options:
  files:
    description:
      - Files on XFS to defragment, in this order. Symbolic links are refused, not followed.
    type: list
    elements: path
    default: []
  min_extents:
    description:
      - Leave files with fewer extents than this as they are (their RV(files) C(action) is V(unchanged)).
    type: int
    default: 2
  dirs:
    description:
      - Directories on XFS that get the extent size hint O(extsize) for files created in them from now on.
    type: list
    elements: path
    default: []
  extsize:
    description:
      - The extent size hint for O(dirs), in bytes or with C(k), C(m) or C(g) (V(1m), V(16m)); a multiple of the file
        system block size, at most 1 GiB. Required with O(dirs).
    type: str
  time_limit:
    description:
      - Seconds the whole run may take. C(xfs_fsr) of the file running when it is used up is stopped (its temporary
        copy is discarded; the extent swap itself is atomic) and later files are not started.
    type: int
    default: 600
  io_class:
    description:
      - I/O scheduling class of C(xfs_fsr). V(idle) (C(ionice -c 3)) gets disk time only when no other process wants
        it; V(best-effort) is the lowest best-effort priority (C(-c 2 -n 7)); V(none) does not change it.
      - Only schedulers with I/O priorities (BFQ, CFQ) honour it; C(mq-deadline) and C(none) ignore it.
    type: str
    choices: [idle, best-effort, none]
    default: idle
  allow_busy:
    description:
      - Defragment files that a process holds open for writing or maps shared and writable (see the description).
    type: bool
    default: false
  lock_dir:
    description:
      - Directory of the run lock C(reclaim.lock), shared with the reclaim triggers.
    type: path
    default: /run/memfrag
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - memfrag.linux.proc_root
attributes:
  check_mode:
    support: full
    details: Measures extents and hints, applies every guard and reports the C(action) V(would_defragment) or V(would_set); runs nothing.
  diff_mode:
    support: none
  platform:
    platforms: posix
    details: Linux with xfsprogs (C(xfs_fsr), C(xfs_io)), coreutils C(timeout) and util-linux C(ionice).
notes:
  - C(xfs_fsr) needs free space for a full copy of the file in its file system, and reports to syslog, not to
    its output, when run without a terminal; C(extents_after) in RV(files) is the measured result.
  - O(proc_root) is where holders are looked up (C(/proc/PID/fd), C(fdinfo), C(maps)) and the mount table read.
seealso:
  - module: memfrag.linux.xfs_extent_scan
"""

EXAMPLES = r"""
- name: Defragment the worst files the scan found, when nothing writes them
  memfrag.linux.xfs_defrag:
    files: "{{ xfs.files | map(attribute='path') | list }}"
    time_limit: 1800

- name: New VM images in this directory allocate 16 MiB at a time
  memfrag.linux.xfs_defrag:
    dirs: [/var/lib/libvirt/images]
    extsize: 16m
"""

RETURN = r"""
files:
  description: One entry per O(files), in order.
  returned: always
  type: list
  elements: dict
  contains:
    path: {description: The file., type: str}
    action:
      description:
        - "V(defragmented), V(unchanged) (already below O(min_extents), or xfs_fsr could not do better), V(refused)
          (symlink, not XFS, or busy; see C(reason)), V(not_started) (time limit), V(timed_out), V(failed), or in check
          mode V(would_defragment)."
      type: str
    reason: {description: "Why, for every action but V(defragmented) and V(would_defragment).", type: str}
    extents_before: {description: Extents before (null when the file could not be examined)., type: int}
    extents_after: {description: Extents after (the same as before when nothing ran)., type: int}
    changed: {description: The extent count changed., type: bool}
    open_by: {description: "Processes holding the file ({pid, comm, write, mapped}).", type: list, elements: dict}
    command: {description: The argument list run., type: list, elements: str}
    rc: {description: Its exit status (124 or 137 when the time limit stopped it)., type: int}
    seconds: {description: How long it ran., type: float}
  sample:
    - path: /srv/vm/db01.img
      action: defragmented
      extents_before: 40852
      extents_after: 2
      changed: true
      rc: 0
      seconds: 0.52
      open_by: []
      command: [/usr/bin/timeout, "-k", "10", "600", /usr/bin/ionice, "-c", "3", /usr/sbin/xfs_fsr, "-v", /srv/vm/db01.img]
dirs:
  description:
    - One entry per O(dirs) with C(action) (V(set), V(unchanged), V(refused), V(failed), V(would_set)), C(extsize_before)
      and C(extsize_after) in bytes (0 is no hint).
  returned: always
  type: list
  elements: dict
  sample: [{path: /var/lib/libvirt/images, action: set, extsize_before: 0, extsize_after: 16777216, changed: true}]
lines:
  description: One line per file and directory, what was done with the numbers before and after.
  returned: always
  type: list
  elements: str
  sample: ["/srv/vm/db01.img: 40852 -> 2 extents (defragmented)", "/var/lib/libvirt/images: extent size hint 0 -> 16777216 bytes (set)"]
"""


from ansible.module_utils.basic import AnsibleModule
from ansible_collections.memfrag.linux.plugins.module_utils._procfs.files import ProcFileError
from ansible_collections.memfrag.linux.plugins.module_utils._reclaim.guards import GuardError, RunLock
from ansible_collections.memfrag.linux.plugins.module_utils._xfs.defrag import IO_CLASSES, Defrag, parse_size, summary_lines, tools_needed


def main():
    module = AnsibleModule(
        argument_spec=dict(
            files=dict(type="list", elements="path", default=[]),
            min_extents=dict(type="int", default=2),
            dirs=dict(type="list", elements="path", default=[]),
            extsize=dict(type="str"),
            time_limit=dict(type="int", default=600),
            io_class=dict(type="str", default="idle", choices=list(IO_CLASSES)),
            allow_busy=dict(type="bool", default=False),
            lock_dir=dict(type="path", default="/run/memfrag"),
            proc_root=dict(type="path", default="/proc"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    if params["dirs"] and not params["extsize"]:
        module.fail_json(msg="dirs needs extsize, the extent size hint to set (for example 16m)")
    size = None
    if params["dirs"]:
        try:
            size = parse_size(params["extsize"])
        except ValueError as exc:
            module.fail_json(msg="extsize: %s" % exc)
        if size <= 0:
            module.fail_json(msg="extsize must be more than 0 (an extent size hint of 0 removes it; not done here)")
    if params["time_limit"] < 1:
        module.fail_json(msg="time_limit must be at least 1 second, got %d" % params["time_limit"])
    if params["min_extents"] < 1:
        module.fail_json(msg="min_extents must be at least 1, got %d" % params["min_extents"])
    tools = {}
    for program, package in tools_needed(params["files"], params["dirs"], params["io_class"]):
        found = module.get_bin_path(program, opt_dirs=["/usr/sbin", "/sbin"])
        if not found:
            module.fail_json(msg="%s not found on this host: install %s (Debian, Ubuntu, RHEL and SUSE call the package %s)"
                                 % (program, package, package), missing=program, package=package)
        tools[program] = found

    lock = RunLock(params["lock_dir"])
    try:
        if module.check_mode:
            if lock.held_elsewhere():
                raise GuardError("lock_held", "")
        else:
            lock.acquire()
    except GuardError as exc:
        if exc.reason == "lock_held":
            module.fail_json(msg="another memfrag run (reclaim or xfs_defrag) holds %s on this host; refusing to run at "
                                 "the same time" % lock.path, refused="lock_held")
        module.fail_json(msg=exc.message, refused=exc.reason)
    try:
        try:
            run = Defrag(tools, module.run_command, params["proc_root"], params["time_limit"],
                         params["io_class"], params["allow_busy"], params["min_extents"], module.check_mode)
        except ProcFileError as exc:
            module.fail_json(msg="cannot read the mount table: %s" % exc)
        files = [run.file(path) for path in params["files"]]
        dirs = [run.hint(path, size) for path in params["dirs"]]
    finally:
        lock.release()
    for warning in run.warnings:
        module.warn(warning)
    changed = any(entry["changed"] for entry in files + dirs)
    if module.check_mode:
        changed = any(entry["action"] in ("would_defragment", "would_set") for entry in files + dirs)
    failed = [entry for entry in files + dirs if entry.get("action") == "failed"]
    if failed:
        what = "; ".join("%s: %s" % (entry["path"], entry["reason"]) for entry in failed[:3])
        module.fail_json(msg="%d of %d could not be done: %s" % (len(failed), len(files) + len(dirs), what),
                         changed=changed, files=files, dirs=dirs, lines=summary_lines(files, dirs))
    module.exit_json(changed=changed, files=files, dirs=dirs, lines=summary_lines(files, dirs))


if __name__ == "__main__":
    main()
