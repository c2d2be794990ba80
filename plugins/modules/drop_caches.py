#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)


DOCUMENTATION = r"""
module: drop_caches
short_description: Drop clean page cache and/or reclaimable slab on a Linux host, guarded and measured
version_added: 0.1.0
author: memfrag.linux contributors (@memfrag)
description:
  - Runs C(sync) (bounded by O(sync_timeout)) and then writes C(1) (page cache), C(2) (slab, that is dentries and
    inodes) or C(3) (both) to C(/proc/sys/vm/drop_caches). Freed pages merge with their free buddies, which is how
    page cache interleaved with free holes turns back into high-order free blocks.
  - The cost is real, because the dropped cache must be read again from disk. Prefer O(level=pagecache) and use
    M(memfrag.linux.compact_memory) first; the M(memfrag.linux.reclaim) role does that in order of least damage.
  - Guarded like M(memfrag.linux.compact_memory) (lock, cooldown, audit log, check mode), and refuses while
    C(Dirty + Writeback) in C(/proc/meminfo) exceeds O(max_dirty_mb), because syncing gigabytes of dirty data stalls
    a host, and dirty pages cannot be dropped anyway.
  - Returns free memory per zone and order and C(MemFree), C(Cached), C(SReclaimable), C(Dirty), C(Writeback) before and after.
options:
  level:
    description:
      - V(pagecache) writes 1, V(slab) writes 2 (reclaimable slab objects such as dentries and inodes),
        V(both) writes 3.
    type: str
    choices: [pagecache, slab, both]
    default: pagecache
  sync:
    description:
      - Run C(sync) first so that more of the page cache is clean and can be dropped.
    type: bool
    default: true
  sync_timeout:
    description:
      - Seconds to wait for C(sync). When it takes longer the caches are not dropped and the module fails
        with RV(refused=sync_timeout) (the sync itself keeps running in the kernel).
    type: int
    default: 60
  max_dirty_mb:
    description:
      - Refuse (RV(refused=dirty)) while C(Dirty + Writeback) is above this many MiB.
      - The default, 256 MiB, is a few seconds of writeback on ordinary disks.
    type: int
    default: 256
  orders:
    description: Orders at or above which RV(summary) reports the change in free memory. Each from 0 to 23.
    type: list
    elements: int
    default: [4, 9]
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - memfrag.linux.proc_root
  - memfrag.linux.reclaim_guards
attributes:
  check_mode:
    support: full
    details: Measures and evaluates every guard, including the dirty limit; runs no sync and writes nothing.
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
    details: Linux C(/proc/sys/vm/drop_caches), or a directory tree laid out like it.
notes:
  - Only clean, unmapped page cache is dropped; pages mapped by processes, dirty pages and tmpfs/shmem stay.
  - The O(cooldown) and the audit state are per trigger, shared across levels.
  - 'The kernel logs C(drop_caches: N) once per write in the kernel log, which is expected.'
seealso:
  - module: memfrag.linux.compact_memory
  - name: Documentation for /proc/sys/vm/drop_caches
    description: The kernel's description of the trigger and its cost.
    link: https://www.kernel.org/doc/html/latest/admin-guide/sysctl/vm.html#drop-caches
"""

EXAMPLES = r"""
- name: Drop the clean page cache (never slab), unless dirty data is above 256 MiB
  memfrag.linux.drop_caches:
    level: pagecache
  register: dropped

- name: Show what it freed
  ansible.builtin.debug:
    msg: "{{ dropped.summary }}"

- name: Dry run of a full drop
  memfrag.linux.drop_caches:
    level: both
  check_mode: true
"""

RETURN = r"""
msg:
  description: What happened, or why nothing was written.
  returned: always
  type: str
summary:
  description: One line with the elapsed time, free memory at or above each of O(orders), and Cached/SReclaimable, before -> after.
  returned: always
  type: str
  sample: "drop_caches 1 in 0.46s: order>=4 free 4322 MiB -> 5671 MiB (+1349 MiB), order>=9 free 4108 MiB -> 4362 MiB (+254 MiB), Cached 2100 MiB -> 310 MiB"
refused:
  description:
    - Why nothing was written, or null when the trigger was written.
    - V(cooldown) (not a failure), V(lock_held), V(dirty), V(sync_timeout), V(missing), V(read_only),
      V(rejected) (EINVAL), V(measure), V(io).
  returned: always
  type: str
written:
  description: Trigger files written and the value written.
  returned: always
  type: list
  elements: dict
  sample: [{"path": "/proc/sys/vm/drop_caches", "value": "1"}]
would:
  description: In check mode, what a real run would do.
  returned: in check mode when the guards pass
  type: str
sync:
  description: Whether the sync finished and how long it took.
  returned: when a sync ran
  type: dict
  contains:
    completed:
      description: True when sync returned within O(sync_timeout).
      type: bool
    seconds:
      description: Seconds waited.
      type: float
elapsed:
  description: Seconds the whole run took (sync and measurements included).
  returned: always
  type: float
cooldown_remaining:
  description: Seconds left in the cooldown (0 when the trigger could run).
  returned: always
  type: float
before:
  description: Free memory per zone and order and the meminfo fields before the run.
  returned: unless /proc could not be read
  type: dict
  contains:
    zones:
      description: As in M(memfrag.linux.compact_memory) RV(before.zones).
      type: list
      elements: dict
    meminfo:
      description: C(MemFree), C(Cached), C(SReclaimable), C(Dirty), C(Writeback) in bytes (fields the kernel lacks are left out).
      type: dict
after:
  description: The same after the drop; null when nothing was written.
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.memfrag.linux.plugins.module_utils._procfs.files import page_size_of_host
from ansible_collections.memfrag.linux.plugins.module_utils._units import MIB
from ansible_collections.memfrag.linux.plugins.module_utils._reclaim.run import GUARD_ARGUMENT_SPEC, Request, check_options, run
from ansible_collections.memfrag.linux.plugins.module_utils._reclaim.triggers import DROP_LEVELS, TriggerError, drop_caches_path


def main():
    module = AnsibleModule(
        argument_spec=dict(
            GUARD_ARGUMENT_SPEC,
            level=dict(type="str", choices=sorted(DROP_LEVELS), default="pagecache"),
            sync=dict(type="bool", default=True),
            sync_timeout=dict(type="int", default=60),
            max_dirty_mb=dict(type="int", default=256),
            orders=dict(type="list", elements="int", default=[4, 9]),
        ),
        supports_check_mode=True,
    )
    params = module.params
    problem = check_options(params, counts=("sync_timeout", "max_dirty_mb"))
    if problem:
        module.fail_json(msg=problem)
    try:
        path = drop_caches_path(params["proc_root"])
    except TriggerError as exc:
        module.fail_json(msg=exc.message, refused=exc.reason)
    value = str(DROP_LEVELS[params["level"]])
    result = run(Request(
        action="drop_caches", targets=[(path, value)], proc_root=params["proc_root"],
        lock_dir=params["lock_dir"], state_dir=params["state_dir"], audit_log=params["audit_log"],
        cooldown=params["cooldown"], check_mode=module.check_mode,
        page_size=params["page_size"] or page_size_of_host(), what="drop_caches %s" % value,
        measure_meminfo=True, sync=params["sync"], sync_timeout=params["sync_timeout"],
        max_dirty_bytes=params["max_dirty_mb"] * MIB, orders=params["orders"]))
    for warning in result.pop("warnings"):
        module.warn(warning)
    if result.pop("failed"):
        module.fail_json(**result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
