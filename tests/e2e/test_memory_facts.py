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
