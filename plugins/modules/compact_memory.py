#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)


DOCUMENTATION = r"""
module: compact_memory
short_description: Compact memory on a Linux host, guarded and measured
version_added: 0.1.0
author: memfrag.linux contributors (@memfrag)
description:
  - Writes C(1) to C(/proc/sys/vm/compact_memory) (all nodes) or to C(/sys/devices/system/node/nodeN/compact)
    (the listed NUMA nodes), which makes the kernel migrate movable pages together so free memory forms
    larger blocks (higher orders in C(/proc/buddyinfo)). Nothing is freed or dropped.
  - Guarded, with one reclaim run at a time per host (lock under O(lock_dir)), at most one run per O(cooldown)
    seconds (state under O(state_dir)); check mode writes nothing and says what it would do.
  - Measured, returning free memory per zone and order before and after, the elapsed time and a one-line summary,
    and appends one JSON line per run to O(audit_log).
  - Fails clearly where the kernel lacks the interface (built without C(CONFIG_COMPACTION), no such NUMA node)
    or where C(/proc/sys) is read-only (containers).
options:
  nodes:
    description:
      - V([all]) compacts every node through C(/proc/sys/vm/compact_memory).
      - A list of NUMA node ids compacts only those nodes through C(/sys/devices/system/node/nodeN/compact),
        which must exist (a kernel with C(CONFIG_NUMA)).
    type: list
    elements: str
    default: [all]
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
    details: Measures and evaluates every guard, writes nothing (no trigger, state, lock file or audit line).
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
    details: Linux with C(/proc/sys/vm/compact_memory) (C(CONFIG_COMPACTION)), or a directory tree laid out like it.
notes:
  - Kernels from about 6.5 accept only C(1) in C(compact_memory); this module always writes C(1).
  - Compaction needs free pages to move pages into. It cannot create free memory, and it cannot move
    unmovable (kernel) or pinned pages, so a zone whose free memory sits in unmovable pageblocks stays fragmented.
  - 'On 6.x kernels one large folio (a transparent huge page, or a large page-cache folio of XFS or of ext4 since 6.16)
    that cannot get a free block of its own size makes the kernel abandon the rest of the zone (the compaction
    trace reports C(status=contended)). On a zone where free memory is only in order-0 holes, compaction can
    therefore end almost at once with no gain; RV(summary) then shows no change. Dropping the page cache first
    (M(memfrag.linux.drop_caches)) removes clean large folios and lets a later compaction go further.'
  - Any write compacts synchronously; the call returns when the kernel is done (usually well under a second,
    seconds on hosts with hundreds of GiB).
seealso:
  - module: memfrag.linux.drop_caches
  - name: Documentation for /proc/sys/vm/compact_memory
    description: The kernel's description of the trigger.
    link: https://www.kernel.org/doc/html/latest/admin-guide/sysctl/vm.html#compact-memory
"""

EXAMPLES = r"""
- name: Compact all nodes unless it ran in the last 15 minutes
  memfrag.linux.compact_memory:
  register: compaction

- name: Show what it achieved
  ansible.builtin.debug:
    msg: "{{ compaction.summary }}"

- name: Compact only NUMA node 1, at most once an hour
  memfrag.linux.compact_memory:
    nodes: [1]
    cooldown: 3600
"""

RETURN = r"""
msg:
  description: What happened, or why nothing was written.
  returned: always
  type: str
summary:
  description: One line with the elapsed time and how free memory at or above each of O(orders) changed.
  returned: always
  type: str
  sample: "compact_memory in 0.04s: order>=4 free 3106 MiB -> 3420 MiB (+314 MiB), order>=9 free 3062 MiB -> 3300 MiB (+238 MiB),
    33866 pages migrated (24 failed; migrate scanner walked 60597 pages)"
refused:
  description:
    - Why nothing was written, or null when the trigger was written.
    - V(cooldown) (not a failure), V(lock_held), V(missing) (no interface), V(read_only), V(rejected) (EINVAL),
      V(measure) (buddyinfo unreadable), V(io).
  returned: always
  type: str
written:
  description: Trigger files written and the value written to each.
  returned: always
  type: list
  elements: dict
  sample: [{"path": "/proc/sys/vm/compact_memory", "value": "1"}]
would:
  description: In check mode, what a real run would write.
  returned: in check mode when the guards pass
  type: str
elapsed:
  description: Seconds the whole run took (measurements included).
  returned: always
  type: float
cooldown_remaining:
  description: Seconds left in the cooldown (0 when the trigger could run).
  returned: always
  type: float
before:
  description: Free memory before the run.
  returned: unless buddyinfo could not be read
  type: dict
  contains:
    zones:
      description: One entry per populated zone, in C(/proc/buddyinfo) order.
      type: list
      elements: dict
      contains:
        node:
          description: NUMA node id.
          type: int
        zone:
          description: Zone name (DMA, DMA32, Normal, HighMem, Movable).
          type: str
        free_blocks:
          description: Free blocks per order, as in C(/proc/buddyinfo).
          type: list
          elements: int
        free_bytes:
          description: Free bytes in the zone.
          type: int
        free_bytes_at_or_above_order:
          description: Element k is the free bytes in blocks of order k or higher.
          type: list
          elements: int
    counters:
      description: The C(/proc/vmstat) counters of RV(kernel_counters), absolute values; null without a readable vmstat.
      type: dict
after:
  description: Free memory after the trigger, same shape as RV(before); null when nothing was written.
  returned: always
  type: dict
kernel_counters:
  description:
    - What the kernel did, from C(/proc/vmstat) before and after (differences; other activity on the host
      during the run is included).
    - C(pgmigrate_success) pages moved, C(pgmigrate_fail) pages that could not be moved, C(compact_migrate_scanned)
      and C(compact_free_scanned) pages walked by the two scanners, C(compact_isolated) pages isolated.
    - Many pages scanned but few migrated and no gain in RV(summary) means compaction gave up early (see the notes).
  returned: when the trigger was written and /proc/vmstat is readable
  type: dict
  sample: {"pgmigrate_success": 1365, "pgmigrate_fail": 35, "compact_migrate_scanned": 1197567,
           "compact_free_scanned": 20709, "compact_isolated": 2998}
"""


from ansible.module_utils.basic import AnsibleModule
from ansible_collections.memfrag.linux.plugins.module_utils._procfs.files import page_size_of_host
from ansible_collections.memfrag.linux.plugins.module_utils._reclaim.run import GUARD_ARGUMENT_SPEC, Request, check_options, run
from ansible_collections.memfrag.linux.plugins.module_utils._reclaim.triggers import TriggerError, compact_paths


def main():
    module = AnsibleModule(
        argument_spec=dict(
            GUARD_ARGUMENT_SPEC,
            nodes=dict(type="list", elements="str", default=["all"]),
            orders=dict(type="list", elements="int", default=[4, 9]),
        ),
        supports_check_mode=True,
    )
    params = module.params
    problem = check_options(params)
    if problem:
        module.fail_json(msg=problem)
    try:
        paths = compact_paths(params["proc_root"], params["sys_root"], params["nodes"])
    except TriggerError as exc:
        module.fail_json(msg=exc.message, refused=exc.reason)
    what = "compact_memory" if params["nodes"] == ["all"] else "compact nodes %s" % ",".join(params["nodes"])
    result = run(Request(
        action="compact_memory", targets=[(path, "1") for path in paths], proc_root=params["proc_root"],
        lock_dir=params["lock_dir"], state_dir=params["state_dir"], audit_log=params["audit_log"],
        cooldown=params["cooldown"], check_mode=module.check_mode,
        page_size=params["page_size"] or page_size_of_host(), what=what, measure_counters=True,
        orders=params["orders"]))
    warnings = result.pop("warnings")
    for warning in warnings:
        module.warn(warning)
    if result.pop("failed"):
        module.fail_json(**result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
