# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The facts modules through real ansible-playbook runs on trees with FIFOs where kernel files belong (issue 10).

Before the fix every one of these runs hung forever in open(). Each run has a timeout, and the teardown
opens every FIFO for writing once, which releases a reader that would still be blocked, so a regression
fails the test instead of leaving module processes behind.
"""

from __future__ import annotations

import bz2
import errno
import json
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


def test_log_bomb_and_out_of_range_options_through_the_real_modules(run_playbook, tmp_path):
    """The outside audit's cases through ansible-playbook: a compressed log that expands a millionfold is read only
    up to its bound (before: a scan of hours), and options out of range fail with fail_json (before: a traceback)."""
    logs = tmp_path / "log"
    logs.mkdir()
    event = b"Mar  5 22:42:57 node06 kernel: XFS: possible memory allocation deadlock in kmem_alloc (mode:0x250)\n"
    # 64 bzip2 streams of 16 MiB of zeros after a real event: 9 KB on disk, 1 GiB expanded.
    (logs / "messages.1.bz2").write_bytes(bz2.compress(event) + bz2.compress(b"\0" * (16 << 20), 1) * 64)
    proc = str(tmp_path / "proc")
    shutil.copytree(FIXTURE_TREE, proc)
    for name in ("compact_memory", "drop_caches"):
        open(os.path.join(proc, "sys", "vm", name), "w").close()
    guards = {"proc_root": proc, "lock_dir": str(tmp_path / "lock"), "state_dir": str(tmp_path / "state"),
              "audit_log": str(tmp_path / "audit.log"), "cooldown": 0, "page_size": 4096}
    play = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: bomb
      memfrag.linux.kernel_log_scan: {{sources: [files], paths: ["{logs}/messages*"], kernel_release: 5.14.0}}
    - name: max_events
      memfrag.linux.kernel_log_scan: {{sources: [files], paths: ["{logs}/messages*"], max_events: 1000000000000000000000000}}
      ignore_errors: true
    - name: orders
      memfrag.linux.compact_memory: {guards}
      ignore_errors: true
    - name: page_size
      memfrag.linux.buddyinfo_facts: {{proc_root: {proc}, page_size: 1180591620717411303424}}
      ignore_errors: true
""".format(logs=logs, proc=proc, guards=json.dumps(dict(guards, orders=[-1])))
    started = time.monotonic()
    run = run_playbook(play, timeout=600)
    bomb = run.task_result("bomb")
    assert not bomb.get("failed") and bomb["counts"]["xfs_alloc_deadlock"] == 1, bomb
    assert any("a decompression bomb, not a log; read no further" in warning for warning in bomb["warnings"])
    assert time.monotonic() - started < 500
    for task, words in (("max_events", "max_events must be between 0 and 1000000, got 1000000000000000000000000"),
                        ("orders", "orders must be buddy orders from 0 to 23, got -1"),
                        ("page_size", "page_size must be at most 262144")):
        result = run.task_result(task)
        assert result.get("failed") and result["msg"].startswith(words), result
        assert "module_stderr" not in result and "MODULE FAILURE" not in result["msg"]
    assert open(os.path.join(proc, "sys", "vm", "compact_memory")).read() == ""  # refused before any write
    assert not os.path.exists(guards["audit_log"])
