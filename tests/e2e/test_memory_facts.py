# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""memory_facts: the two facts modules' results from one module run."""

from __future__ import annotations

import os

PLAY = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: separate buddyinfo
      memfrag.linux.buddyinfo_facts:
        proc_root: "{{ root }}"
        gather_subset: [all, '!pagetypeinfo']
    - name: separate meminfo
      memfrag.linux.meminfo_facts:
        proc_root: "{{ root }}"
        page_size: "{{ ansible_facts['memfrag_buddyinfo']['page_size'] }}"
        gather_subset: [meminfo, slabinfo]
    - name: combined
      memfrag.linux.memory_facts:
        proc_root: "{{ root }}"
        buddyinfo_subset: [all, '!pagetypeinfo']
        meminfo_subset: [meminfo, slabinfo]
"""

COMBINED_ONLY = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: combined
      memfrag.linux.memory_facts:
        proc_root: "{{ root }}"
"""


def test_combined_equals_separate_on_a_capture(run_playbook, fixtures_dir):
    # A static tree, so both ways must agree to the byte (the live /proc changes between reads).
    root = os.path.join(fixtures_dir, "proc", "buddyinfo-arm64-64k-14orders")
    run = run_playbook(PLAY, extra_vars={"root": root})
    assert run.rc == 0, run.stdout[-3000:]
    combined = run.task_result("combined")["ansible_facts"]
    assert combined["memfrag_buddyinfo"] == run.task_result("separate buddyinfo")["ansible_facts"]["memfrag_buddyinfo"]
    assert combined["memfrag_meminfo"] == run.task_result("separate meminfo")["ansible_facts"]["memfrag_meminfo"]
    # The meminfo part used the page size inferred for this 64K-page capture.
    assert combined["memfrag_buddyinfo"]["page_size"] == 65536
    assert combined["memfrag_meminfo"]["page_size"] == 65536


def test_missing_meminfo_fails_naming_the_file(run_playbook, fixtures_dir, tmp_path):
    with open(os.path.join(fixtures_dir, "proc", "diagnose-fragmented", "buddyinfo")) as handle:
        (tmp_path / "buddyinfo").write_text(handle.read())
    run = run_playbook(COMBINED_ONLY, extra_vars={"root": str(tmp_path)})
    assert run.rc != 0
    result = run.task_result("combined")
    assert result["failed"] and "meminfo" in result["msg"] and "does not exist" in result["msg"]


SCAN_IN_ONE_RUN = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: scan alone
      memfrag.linux.kernel_log_scan:
        sources: [files]
        paths: ["{{ log }}"]
        kernel_release: 3.10.0-1160.el7.x86_64
    - name: scan and judge in one run
      memfrag.linux.memory_facts:
        proc_root: "{{ root }}"
        judge: true
        kernel_log:
          sources: [files]
          paths: ["{{ log }}"]
          kernel_release: 3.10.0-1160.el7.x86_64
"""


def test_kernel_log_scans_in_the_same_run_and_is_judged(run_playbook, fixtures_dir):
    root = os.path.join(fixtures_dir, "proc", "diagnose-fragmented")
    log = os.path.join(fixtures_dir, "logs", "rhel7-messages-with-spoofs.log")
    run = run_playbook(SCAN_IN_ONE_RUN, extra_vars={"root": root, "log": log})
    assert run.rc == 0, run.stdout[-3000:]
    alone = run.task_result("scan alone")
    combined = run.task_result("scan and judge in one run")
    scan = combined["kernel_log_scan"]
    # The same scanner with the same options: the same answer as the module of its own.
    for key in ("counts", "first_seen", "last_seen", "events", "ignored", "skipped_sources", "kernel_release"):
        assert scan[key] == alone[key], key
    # rhel7-messages-with-spoofs.log: two kernel XFS deadlock lines (the root: and sshd lines are spoofs),
    # one hung task, one OOM kill, one order-4 failure.
    assert scan["counts"] == {"xfs_alloc_deadlock": 2, "page_alloc_failure": 1, "page_alloc_stall": 0,
                              "hung_task": 1, "oom_kill": 1}
    facts = combined["ansible_facts"]
    assert facts["memfrag_log_counts"]["counts"] == scan["counts"]
    codes = [f["code"] for f in facts["memfrag_findings"]]
    assert "xfs_alloc_deadlock_logged" in codes and "page_alloc_failure_logged" in codes
    assert "page_alloc_stall_logged" not in codes


def test_kernel_log_and_log_scan_are_mutually_exclusive(run_playbook, fixtures_dir):
    run = run_playbook("""
- hosts: localhost
  gather_facts: false
  tasks:
    - name: both
      memfrag.linux.memory_facts:
        proc_root: "{{ root }}"
        judge: true
        log_scan: {counts: {}}
        kernel_log: {sources: [files]}
""", extra_vars={"root": os.path.join(fixtures_dir, "proc", "diagnose-fragmented")})
    assert run.rc != 0
    assert "mutually exclusive: log_scan|kernel_log" in run.task_result("both")["msg"]


def test_kernel_log_bad_release_fails_naming_the_option(run_playbook, fixtures_dir):
    run = run_playbook("""
- hosts: localhost
  gather_facts: false
  tasks:
    - name: bad release
      memfrag.linux.memory_facts:
        proc_root: "{{ root }}"
        kernel_log: {sources: [files], kernel_release: linux}
""", extra_vars={"root": os.path.join(fixtures_dir, "proc", "diagnose-fragmented")})
    assert run.rc != 0
    assert run.task_result("bad release")["msg"].startswith("kernel_log: kernel_release: not a kernel release")
