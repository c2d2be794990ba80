#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)


DOCUMENTATION = r"""
module: meminfo_facts
short_description: Explain where a Linux host's memory went (meminfo, slab caches, process RSS)
version_added: 0.1.0
author: memfrag.linux contributors (@memfrag)
description:
  - Reads C(/proc/meminfo), C(/proc/slabinfo) and the C(statm) file of every process, and returns
    C(ansible_facts['memfrag_meminfo']).
  - 'Answers the classic question "C(free) says 14 GiB used, C(ps) says 0.6 GiB": used memory is split
    into anonymous memory, shmem/tmpfs, reclaimable and unreclaimable slab, page tables, kernel stacks,
    per-cpu, vmalloc, the hugetlb pool, the zswap pool and an unexplained remainder, and compared with
    the sum of process RSS. A one-sentence explanation with the numbers is included.'
  - Used memory is C(MemTotal - MemFree - Buffers - (Cached - Shmem)). Shmem (tmpfs, shared memory)
    lives inside C(Cached) but cannot be dropped like file cache, so it is counted as used here.
  - Works on every kernel era that writes C(/proc/meminfo) as C(MemTotal) lines of a name, a value and C(kB). Kernels before
    2.6.19 report only C(Slab) (the reclaimable/unreclaimable split is then null); kernels before
    3.14 have no C(MemAvailable) (an estimate is returned and marked so).
  - C(/proc/slabinfo) is root-only; when it is missing, unreadable or malformed the module warns and
    still returns the slab totals from C(/proc/meminfo).
  - Each file is read once and no command is run, so the module costs about as much as a ping.
options:
  page_size:
    description:
      - Base page size in bytes of the host whose files are read, used to convert C(slabinfo) and
        C(statm) page counts to bytes.
      - Defaults to the page size of the managed host. Set it when O(proc_root) holds files captured on
        a host with another page size (for example 65536 for arm64 with 64K pages).
    type: int
  top_slab_caches:
    description:
      - How many slab caches to return in RV(ansible_facts.memfrag_meminfo.slab.top_caches), largest
        memory first. V(0) returns none.
    type: int
    default: 10
  gather_subset:
    description:
      - Which optional sources to read, in the grammar of M(ansible.builtin.setup)'s O(ansible.builtin.setup#module:gather_subset)
        (the one O(memfrag.linux.buddyinfo_facts#module:gather_subset) uses too).
      - V(slabinfo) lists slab caches; V(processes) sums the RSS of every process; V(meminfo) is always read and
        cannot be excluded.
      - V(all) reads everything; V(!name) leaves a source out (a list of exclusions only starts from V(all)).
    type: list
    elements: str
    default: [all]
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.facts
  - memfrag.linux.proc_root
  - memfrag.linux.facts_module
notes:
  - Summed RSS over-counts memory shared between processes (libraries, shmem, mapped files are in
    the RSS of every process that maps them) and never includes kernel memory such as slab.
  - RV(ansible_facts.memfrag_meminfo.accounting.unexplained_bytes) is memory taken from the page
    allocator without a counter in C(/proc/meminfo) (drivers, GPU and network buffers, balloon
    drivers, per-cpu free lists). It can be negative when reported parts overlap.
seealso:
  - module: memfrag.linux.buddyinfo_facts
  - name: The /proc/meminfo documentation
    description: Meaning of every field, in the kernel's own documentation.
    link: https://www.kernel.org/doc/html/latest/filesystems/proc.html#meminfo
"""

EXAMPLES = r"""
- name: Gather memory accounting facts
  memfrag.linux.meminfo_facts:

- name: Say where the memory went
  ansible.builtin.debug:
    msg: "{{ ansible_facts['memfrag_meminfo']['accounting']['explanation'] }}"

- name: Analyse an extracted sosreport taken on an arm64 host with 64K pages
  memfrag.linux.meminfo_facts:
    proc_root: /srv/sosreports/db01/proc
    page_size: 65536
    gather_subset: [meminfo, slabinfo]
    top_slab_caches: 5

- name: Flag hosts where slab holds more than half of the used memory
  ansible.builtin.set_fact:
    slab_heavy: >-
      {{ ansible_facts['memfrag_meminfo']['slab']['total_bytes']
         > ansible_facts['memfrag_meminfo']['accounting']['used_bytes'] / 2 }}
"""

RETURN = r"""
ansible_facts:
  description: Facts added to the host.
  returned: always
  type: dict
  contains:
    memfrag_meminfo:
      description: Where the memory of the host went.
      returned: always
      type: dict
      contains:
        meminfo:
          description:
            - Every field of C(/proc/meminfo), named as the kernel spells it.
            - Fields in kB are converted to bytes; C(HugePages_Total), C(HugePages_Free),
              C(HugePages_Rsvd) and C(HugePages_Surp) are page counts.
          returned: always
          type: dict
          sample: {"MemTotal": 25276514304, "MemFree": 23748612096, "SReclaimable": 90750976, "HugePages_Total": 0}
        slab:
          description: Slab allocator memory.
          returned: always
          type: dict
          contains:
            total_bytes:
              description: Memory in slab caches (C(Slab) of meminfo, else the sum over slabinfo); null when neither is available.
              type: int
              sample: 115609600
            reclaimable_bytes:
              description: C(SReclaimable) (dentries, inodes...); null on kernels before 2.6.19 that report only C(Slab).
              type: int
              sample: 90750976
            unreclaimable_bytes:
              description: C(SUnreclaim); null on kernels before 2.6.19.
              type: int
              sample: 24858624
            top_caches:
              description:
                - The largest caches by memory from C(/proc/slabinfo), largest first, at most O(top_slab_caches).
                - Empty when slabinfo was not read.
              type: list
              elements: dict
              contains:
                name:
                  description: Cache name.
                  type: str
                  sample: dentry
                active_objects:
                  description: Objects in use.
                  type: int
                objects:
                  description: Objects allocated (in use and free).
                  type: int
                object_size:
                  description: Size of one object in bytes, padding included.
                  type: int
                bytes:
                  description: Memory held by the cache's slabs (slabs * pages per slab * page size).
                  type: int
            caches_bytes:
              description: Sum of C(bytes) over all caches in slabinfo; null when slabinfo was not read.
              type: int
            source:
              description: Where C(total_bytes) came from.
              type: str
              choices: [meminfo, slabinfo, none]
        processes:
          description: Process memory as C(ps) sees it; null when the V(processes) subset was not gathered.
          returned: always
          type: dict
          contains:
            count:
              description: Processes read (kernel threads included; processes that exited meanwhile are skipped).
              type: int
            rss_bytes:
              description: Sum of the resident set sizes.
              type: int
            without_rss:
              description: Processes with no resident memory (kernel threads, fully swapped-out processes).
              type: int
        accounting:
          description: The split of used memory. A part that this kernel does not report is null.
          returned: always
          type: dict
          contains:
            total_bytes:
              description: C(MemTotal).
              type: int
            free_bytes:
              description: C(MemFree).
              type: int
            available_bytes:
              description: C(MemAvailable), or on kernels before 3.14 the estimate free + buffers + page cache + reclaimable slab.
              type: int
            available_source:
              description: Whether RV(ansible_facts.memfrag_meminfo.accounting.available_bytes) is the kernel's figure or the estimate.
              type: str
              choices: [meminfo, estimate]
            buffers_bytes:
              description: C(Buffers).
              type: int
            page_cache_bytes:
              description: File cache that can be dropped, C(Cached - Shmem).
              type: int
            used_bytes:
              description: C(MemTotal - MemFree - Buffers - page_cache_bytes).
              type: int
            anon_bytes:
              description: C(AnonPages), private memory of processes (transparent huge pages included).
              type: int
            shmem_bytes:
              description: C(Shmem), tmpfs and shared memory (inside C(Cached), but not droppable).
              type: int
            slab_bytes:
              description: C(Slab).
              type: int
            slab_reclaimable_bytes:
              description: C(SReclaimable).
              type: int
            slab_unreclaimable_bytes:
              description: C(SUnreclaim).
              type: int
            kernel_reclaimable_other_bytes:
              description: C(KReclaimable - SReclaimable), reclaimable kernel memory outside slab (4.20+).
              type: int
            page_tables_bytes:
              description: C(PageTables) plus C(SecPageTables) where present.
              type: int
            kernel_stack_bytes:
              description: C(KernelStack).
              type: int
            percpu_bytes:
              description: C(Percpu) (4.16+).
              type: int
            vmalloc_bytes:
              description:
                - C(VmallocUsed - KernelStack) on kernels where C(VmallocUsed) counts pages (those that report C(Percpu));
                  kernel stacks are vmalloc'd and already counted. Null on older kernels, where C(VmallocUsed) is address space.
              type: int
            hugepages_bytes:
              description: The hugetlb pool, C(Hugetlb) or C(HugePages_Total * Hugepagesize), used or not.
              type: int
            zswap_bytes:
              description: C(Zswap), the compressed swap cache pool.
              type: int
            explained_bytes:
              description: Sum of the parts above that make up used memory.
              type: int
            unexplained_bytes:
              description: C(used_bytes - explained_bytes); negative when parts overlap.
              type: int
            process_rss_bytes:
              description: Summed process RSS; null when processes were not read.
              type: int
            rss_gap_bytes:
              description: C(used_bytes - process_rss_bytes), the memory C(ps) does not show; null when processes were not read.
              type: int
            explanation:
              description: One plain-language sentence with the numbers.
              type: str
              sample: >-
                2.75 GiB of 7.64 GiB is used (526.1 MiB free, 4.38 GiB of file cache and buffers not counted):
                reclaimable slab 1.86 GiB, shmem/tmpfs 450.5 MiB, anonymous 347.2 MiB, unreclaimable slab 36.5 MiB;
                68.3 MiB is not explained by /proc/meminfo.
        page_size:
          description: Page size used for the conversions.
          type: int
          returned: always
          sample: 4096
        sources:
          description:
            - What happened to each source, keyed C(meminfo), C(slabinfo) and C(pid/statm).
            - V(ok), V(missing), V(skipped) (not in O(gather_subset)), or V(unreadable) followed by a colon and the reason.
          returned: always
          type: dict
          sample: {"meminfo": "ok", "slabinfo": "unreadable: /proc/slabinfo: permission denied", "pid/statm": "ok"}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.memfrag.linux.plugins.module_utils._facts.meminfo import gather
from ansible_collections.memfrag.linux.plugins.module_utils._procfs.files import ProcFileError, page_size_of_host, page_size_problem


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            proc_root=dict(type="path", default="/proc"),
            page_size=dict(type="int"),
            top_slab_caches=dict(type="int", default=10),
            gather_subset=dict(type="list", elements="str", default=["all"]),
        ),
        supports_check_mode=True,
    )
    params = module.params
    page_size = params["page_size"]
    problem = page_size_problem(page_size)
    if problem:
        module.fail_json(msg=problem)
    if page_size is None:
        page_size = page_size_of_host()

    try:
        facts, warnings = gather(params["proc_root"], page_size, params["top_slab_caches"], params["gather_subset"])
    except ProcFileError as exc:
        module.fail_json(msg="cannot account memory: %s" % exc, path=exc.path, line=exc.line_number)
    except ValueError as exc:
        module.fail_json(msg=str(exc))

    for warning in warnings:
        module.warn(warning)
    module.exit_json(changed=False, ansible_facts={"memfrag_meminfo": facts})


if __name__ == "__main__":
    main()
