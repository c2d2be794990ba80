#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)


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
  host:
    description:
      - With O(judge=true), the host's inventory name, used in the C(remedy) of each finding
        (C(ansible-playbook memfrag.linux.reclaim --limit HOST ...)); shell-quoted there. Unset prints C(HOST).
    type: str
  thresholds_from:
    description:
      - Prefix of the variables the O(thresholds) came from, so that a bad value is reported under the name the user
        typed. The C(memfrag.linux.diagnose) role passes V(diagnose_), so C(-e diagnose_order=abc) fails naming
        C(diagnose_order). Unset, the message names the option, as in C(thresholds - threshold order ...).
    type: str
  fail_on:
    description:
      - With O(judge=true), fail the module run (after judging) when the verdict is at or above this severity, with the
        verdict and its remedies as the message, so that C(ansible-playbook) exits non-zero for cron, CI or monitoring.
      - V(none) never fails for the verdict. A failed run sets no facts.
    type: str
    choices: [none, warning, critical]
    default: none
  thresholds:
    description:
      - With O(judge=true), overrides of the judging defaults, as in the P(memfrag.linux.findings#filter) filter's
        C(thresholds). An option left unset keeps its default.
      - Orders and sizes are integers, shares numbers between 0 and 1 (given as numbers or numeric strings). A value of
        the wrong kind or out of range (a share outside 0-1, a negative order or size, O(thresholds.unusable_warning)
        above O(thresholds.unusable_critical)) fails the module with a message naming it (see O(thresholds_from)).
    type: dict
    default: {}
    suboptions:
      order:
        description: The allocation order that matters, an integer (default 4, 64 KiB with 4 KiB pages).
        type: raw
      zones:
        description: Zones that are judged (default DMA32, Normal, Movable, HighMem).
        type: list
        elements: str
        choices: [DMA, DMA32, Normal, HighMem, Movable, Device]
      min_zone_mb:
        description: Zones with less managed memory than this are left out (default 256).
        type: raw
      unusable_warning:
        description: Unusable free index at O(thresholds.order) (0-1) from which a zone gets a warning (default 0.75).
        type: raw
      unusable_critical:
        description: Unusable free index at O(thresholds.order) (0-1) from which a zone is critical (default 0.95).
        type: raw
      min_high_order_free_mb:
        description: A zone with less free memory than this in blocks of order >= O(thresholds.order) gets a warning (default 64).
        type: raw
      unexplained_warning:
        description: Share of RAM used but explained by no counter from which a warning is given (default 0.10).
        type: raw
      slab_reclaimable_warning:
        description: Share of RAM in reclaimable slab from which a warning is given (default 0.25).
        type: raw
  log_scan:
    description:
      - With O(judge=true), the C(counts), C(first_seen) and C(last_seen) of a M(memfrag.linux.kernel_log_scan) result,
        so that kernel log events are part of the findings. Omit it when logs were not scanned.
      - Mutually exclusive with O(kernel_log).
    type: dict
  kernel_log:
    description:
      - Scan this host's kernel logs in the same run, as M(memfrag.linux.kernel_log_scan) does with these options, and
        return its result in RV(kernel_log_scan). With O(judge=true) its counts are part of the findings.
      - The scan reads the running host's ring buffer, journal and log files; O(proc_root) does not apply to it.
      - Unset (null) means no scan. The options mean what they mean for M(memfrag.linux.kernel_log_scan).
      - There is no state file here, so every run reports the whole O(kernel_log.since) window.
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
        description: Only events newer than this (V(24h), V(7d), seconds, or an ISO 8601 time or date).
        type: str
      kernel_release:
        description: Kernel release whose GFP bit layout decodes C(mode:0x...) values; default is the running kernel.
        type: str
      max_events:
        description: Keep at most this many events (the newest); counts stay exact.
        type: int
        default: 100
      include_userspace_kmsg:
        description: Also count kernel-looking lines that a process wrote into C(/dev/kmsg).
        type: bool
        default: false
  xfs_files:
    description:
      - Find the XFS files behind XFS allocation deadlocks, in the same run, as M(memfrag.linux.xfs_extent_scan) does,
        and set RV(ansible_facts.memfrag_xfs_files); with O(judge=true) a finding names them.
      - Starts from the processes the O(kernel_log) scan's XFS deadlock events name (their open files); when no event
        names a running process, scans O(xfs_files.paths) (every XFS mount by default) within the bounds below.
      - Unset (null) means no XFS scan. Only for this host (O(proc_root=/proc)); a capture is not scanned.
    type: dict
    suboptions:
      scan:
        description: V(auto) scans only when the kernel log scan counted XFS deadlocks; V(always) scans anyway.
        type: str
        choices: [auto, always]
        default: auto
      paths:
        description: Directories to scan when no event names a running process; empty means every XFS mount.
        type: list
        elements: path
        default: []
      min_extents:
        description: Files with at least this many extents are reported.
        type: int
        default: 10000
      max_files:
        description: Directory entries examined at most.
        type: int
        default: 1000000
      time_limit:
        description: Seconds the XFS scan may take.
        type: float
        default: 30
      max_results:
        description: Files kept, those with the most extents.
        type: int
        default: 10
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
      - The O(memfrag.linux.meminfo_facts#module:gather_subset) of the meminfo part (V(all), names, V(!name)).
    type: list
    elements: str
    default: [all]
  top_slab_caches:
    description: How many of the largest slab caches to list.
    type: int
    default: 10
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.facts
  - memfrag.linux.proc_root
  - memfrag.linux.facts_module
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

- name: Facts, a scan of the last week's kernel logs and the judgement, in one run per host
  memfrag.linux.memory_facts:
    judge: true
    kernel_log:
      since: 7d

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
          C(message), C(numbers), for zone findings C(node) and C(zone), and for warning and critical findings a
          C(remedy), which says what to run on this host, with its values, and why it helps.
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
          remedy: "now: ansible-playbook memfrag.linux.reclaim --limit web1 -e reclaim_target_order=4 (compacts first, ..."
    memfrag_verdict:
      description:
        - The worst severity (critical, warning or ok), a one-line C(summary), C(counts) per severity, C(lines) (what
          the diagnose role prints, the verdict line and then each finding followed by its remedy) and C(remedies) (each
          distinct remedy once, most severe finding first).
      returned: with O(judge=true)
      type: dict
      sample: {severity: critical, summary: "Normal zone node 0: no free block of order >= 4", counts: {critical: 1, warning: 0, info: 2},
               lines: ["CRITICAL: Normal zone node 0: no free block of order >= 4", "critical: Normal zone node 0: ...",
                       "  remedy: now: ansible-playbook memfrag.linux.reclaim --limit web1 ..."],
               remedies: ["now: ansible-playbook memfrag.linux.reclaim --limit web1 ..."]}
    memfrag_log_counts:
      description:
        - The C(counts), C(first_seen) and C(last_seen) of O(log_scan) or of the O(kernel_log) scan, or null when
          logs were not scanned.
      returned: with O(judge=true)
      type: dict
    memfrag_xfs_files:
      description:
        - With O(xfs_files), what the XFS scan found (C(files) with C(path), C(mount), C(size), C(extents), C(alloc_bytes),
          C(alloc_order), C(open_by); C(found), C(min_extents), C(era), C(log_processes), C(stopped_early)), as in
          M(memfrag.linux.xfs_extent_scan); or C(scanned=false) and the C(reason) when it did not scan.
      returned: when O(xfs_files) is set
      type: dict
kernel_log_scan:
  description:
    - What M(memfrag.linux.kernel_log_scan) returns for the same options (C(counts), C(first_seen), C(last_seen),
      C(events), C(sources), C(skipped_sources), C(since), C(kernel_release) and the rest; see its documentation).
  returned: when O(kernel_log) is set
  type: dict
  sample: {counts: {xfs_alloc_deadlock: 2, page_alloc_failure: 0, page_alloc_stall: 0, hung_task: 1, oom_kill: 0},
           skipped_sources: [journal], since: "2024-03-01T08:00:00+00:00"}
"""

import re
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.memfrag.linux.plugins.module_utils._facts.buddyinfo import gather as gather_buddyinfo
from ansible_collections.memfrag.linux.plugins.module_utils._findings.judge import THRESHOLD_OPTIONS, check_thresholds, fails, host_findings, verdict
from ansible_collections.memfrag.linux.plugins.module_utils._kernel_log.options import SCAN_OPTIONS, warnings_to_show
from ansible_collections.memfrag.linux.plugins.module_utils._facts.meminfo import gather as gather_meminfo
from ansible_collections.memfrag.linux.plugins.module_utils._procfs.files import ProcFileError, page_size_problem
from ansible_collections.memfrag.linux.plugins.module_utils._kernel_log.result import log_scan_problem as log_problem
from ansible_collections.memfrag.linux.plugins.module_utils._xfs.options import XFS_FILES_OPTIONS


def main():
    module = AnsibleModule(
        argument_spec=dict(
            proc_root=dict(type="path", default="/proc"),
            page_size=dict(type="int"),
            buddyinfo_subset=dict(type="list", elements="str", default=["all"]),
            meminfo_subset=dict(type="list", elements="str", default=["all"]),
            top_slab_caches=dict(type="int", default=10),
            judge=dict(type="bool", default=False),
            host=dict(type="str"),
            fail_on=dict(type="str", default="none", choices=["none", "warning", "critical"]),
            thresholds_from=dict(type="str"),
            thresholds=dict(type="dict", default={}, options=THRESHOLD_OPTIONS),
            log_scan=dict(type="dict"),
            kernel_log=dict(type="dict", options=SCAN_OPTIONS),
            xfs_files=dict(type="dict", options=XFS_FILES_OPTIONS),
        ),
        mutually_exclusive=[("log_scan", "kernel_log")],
        supports_check_mode=True,
    )
    params = module.params
    page_size = params["page_size"]
    problem = page_size_problem(page_size)
    if problem:
        module.fail_json(msg=problem)
    try:
        check_thresholds(params["thresholds"])
    except ValueError as exc:
        prefix = params["thresholds_from"]
        if prefix:
            # "threshold order must be ..." -> "diagnose_order must be ...": the name the user typed.
            module.fail_json(msg=re.sub(r"\bthreshold (\w+)", lambda m: prefix + m.group(1), str(exc)))
        module.fail_json(msg="thresholds: %s" % exc)
    try:
        buddyinfo, warnings = gather_buddyinfo(params["proc_root"], page_size, params["buddyinfo_subset"])
        meminfo, meminfo_warnings = gather_meminfo(params["proc_root"], buddyinfo["page_size"],
                                                   params["top_slab_caches"], params["meminfo_subset"])
    except ProcFileError as exc:
        module.fail_json(msg=str(exc), path=exc.path, line=exc.line_number)
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    for warning in warnings + meminfo_warnings:
        module.warn(warning)
    facts = {"memfrag_buddyinfo": buddyinfo, "memfrag_meminfo": meminfo}
    result = {}
    log_scan = params["log_scan"]
    if log_problem(log_scan):
        module.fail_json(msg=log_problem(log_scan))
    if params["kernel_log"] is not None:
        # Imported here: the scanner is the largest code in the collection, and a module compiles what it imports
        # on the target at every run; hosts that do not scan (captures, a fleet diagnose) do not pay for it.
        from ansible_collections.memfrag.linux.plugins.module_utils._kernel_log.scan import run_scan
        from ansible_collections.memfrag.linux.plugins.module_utils._kernel_log.state import empty_state
        scan_warnings = []
        try:
            log_scan, dummy = run_scan(params["kernel_log"], empty_state(), scan_warnings.append, module.get_bin_path("journalctl"),
                                       time.time())
        except ValueError as exc:
            module.fail_json(msg="kernel_log: %s" % exc)
        for warning in warnings_to_show(scan_warnings):
            module.warn("kernel_log: %s" % warning)
        result["kernel_log_scan"] = log_scan
    if params["xfs_files"] is not None:
        # Imported here for the same reason as the log scanner: only hosts that scan compile it.
        from ansible_collections.memfrag.linux.plugins.module_utils._xfs.scan import host_files
        try:
            facts["memfrag_xfs_files"], xfs_warnings = host_files(params["xfs_files"], log_scan, params["proc_root"])
        except (ProcFileError, ValueError) as exc:
            module.fail_json(msg="xfs_files: %s" % exc)
        for warning in xfs_warnings:
            module.warn("xfs_files: %s" % warning)
    if params["judge"]:
        if log_scan is not None:
            log_scan = dict((key, log_scan.get(key) or {}) for key in ("counts", "first_seen", "last_seen"))
        try:
            findings = host_findings(buddyinfo, meminfo, log_scan, params["thresholds"], params["host"], facts.get("memfrag_xfs_files"))
        except (TypeError, ValueError, KeyError) as exc:
            module.fail_json(msg="cannot judge the host with thresholds %r and log_scan counts: %s" % (params["thresholds"], exc))
        host_verdict = verdict(findings)
        facts.update(memfrag_findings=findings, memfrag_verdict=host_verdict, memfrag_log_counts=log_scan)
        if fails(host_verdict["severity"], params["fail_on"]):
            module.fail_json(msg="\n".join(host_verdict["lines"]), verdict=host_verdict, findings=findings, **result)
    module.exit_json(changed=False, ansible_facts=facts, **result)


if __name__ == "__main__":
    main()
