#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)


DOCUMENTATION = r"""
module: reclaim_memory
short_description: Defragment free memory where it is needed, least damage first, in one guarded run
version_added: 0.1.0
author: memfrag.linux contributors (@memfrag)
description:
  - Judges the host first. Reclaim is needed when a judged zone (O(zones), on every node) has less than
    O(target_free_mb) free in blocks of order >= O(order), when the O(kernel_log) scan finds allocation failures,
    deadlocks or stalls in the ring buffer or the journal, or when O(guard_query_hit) is true. A host that does not
    need it is left untouched and the module says why.
  - Otherwise it climbs a ladder, least damage first, measuring after every step and stopping as soon as the
    target is met. V(compact) compacts (C(/proc/sys/vm/compact_memory), or C(nodeN/compact) for the short nodes
    only). V(hugetlb_compact) takes huge pages for the shortfall through C(/proc/sys/vm/nr_hugepages) and gives them
    back at once, so the kernel compacts for that order (the original value is always written back).
    V(cgroup_reclaim) writes the shortfall to the cgroup v2 C(memory.reclaim) (5.19+), at most the inactive page
    cache (C(Inactive(file)) in meminfo, skipped when meminfo lacks it), then compacts again. The kernel takes hot
    cache too when the request is bigger than its inactive list. V(drop_pagecache) syncs, drops every clean page-cache page and compacts again.
    V(drop_slab) drops reclaimable slab (only with O(steps) naming it).
  - Guarded like M(memfrag.linux.compact_memory) and M(memfrag.linux.drop_caches), with the same run lock. The
    cooldown (state C(reclaim_memory.state.json)) applies to the ladder as a whole. The audit log is opened and the
    cooldown state saved before anything is triggered, and a run that cannot do either triggers nothing. One audit
    line is written per step and one at the end. Check mode writes nothing.
  - Returns every step with free memory at O(order) before and after, and sets the host fact C(memfrag_reclaim)
    that the C(memfrag.linux.report) role reads.
options:
  order:
    description: The allocation order that matters (4 is 64 KiB with 4 KiB pages, as in XFS C(kmem_alloc) and C(order:4) failures).
    type: int
    default: 4
  target_free_mb:
    description:
      - MiB wanted free in blocks of order >= O(order) in each judged zone.
      - Zones with less free memory than this in total are not judged. They are short of memory, not fragmented.
        A host where no zone is judged never reports the target as met.
    type: int
    default: 256
  zones:
    description: Zone names judged, on every node.
    type: list
    elements: str
    default: [Normal, DMA32]
  steps:
    description:
      - The steps allowed. They always run in the order V(compact), V(hugetlb_compact), V(cgroup_reclaim),
        V(drop_pagecache), V(drop_slab). The first allowed step runs on every host that needs reclaim, and each later
        one only while the target is still missed.
      - V(hugetlb_compact) is not in the default. Measured by C(tests/benchmarks/bench_reclaim.py), it gained
        nothing after compaction (6.1 and 6.18), and taken before compaction it left less for compaction to gain.
      - A step whose interface the kernel lacks is recorded with RV(steps[].refused=missing), and the next step is
        tried.
    type: list
    elements: str
    choices: [compact, hugetlb_compact, cgroup_reclaim, drop_pagecache, drop_slab]
    default: [compact, cgroup_reclaim, drop_pagecache]
  compact_nodes:
    description:
      - V([auto]) compacts only the nodes with a short zone through C(/sys/devices/system/node/nodeN/compact) when
        some node is not short and the kernel has those files, and every node through C(compact_memory) otherwise.
      - V([all]) always uses C(compact_memory). A list of node ids compacts those nodes.
    type: list
    elements: str
    default: [auto]
  cgroup:
    description:
      - The cgroup v2 group whose C(memory.reclaim) V(cgroup_reclaim) writes to, relative to the cgroup v2 mount
        (C(/sys/fs/cgroup), or C(/sys/fs/cgroup/unified) on hybrid hosts). The default, the root, reclaims from the whole host.
    type: str
    default: ""
  compact_after_free:
    description: Compact again after V(cgroup_reclaim), V(drop_pagecache) and V(drop_slab) freed memory.
    type: bool
    default: true
  slab_min_mb:
    description: V(drop_slab) runs only while C(SReclaimable) is at least this many MiB.
    type: int
    default: 512
  max_dirty_mb:
    description: V(drop_pagecache) and V(drop_slab) are refused (and the ladder stops) while C(Dirty + Writeback) is above this.
    type: int
    default: 256
  sync_timeout:
    description: Seconds allowed for the C(sync) before a drop; when it takes longer nothing is dropped and the ladder stops.
    type: int
    default: 60
  kernel_log:
    description:
      - Scan this host's kernel logs in the same run, as M(memfrag.linux.kernel_log_scan) does with these options.
        Failure, deadlock and stall events from the ring buffer (C(kmsg)) or the journal make reclaim needed. Syslog
        files can be stale or copied from another host, so their events never count.
      - Unset (null) means no scan.
    type: dict
    suboptions:
      sources:
        description: V(kmsg), V(journal), V(files); default is every source present on the host.
        type: list
        elements: str
        choices: [kmsg, journal, files]
      paths:
        description: Files or shell globs for the V(files) source.
        type: list
        elements: str
        default: ["/var/log/messages*", "/var/log/kern.log*", "/var/log/syslog*"]
      since:
        description: Only events newer than this (V(1h), V(24h), V(7d), seconds, or an ISO 8601 time or date).
        type: str
      kernel_release:
        description: Kernel release whose GFP bit layout decodes C(mode:0x...) values; default is the running kernel.
        type: str
      max_events:
        description: Keep at most this many events (the newest).
        type: int
        default: 100
      include_userspace_kmsg:
        description: Also count kernel-looking lines that a process wrote into C(/dev/kmsg).
        type: bool
        default: false
  guard_query_hit:
    description: The caller's own condition, evaluated on the controller (the reclaim role uses a JMESPath query over facts).
    type: bool
    default: false
  guard_query:
    description: The caller's condition as text, quoted in the reason when O(guard_query_hit) is true.
    type: str
    default: ""
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - memfrag.linux.proc_root
  - memfrag.linux.reclaim_guards
attributes:
  check_mode:
    support: full
    details: Judges the host and evaluates the guards; lists the steps that could run and writes nothing.
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
    details: Linux, or a directory tree laid out like C(/proc) and C(/sys).
notes:
  - 'Which step reached the target on which kernel, measured: see the collection README ("Measured").'
  - V(hugetlb_compact) is skipped when the target order is above the huge page order, and it takes at most half
    of C(MemFree) in huge pages. The pages are given back in the same step.
  - V(cgroup_reclaim) writes C(N swappiness=0) on hosts with swap (a 6.9+ key), so no application memory is swapped out.
    A kernel that rejects the key skips the step.
seealso:
  - module: memfrag.linux.compact_memory
  - module: memfrag.linux.drop_caches
  - name: cgroup v2 memory.reclaim
    description: The kernel's description of proactive reclaim.
    link: https://docs.kernel.org/admin-guide/cgroup-v2.html#memory-interface-files
"""

EXAMPLES = r"""
- name: Defragment where order-4 blocks are short, keeping the page cache when a bounded step suffices
  memfrag.linux.reclaim_memory:
    order: 4
    target_free_mb: 256
    kernel_log:
      since: 1h
      sources: [kmsg, journal]
  register: reclaim

- name: Show every step
  ansible.builtin.debug:
    msg: "{{ reclaim.report }}"

- name: Guard options once for every reclaim module in a play
  module_defaults:
    group/memfrag.linux.reclaim:
      state_dir: /var/lib/memfrag
      cooldown: 3600
  block:
    - name: Compaction only, never drop anything
      memfrag.linux.reclaim_memory:
        steps: [compact, hugetlb_compact]
"""

RETURN = r"""
msg:
  description: What happened, or why nothing was written.
  returned: always
  type: str
needed:
  description: Whether the host needed reclaim.
  returned: always
  type: bool
target_met:
  description: Whether every judged zone has the target after the run (false when no zone could be judged).
  returned: unless the first measurement failed
  type: bool
refused:
  description:
    - Why the ladder stopped early, or null. V(cooldown), V(dirty) and V(sync_timeout) are guards doing their job and
      not failures. V(lock_held), V(state) (a cooldown state that cannot be trusted), V(io) (an unusable state
      directory, audit log or trigger file), V(read_only), V(measure) fail the module.
  returned: always
  type: str
steps:
  description: Every step tried, in order.
  returned: always
  type: list
  elements: dict
  contains:
    action:
      description: What ran, for example C(compact_memory), C(drop_caches pagecache) or C(compact_memory after drop).
      type: str
    step:
      description: The ladder step it belongs to (V(compact), V(hugetlb_compact), V(cgroup_reclaim), V(drop_pagecache), V(drop_slab)).
      type: str
    changed:
      description: Whether a trigger was written.
      type: bool
    refused:
      description: Why the step did not run (V(missing), V(not_useful), V(nothing_to_do), V(rejected), or a guard), or null.
      type: str
    summary:
      description: One line with the time taken and free memory at or above O(order) before and after.
      type: str
    order:
      description: The order measured (O(order)).
      type: int
    before_high_order_bytes:
      description: Free bytes in blocks of order >= O(order) in the judged zones before the step.
      type: int
    after_high_order_bytes:
      description: The same after the step.
      type: int
    written:
      description: Files written and the values written.
      type: list
      elements: dict
  sample:
    - {action: compact_memory, step: compact, changed: true, refused: null, order: 4,
       before_high_order_bytes: 74448896, after_high_order_bytes: 80740352,
       summary: "compact_memory in 0.21s: order>=4 free 71 MiB -> 77 MiB (+6 MiB), 1365 pages migrated (35 failed; migrate scanner walked 11975 pages)"}
report:
  description: Lines a person reads (the decision, each step's summary, the outcome); the reclaim role prints them.
  returned: always
  type: list
  elements: str
would:
  description: In check mode, what each step would do.
  returned: in check mode when the guards pass
  type: list
  elements: str
decision:
  description: The judgement before the run (needed, reason, short_zones, shortfall_bytes, high_order_bytes, events).
  returned: unless the first measurement failed
  type: dict
ansible_facts:
  description: Facts set on the host.
  returned: always
  type: complex
  contains:
    memfrag_reclaim:
      description:
        - What the fleet report reads. C(needed), C(reason), C(check_mode), C(order), C(target_mb), C(actions)
          (action, step, changed, refused, elapsed, summary), C(target_met), C(before_high_order_bytes),
          C(after_high_order_bytes), C(before_free_bytes_at_or_above_order) and C(after_free_bytes_at_or_above_order).
      type: dict
"""

import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.memfrag.linux.plugins.module_utils._kernel_log.options import SCAN_OPTIONS, warnings_to_show
from ansible_collections.memfrag.linux.plugins.module_utils._procfs.files import page_size_of_host
from ansible_collections.memfrag.linux.plugins.module_utils._reclaim.ladder import DEFAULT_STEPS, STEPS, Host, Ladder, Plan
from ansible_collections.memfrag.linux.plugins.module_utils._reclaim.run import GUARD_ARGUMENT_SPEC, check_options


def main():
    module = AnsibleModule(
        argument_spec=dict(
            GUARD_ARGUMENT_SPEC,
            order=dict(type="int", default=4),
            target_free_mb=dict(type="int", default=256),
            zones=dict(type="list", elements="str", default=["Normal", "DMA32"]),
            steps=dict(type="list", elements="str", choices=list(STEPS), default=list(DEFAULT_STEPS)),
            compact_nodes=dict(type="list", elements="str", default=["auto"]),
            cgroup=dict(type="str", default=""),
            compact_after_free=dict(type="bool", default=True),
            slab_min_mb=dict(type="int", default=512),
            max_dirty_mb=dict(type="int", default=256),
            sync_timeout=dict(type="int", default=60),
            kernel_log=dict(type="dict", options=SCAN_OPTIONS),
            guard_query_hit=dict(type="bool", default=False),
            guard_query=dict(type="str", default=""),
        ),
        supports_check_mode=True,
    )
    params = module.params
    problem = check_options(params, counts=("target_free_mb", "slab_min_mb", "max_dirty_mb", "sync_timeout"))
    if problem is None and not 0 <= params["order"] <= 20:
        problem = "order must be 0-20 (the buddy allocator has at most 14 orders), got %d" % params["order"]
    if problem:
        module.fail_json(msg=problem)

    log_scan = None
    if params["kernel_log"] is not None:
        # Imported here: hosts that do not scan do not compile the scanner (see memory_facts).
        from ansible_collections.memfrag.linux.plugins.module_utils._kernel_log.scan import run_scan
        scan_warnings = []
        try:
            log_scan, dummy = run_scan(params["kernel_log"], {}, scan_warnings.append, module.get_bin_path("journalctl"),
                                       time.time())
        except ValueError as exc:
            module.fail_json(msg="kernel_log: %s" % exc)
        for warning in warnings_to_show(scan_warnings):
            module.warn("kernel_log: %s" % warning)

    plan = Plan(order=params["order"], target_mb=params["target_free_mb"], zone_names=params["zones"],
                steps=params["steps"], compact_nodes=params["compact_nodes"], cgroup=params["cgroup"],
                compact_after_free=params["compact_after_free"], slab_min_mb=params["slab_min_mb"],
                max_dirty_mb=params["max_dirty_mb"], sync_timeout=params["sync_timeout"], cooldown=params["cooldown"],
                log_scan=log_scan, guard_query_hit=params["guard_query_hit"], guard_query=params["guard_query"])
    host = Host(params["proc_root"], params["sys_root"], params["page_size"] or page_size_of_host(),
                params["lock_dir"], params["state_dir"], params["audit_log"])
    result = Ladder(plan, host, check_mode=module.check_mode).run()
    for warning in result.pop("warnings"):
        module.warn(warning)
    if result.pop("failed"):
        module.fail_json(**result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
