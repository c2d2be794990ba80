#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: memory_facts
short_description: buddyinfo_facts and meminfo_facts in one module run
version_added: 0.1.0
author: memfrag.linux contributors (@memfrag)
description:
  - Sets both C(ansible_facts['memfrag_buddyinfo']) (as M(memfrag.linux.buddyinfo_facts) does) and
    C(ansible_facts['memfrag_meminfo']) (as M(memfrag.linux.meminfo_facts) does) from one run on the target.
  - On a fleet most of a facts module's cost is starting Python and Ansible on each host, not reading C(/proc);
    one run instead of two halves that. The C(memfrag.linux.diagnose) role uses this module.
  - The meminfo part uses the page size the buddyinfo part found (given, the host's, or inferred for a capture).
  - With O(judge=true) it also judges the host on the target, as the P(memfrag.linux.findings#filter) and
    P(memfrag.linux.verdict#filter) filters do, and sets C(memfrag_findings), C(memfrag_verdict) and
    C(memfrag_log_counts), the facts of the C(memfrag.linux.diagnose) role, without a controller task per host.
options:
  judge:
    description:
      - Also set C(memfrag_findings), C(memfrag_verdict) and C(memfrag_log_counts) (see RV(ansible_facts)).
    type: bool
    default: false
  thresholds:
    description:
      - With O(judge=true), overrides of the judging defaults; the keys are those of the
        P(memfrag.linux.findings#filter) filter's C(thresholds) (C(order), C(zones), C(min_zone_mb), C(unusable_warning),
        C(unusable_critical), C(min_high_order_free_mb), C(unexplained_warning), C(slab_reclaimable_warning)).
    type: dict
    default: {}
  log_scan:
    description:
      - With O(judge=true), the C(counts), C(first_seen) and C(last_seen) of a M(memfrag.linux.kernel_log_scan) result,
        so that kernel log events are part of the findings. Omit it when logs were not scanned.
    type: dict
  page_size:
    description:
      - Base page size in bytes of the host the files come from.
      - Default is the running host's for O(proc_root=/proc), and inferred from meminfo and zoneinfo for other trees.
    type: int
  buddyinfo_subset:
    description:
      - The O(memfrag.linux.buddyinfo_facts#module:gather_subset) of the buddyinfo part.
    type: list
    elements: str
    default: [all]
  meminfo_subset:
    description:
      - The O(memfrag.linux.meminfo_facts#module:gather_subset) of the meminfo part.
    type: list
    elements: str
    choices: [all, meminfo, slabinfo, processes]
    default: [all]
  top_slab_caches:
    description: How many of the largest slab caches to list.
    type: int
    default: 10
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.facts
  - memfrag.linux.proc_root
attributes:
  check_mode:
    support: full
    details: Only reads files; the same facts are returned in check mode.
  diff_mode:
    support: none
  facts:
    support: full
  platform:
    platforms: posix
notes:
  - A missing or malformed C(buddyinfo) or C(meminfo) fails the module naming the file and line; every other file is
    optional and its absence is a warning.
seealso:
  - module: memfrag.linux.buddyinfo_facts
  - module: memfrag.linux.meminfo_facts
"""

EXAMPLES = r"""
- name: Free memory by order and where memory went, in one run
  memfrag.linux.memory_facts:

- name: Facts and the diagnose judgement at order 3, with the kernel log counts of a scan
  memfrag.linux.memory_facts:
    judge: true
    thresholds: {order: 3}
    log_scan: "{{ scan }}"

- name: Same for an extracted sosreport, without the costly pagetypeinfo read
  memfrag.linux.memory_facts:
    proc_root: /srv/sos/db01/proc
    buddyinfo_subset: [all, '!pagetypeinfo']
"""

RETURN = r"""
ansible_facts:
  description: Facts added to the host.
  returned: always
  type: complex
  contains:
    memfrag_buddyinfo:
      description: Exactly what M(memfrag.linux.buddyinfo_facts) returns (see its documentation).
      returned: always
      type: dict
    memfrag_meminfo:
      description: Exactly what M(memfrag.linux.meminfo_facts) returns (see its documentation).
      returned: always
      type: dict
    memfrag_findings:
      description:
        - Plain-language findings, most severe first, each with C(severity) (critical, warning or info), C(code),
          C(message), C(numbers) and, for zone findings, C(node) and C(zone).
      returned: with O(judge=true)
      type: list
      elements: dict
      sample:
        - severity: critical
          code: no_high_order_blocks
          message: "Normal zone node 0: no free block of order >= 4; 100% of free memory is unusable for order-4 requests; largest free block 32 KiB"
          node: 0
          zone: Normal
          numbers: {order: 4, free_bytes: 277405696, free_bytes_at_or_above_order: 0}
    memfrag_verdict:
      description: The worst severity (critical, warning or ok), a one-line C(summary) and C(counts) per severity.
      returned: with O(judge=true)
      type: dict
      sample: {severity: critical, summary: "Normal zone node 0: no free block of order >= 4", counts: {critical: 1, warning: 0, info: 2}}
    memfrag_log_counts:
      description: O(log_scan)'s C(counts), C(first_seen) and C(last_seen), or null when it was not given.
      returned: with O(judge=true)
      type: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.memfrag.linux.plugins.module_utils._buddyinfo_facts import gather as gather_buddyinfo
from ansible_collections.memfrag.linux.plugins.module_utils._findings import host_findings, verdict
from ansible_collections.memfrag.linux.plugins.module_utils._memory_accounting import GATHER_SUBSETS
from ansible_collections.memfrag.linux.plugins.module_utils._memory_accounting import gather as gather_meminfo
from ansible_collections.memfrag.linux.plugins.module_utils._procfs import ProcFileError


def main():
    module = AnsibleModule(
        argument_spec=dict(
            proc_root=dict(type="path", default="/proc"),
            page_size=dict(type="int"),
            buddyinfo_subset=dict(type="list", elements="str", default=["all"]),
            meminfo_subset=dict(type="list", elements="str", default=["all"], choices=["all"] + list(GATHER_SUBSETS)),
            top_slab_caches=dict(type="int", default=10),
            judge=dict(type="bool", default=False),
            thresholds=dict(type="dict", default={}),
            log_scan=dict(type="dict"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    page_size = params["page_size"]
    if page_size is not None and (page_size < 512 or page_size & (page_size - 1)):
        module.fail_json(msg="page_size must be a power of two of at least 512, got %d" % page_size)
    if params["top_slab_caches"] < 0:
        module.fail_json(msg="top_slab_caches must be 0 or more, got %d" % params["top_slab_caches"])
    meminfo_subsets = GATHER_SUBSETS if "all" in params["meminfo_subset"] else params["meminfo_subset"]
    try:
        buddyinfo, warnings = gather_buddyinfo(params["proc_root"], page_size, params["buddyinfo_subset"])
        meminfo, meminfo_warnings = gather_meminfo(params["proc_root"], buddyinfo["page_size"],
                                                   params["top_slab_caches"], meminfo_subsets)
    except ProcFileError as exc:
        module.fail_json(msg=str(exc), path=exc.path, line=exc.line_number)
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    for warning in warnings + meminfo_warnings:
        module.warn(warning)
    facts = {"memfrag_buddyinfo": buddyinfo, "memfrag_meminfo": meminfo}
    if params["judge"]:
        log_scan = params["log_scan"]
        if log_scan is not None:
            log_scan = dict((key, log_scan.get(key) or {}) for key in ("counts", "first_seen", "last_seen"))
        try:
            findings = host_findings(buddyinfo, meminfo, log_scan, params["thresholds"])
        except (TypeError, ValueError, KeyError) as exc:
            module.fail_json(msg="cannot judge the host with thresholds %r and log_scan counts: %s" % (params["thresholds"], exc))
        facts.update(memfrag_findings=findings, memfrag_verdict=verdict(findings), memfrag_log_counts=log_scan)
    module.exit_json(changed=False, ansible_facts=facts)


if __name__ == "__main__":
    main()
