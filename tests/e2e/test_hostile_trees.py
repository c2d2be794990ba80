# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The facts modules through real ansible-playbook runs on trees with FIFOs where kernel files belong (issue 10).

Before the fix every one of these runs hung forever in open(). Each run has a timeout, and the teardown
opens every FIFO for writing once, which releases a reader that would still be blocked, so a regression
fails the test instead of leaving module processes behind.
"""

from __future__ import annotations

import errno
import os
import shutil
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURE_TREE = os.path.join(os.path.dirname(HERE), "fixtures", "proc", "buddyinfo-x86-3zone-el8")

PLAY = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: buddyinfo_facts
      memfrag.linux.buddyinfo_facts:
        proc_root: {root}
      ignore_errors: true
    - name: meminfo_facts
      memfrag.linux.meminfo_facts:
        proc_root: {root}
        page_size: 4096
      ignore_errors: true
    - name: memory_facts
      memfrag.linux.memory_facts:
        proc_root: {root}
        judge: true
      ignore_errors: true
"""


@pytest.fixture
def fifo_tree(tmp_path):
    """make(names): a copy of a valid proc tree where each of ``names`` is a FIFO; FIFOs are released at teardown."""
    fifos = []

    def make(names):
        root = str(tmp_path / ("proc%d" % len(fifos)))
        shutil.copytree(FIXTURE_TREE, root)
        for name in names:
            path = os.path.join(root, name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            if os.path.exists(path):
                os.unlink(path)
            os.mkfifo(path)
            fifos.append(path)
        return root

    yield make
    for path in fifos:
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))  # a blocked reader gets EOF
        except OSError as exc:
            assert exc.errno in (errno.ENXIO, errno.ENOENT)  # ENXIO: no reader, nothing hung


def test_fifo_required_files_fail_at_once(run_playbook, fifo_tree):
    root = fifo_tree(["buddyinfo", "meminfo"])
    started = time.monotonic()
    run = run_playbook(PLAY.format(root=root), timeout=240)
    elapsed = time.monotonic() - started
    for task, name in (("buddyinfo_facts", "buddyinfo"), ("meminfo_facts", "meminfo"), ("memory_facts", "buddyinfo")):
        result = run.task_result(task)
        assert result.get("failed"), result
        assert result["msg"].endswith("%s/%s: is a named pipe (FIFO), not a regular file; refusing to read it" % (root, name)), result["msg"]
        # fail_json's own message, not a module crash (which would say MODULE FAILURE and carry module_stderr).
        assert "module_stderr" not in result and "MODULE FAILURE" not in result["msg"]
    assert elapsed < 200, elapsed


def test_fifo_optional_files_warn_and_the_run_goes_on(run_playbook, fifo_tree):
    root = fifo_tree(["zoneinfo", "pagetypeinfo", "vmstat", "slabinfo", "sys/vm/swappiness", "sys/kernel/osrelease",
                      "4242/statm"])
    with open(os.path.join(root, "4242", "status"), "w") as handle:
        handle.write("Name:\tx\nVmRSS:\t100 kB\n")
    run = run_playbook(PLAY.format(root=root), timeout=240)
    buddy = run.task_result("buddyinfo_facts")
    assert not buddy.get("failed"), buddy
    facts = buddy["ansible_facts"]["memfrag_buddyinfo"]
    for name in ("zoneinfo", "pagetypeinfo", "vmstat"):
        assert facts["sources"][name] == "unreadable: is a named pipe (FIFO), not a regular file; refusing to read it"
    assert "swappiness" not in facts["tunables"] and facts["kernel_release"] is None
    assert any("sys/vm/swappiness: is a named pipe (FIFO)" in warning for warning in buddy["warnings"])
    mem = run.task_result("meminfo_facts")
    assert not mem.get("failed"), mem
    mem_facts = mem["ansible_facts"]["memfrag_meminfo"]
    assert "FIFO" in mem_facts["sources"]["slabinfo"] and mem_facts["processes"]["count"] == 0
    assert any(warning.startswith("1 process(es) not counted in the RSS sum: ") for warning in mem["warnings"])
    judged = run.task_result("memory_facts")
    assert not judged.get("failed"), judged
    assert judged["ansible_facts"]["memfrag_verdict"]["severity"] in ("ok", "warning", "critical")


def test_memory_facts_judge_refuses_log_counts_of_the_wrong_type(run_playbook, fifo_tree):
    root = fifo_tree([])
    play = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: judge
      memfrag.linux.memory_facts:
        proc_root: {root}
        judge: true
        log_scan: {{counts: [oom_kill, 3]}}
      ignore_errors: true
""".format(root=root)
    result = run_playbook(play, timeout=240).task_result("judge")
    assert result.get("failed") and "log_scan.counts must be a dict of event kind to count, got list" in result["msg"], result
    assert "module_stderr" not in result
