#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)


DOCUMENTATION = r"""
---
module: buddyinfo_facts
short_description: Memory fragmentation facts from /proc/buddyinfo, pagetypeinfo, zoneinfo, vmstat and vm tunables
version_added: 0.1.0
author: memfrag.linux contributors (@memfrag)
description:
  - Reads C(/proc/buddyinfo) (always) and, when readable, C(/proc/pagetypeinfo), C(/proc/zoneinfo),
    C(/proc/vmstat) and the C(/proc/sys/vm) tunables that govern watermarks and compaction, and
    returns them with derived values as C(ansible_facts['memfrag_buddyinfo']).
  - Per zone it computes free pages and bytes, the largest free block, free bytes at or above each
    order, and the kernel's own fragmentation measures from C(mm/vmstat.c) per order
    (C(unusable_free_index) and C(__fragmentation_index), divided by 1000 as debugfs prints them).
  - With zoneinfo it adds the zone's watermarks, sizes and lowmem reserves, and an approximation of
    the kernel's C(__zone_watermark_ok) check per order (see RV(ansible_facts.memfrag_buddyinfo.zones)
    C(watermark_ok)).
  - The number of orders is learned from the file (11 on x86_64, 14 on arm64 with 64K pages, 9 on
    ppc64). Mail-wrapped lines, counts wider than the kernel's 6 columns, single-spaced
    C(column -t) output and pasted shell sessions are read as the kernel wrote them; lines that are
    not kernel output give a warning.
  - A missing, unreadable or malformed optional file gives a warning and the rest of the facts;
    C(sources) says what happened to each file. A missing, unreadable or malformed buddyinfo fails
    with a message naming the file and line.
  - Each file is read once and nothing is executed. Reading pagetypeinfo is the costly part, in the
    kernel, which walks every free list to count it (about 13 ms on a 24 GiB test host, against under
    1 ms for buddyinfo); V(!pagetypeinfo) in O(gather_subset) leaves it out.
options:
  page_size:
    description:
      - Base page size in bytes, used to turn pages into bytes.
      - Default is the running host's page size when O(proc_root) is the live C(/proc). For another
        tree (a sosreport from an arm64 64K-page host, say) it is inferred from C(meminfo) C(MemTotal)
        divided by the sum of zoneinfo C(managed) pages when both are there and agree with a
        common page size, else the running host's.
      - When it falls back to the running host's and the number of orders in buddyinfo is not what
        a default kernel with that page size has (14 orders are arm64 with 64 KiB pages, 11 most 4 KiB
        kernels), a warning says which page sizes fit.
    type: int
  gather_subset:
    description:
      - Which optional files to read besides buddyinfo, which is always read.
      - V(all) means every one of them; V(!name) leaves one out (V(!pagetypeinfo) avoids the short
        C(zone->lock) hold that reading pagetypeinfo costs on a busy host).
      - C(sysctl) means the tunables under C(sys/vm) of O(proc_root).
    type: list
    elements: str
    default: [all]
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.facts
  - memfrag.linux.proc_root
  - memfrag.linux.facts_module
notes:
  - C(/proc/pagetypeinfo) is readable by root only on kernels since about 5.4; without root the
    module warns and returns everything else.
  - The watermark verdict is an approximation computed from what C(/proc) shows, not the kernel's
    own answer; C(watermark_check) in each zone says which inputs and which kernel-era algorithm
    were used.
  - On hosts with C(CONFIG_DEFERRED_STRUCT_PAGE_INIT), C(managed_pages) grows after boot as memory
    is initialised; buddyinfo and zoneinfo are read moments apart and need not agree exactly.
seealso:
  - name: The buddyinfo, pagetypeinfo and zoneinfo formats
    description: Documentation/filesystems/proc.rst in the Linux kernel sources.
    link: https://www.kernel.org/doc/html/latest/filesystems/proc.html
"""

EXAMPLES = r"""
- name: Gather fragmentation facts
  memfrag.linux.buddyinfo_facts:

- name: Show zones with no free block of order 4 or more
  ansible.builtin.debug:
    msg: "node {{ item.node }} {{ item.zone }}: largest free order {{ item.largest_free_order }}"
  loop: "{{ ansible_facts['memfrag_buddyinfo']['zones'] }}"
  when: item.largest_free_order < 4

- name: Analyse an extracted sosreport from a 64K-page arm64 host
  memfrag.linux.buddyinfo_facts:
    proc_root: /srv/sosreports/host1/proc
    page_size: 65536

- name: Only buddyinfo and zoneinfo (no pagetypeinfo, vmstat or tunables)
  memfrag.linux.buddyinfo_facts:
    gather_subset:
      - zoneinfo

- name: Everything except pagetypeinfo
  memfrag.linux.buddyinfo_facts:
    gather_subset:
      - all
      - "!pagetypeinfo"

- name: Fail when no node can hand out an order-4 block without reclaim or compaction
  ansible.builtin.assert:
    that: ansible_facts['memfrag_buddyinfo']['nodes'] | map(attribute='watermark_ok') | map(attribute=4) is any
"""

RETURN = r"""
ansible_facts:
  description: Facts added to C(ansible_facts).
  returned: always
  type: dict
  contains:
    memfrag_buddyinfo:
      description: Fragmentation facts. Sizes in pages are in the kernel's base pages of RV(ansible_facts.memfrag_buddyinfo.page_size) bytes.
      returned: always
      type: dict
      contains:
        page_size:
          description: Base page size in bytes used for every byte value.
          type: int
          returned: always
          sample: 4096
        page_size_source:
          description: Where the page size came from, C(option), C(host) or C(meminfo MemTotal / zoneinfo managed).
          type: str
          returned: always
          sample: host
        orders:
          description: Number of order columns in buddyinfo (orders 0 to orders-1).
          type: int
          returned: always
          sample: 11
        kernel_release:
          description: C(sys/kernel/osrelease) under the proc root, or null when absent.
          type: str
          returned: always
          sample: 6.18.44
        pageblock_order:
          description: Page block order from pagetypeinfo, null when it was not read.
          type: int
          returned: always
          sample: 9
        pages_per_block:
          description: Pages per pageblock from pagetypeinfo, null when it was not read.
          type: int
          returned: always
          sample: 512
        pagetypeinfo_cap:
          description: The count at which the kernel stops counting a free list (cells printed as C(>100000)).
          type: int
          returned: always
          sample: 100000
        zones:
          description: One entry per buddyinfo line, in file order.
          type: list
          elements: dict
          returned: always
          contains:
            node:
              description: NUMA node id.
              type: int
              sample: 0
            zone:
              description: Zone name (DMA, DMA32, Normal, HighMem, Movable).
              type: str
              sample: Normal
            free_blocks:
              description: Free blocks per order, as buddyinfo prints them.
              type: list
              elements: int
              sample: [4381, 1093, 185, 1530, 567, 102, 4, 0, 0, 0, 0]
            free_pages:
              description: Free base pages, the sum of C(free_blocks[order] << order).
              type: int
              sample: 32139
            free_bytes:
              description: C(free_pages) times the page size.
              type: int
              sample: 131641344
            largest_free_order:
              description: Highest order with a free block, -1 when the zone has none.
              type: int
              sample: 6
            largest_free_block_bytes:
              description: Size of the largest free block, 0 when the zone has none.
              type: int
              sample: 1048576
            free_bytes_at_or_above_order:
              description: Per order, free bytes held in blocks of that order or larger (index 0 is all free memory).
              type: list
              elements: int
            unusable_index:
              description:
                - Per order, the kernel's C(unusable_free_index)/1000 - the share of free memory in blocks
                  too small for that order. 0.0 all usable, 1.0 none usable (or no free memory).
              type: list
              elements: float
              sample: [0.0, 0.136, 0.338, 0.608, 0.608, 0.889, 0.992, 1.0, 1.0, 1.0, 1.0]
            fragmentation_index:
              description:
                - Per order, the kernel's C(__fragmentation_index)/1000. -1.0 means a block of that order is free
                  and an allocation would succeed. Otherwise near 0 the failure is a lack of memory
                  (reclaim helps), near 1 it is fragmentation (compaction helps); compare with the
                  C(extfrag_threshold) tunable (default 500, so 0.5).
              type: list
              elements: float
            migrate_types:
              description: Free blocks per migrate type per order (names as the kernel prints them). Only when pagetypeinfo was read.
              type: dict
              returned: when pagetypeinfo was readable
              sample: {"Unmovable": [1, 0, 0], "Movable": [100000, 52, 3]}
            migrate_types_capped:
              description:
                - Per migrate type, the orders whose count was printed as C(>100000); the value in
                  C(migrate_types) is then a lower bound. Empty when nothing was capped.
              type: dict
              returned: when pagetypeinfo was readable
              sample: {"Movable": [0]}
            pageblocks:
              description: Number of pageblocks per migrate type.
              type: dict
              returned: when pagetypeinfo was readable
            watermarks:
              description:
                - Watermarks in pages, C(min), C(low), C(high), plus C(boost) (5.x+) and C(promo) (6.12+) where
                  the kernel prints them. Since 5.0 min/low/high include the boost.
              type: dict
              returned: when zoneinfo was readable
              sample: {"min": 8684, "low": 10855, "high": 13026}
            pages_free:
              description: zoneinfo C(pages free) (the kernel's NR_FREE_PAGES), read moments apart from buddyinfo.
              type: int
              returned: when zoneinfo was readable
            managed_pages:
              description: Pages managed by the buddy allocator (null on kernels before 3.8).
              type: int
              returned: when zoneinfo was readable
            present_pages:
              description: Physical pages present in the zone.
              type: int
              returned: when zoneinfo was readable
            spanned_pages:
              description: Pages the zone spans, holes included.
              type: int
              returned: when zoneinfo was readable
            protection:
              description: The zone's lowmem_reserve per zone index (zoneinfo C(protection)), in pages.
              type: list
              elements: int
              returned: when zoneinfo was readable
            watermark_ok:
              description:
                - Per order, whether an ordinary kernel allocation (GFP_KERNEL/GFP_NOFS kind - no access to
                  reserves, not movable) of that order would pass this zone's C(min) watermark check now,
                  i.e. be served without direct reclaim or compaction. false means the allocation must
                  reclaim or compact first (a stall) or fail; for the whole node see C(nodes).
                - An approximation of the kernel's C(__zone_watermark_ok) check from the numbers C(/proc) exposes, using the
                  kernel-era algorithm in C(watermark_check.algorithm) - C(2.6-4.3) (free pages in blocks below
                  the order stop counting, the bar halves per order) or C(4.4+) (order-0 watermark, then any
                  free block of the order or above on the Unmovable, Movable or Reclaimable lists).
                - The zone's lowmem_reserve for a Normal-class allocation applies, so DMA and DMA32 often
                  show false while Normal has room - the allocator uses Normal first.
              type: list
              elements: bool
              returned: when zoneinfo was readable
            watermark_ok_by_mark:
              description: The same verdict against each of C(min), C(low) (fast path; failing it wakes kswapd) and C(high).
              type: dict
              returned: when zoneinfo was readable
            watermark_check:
              description:
                - The inputs of the verdict - C(mark), C(algorithm), C(algorithm_from), C(class_zone),
                  C(lowmem_reserve_pages), C(free_cma_pages), C(unaccepted_pages) (zoneinfo's C(nr_unaccepted),
                  subtracted by kernels 6.5 to 6.11 only), C(highatomic_pages), C(highatomic_from),
                  C(per_order_lists).
              type: dict
              returned: when zoneinfo was readable
        nodes:
          description:
            - Per node, C(zones) (names), C(free_bytes), C(largest_free_order), and C(watermark_ok) per order -
              true when any zone of the node passes, which is the node's answer since the allocator falls back
              from zone to zone. Only zones a GFP_KERNEL allocation may use count (not C(HighMem), C(Movable)
              or C(Device)). C(watermark_ok) is absent without zoneinfo, and on a node with no such zone.
          type: list
          elements: dict
          returned: always
        vmstat:
          description:
            - Counters from C(/proc/vmstat) that tell the fragmentation story - every C(compact_*) (incl.
              C(compact_stall), C(compact_fail), C(compact_success), C(compact_daemon_wake) - kcompactd wakes),
              C(pgmigrate_*), C(thp_migration_*), C(allocstall*), C(drop_pagecache), C(drop_slab),
              C(pageoutrun), kswapd watermark hits, direct and kswapd scan/steal, C(thp_fault_fallback),
              C(oom_kill), C(nr_free_pages). Names as the running kernel has them. Empty when not read.
          type: dict
          returned: always
          sample: {"compact_stall": 308, "compact_fail": 135, "compact_success": 173}
        tunables:
          description:
            - Current values under C(sys/vm) of min_free_kbytes, watermark_scale_factor, watermark_boost_factor,
              extfrag_threshold, compaction_proactiveness, vfs_cache_pressure, swappiness, overcommit_memory,
              zone_reclaim_mode and lowmem_reserve_ratio; a tunable the kernel does not have is absent.
              Integers as int, other values (lowmem_reserve_ratio) as a string.
          type: dict
          returned: always
          sample: {"min_free_kbytes": 67584, "extfrag_threshold": 500}
        sources:
          description:
            - "Per file (C(buddyinfo), C(pagetypeinfo), C(zoneinfo), C(vmstat), C(sys/vm)): C(ok), C(missing),
              C(unreadable: REASON), C(malformed: MESSAGE WITH FILE AND LINE) or C(skipped) (not in O(gather_subset))."
          type: dict
          returned: always
          sample: {"buddyinfo": "ok", "pagetypeinfo": "unreadable: permission denied", "zoneinfo": "ok"}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.memfrag.linux.plugins.module_utils._facts.buddyinfo import gather
from ansible_collections.memfrag.linux.plugins.module_utils._procfs.files import ProcFileError, page_size_problem


def main():
    module = AnsibleModule(
        argument_spec=dict(
            proc_root=dict(type="path", default="/proc"),
            page_size=dict(type="int"),
            gather_subset=dict(type="list", elements="str", default=["all"]),
        ),
        supports_check_mode=True,
    )
    page_size = module.params["page_size"]
    problem = page_size_problem(page_size)
    if problem:
        module.fail_json(msg=problem)
    try:
        facts, warnings = gather(module.params["proc_root"], page_size, module.params["gather_subset"])
    except ProcFileError as exc:
        module.fail_json(msg=str(exc), path=exc.path, line=exc.line_number)
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    for warning in warnings:
        module.warn(warning)
    module.exit_json(changed=False, ansible_facts={"memfrag_buddyinfo": facts})


if __name__ == "__main__":
    main()
