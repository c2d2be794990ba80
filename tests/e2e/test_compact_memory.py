# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""memfrag.linux.compact_memory through ansible-playbook on a fake host tree (nothing live is written)."""
from __future__ import annotations

import fcntl
import json
import os
import shutil
import stat

import pytest

from helpers.reclaim_tree import Immutable, audit, guard_args, make_tree, one_task


@pytest.fixture
def root(tmp_path):
    return make_tree(tmp_path)


def test_compacts_then_holds_back_within_cooldown(run_playbook, root):
    args = guard_args(root)
    first = run_playbook(one_task("compact_memory", args)).task_result("run")
    assert first["changed"] is True and first["refused"] is None, first
    assert (root / "proc/sys/vm/compact_memory").read_text() == "1"
    assert first["summary"].startswith("compact_memory in ")
    assert first["before"]["zones"][2]["free_bytes_at_or_above_order"][10] == 8 * 4096 * 1024
    log = root / "var/log/memfrag/reclaim.log"
    assert stat.S_IMODE(os.stat(str(log)).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(str(log.parent)).st_mode) == 0o700

    (root / "proc/sys/vm/compact_memory").write_text("")
    second = run_playbook(one_task("compact_memory", args)).task_result("run")
    assert second["changed"] is False and second["refused"] == "cooldown"
    assert "failed" not in second or second["failed"] is False
    assert (root / "proc/sys/vm/compact_memory").read_text() == ""
    assert [line["changed"] for line in audit(root)] == [True, False]


def test_per_node_trigger(run_playbook, root):
    result = run_playbook(one_task("compact_memory", dict(guard_args(root), nodes=["0"]))).task_result("run")
    assert result["changed"] is True
    assert (root / "sys/devices/system/node/node0/compact").read_text() == "1"
    assert (root / "proc/sys/vm/compact_memory").read_text() == ""
    missing = run_playbook(one_task("compact_memory", dict(guard_args(root), nodes=["3"], cooldown=0))).task_result("run")
    assert missing["failed"] is True and missing["refused"] == "missing"
    assert "node3/compact does not exist" in missing["msg"]


def test_lock_held_by_another_run(run_playbook, root):
    lock_dir = root / "run" / "memfrag"
    lock_dir.mkdir(parents=True)
    with open(str(lock_dir / "reclaim.lock"), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        result = run_playbook(one_task("compact_memory", guard_args(root))).task_result("run")
    assert result["failed"] is True and result["refused"] == "lock_held"
    assert "another memfrag reclaim run holds" in result["msg"]
    assert (root / "proc/sys/vm/compact_memory").read_text() == ""


def test_check_mode_writes_nothing(run_playbook, root):
    result = run_playbook(one_task("compact_memory", guard_args(root)), check=True).task_result("run")
    assert result["changed"] is True
    assert result["msg"] == "check mode: would write 1 to %s" % (root / "proc/sys/vm/compact_memory")
    assert (root / "proc/sys/vm/compact_memory").read_text() == ""
    assert not (root / "var").exists() and not (root / "run").exists()


def test_kernel_without_compaction(run_playbook, root):
    os.unlink(str(root / "proc/sys/vm/compact_memory"))
    result = run_playbook(one_task("compact_memory", guard_args(root))).task_result("run")
    assert result["failed"] is True and result["refused"] == "missing"
    assert "built without CONFIG_COMPACTION" in result["msg"]
    assert not (root / "proc/sys/vm/compact_memory").exists()


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("chattr") is None, reason="needs root and chattr")
def test_read_only_trigger(run_playbook, root):
    with Immutable(root / "proc/sys/vm/compact_memory"):
        result = run_playbook(one_task("compact_memory", guard_args(root))).task_result("run")
    assert result["failed"] is True and result["refused"] == "read_only"
    assert "read-only /proc/sys" in result["msg"]


def test_invalid_options(run_playbook, root):
    """Each refused before anything is measured or written (issue 10: '²'.isdigit() is true, page_size -4096 was
    accepted)."""
    cases = [({"cooldown": -1}, "cooldown must be between 0"),
             ({"nodes": ["zero"]}, "nodes must be [all] or a list of NUMA node ids"),
             ({"nodes": ["\u00b2"]}, "nodes must be [all] or a list of NUMA node ids"),
             ({"page_size": -4096}, "page_size must be a power of two")]
    tasks = "".join("""
    - name: case %d
      memfrag.linux.compact_memory: %s
      ignore_errors: true
""" % (index, json.dumps(dict(guard_args(root), **args))) for index, (args, dummy) in enumerate(cases))
    run = run_playbook("- hosts: localhost\n  gather_facts: false\n  tasks:" + tasks)
    for index, (dummy, message) in enumerate(cases):
        result = run.task_result("case %d" % index)
        assert result["failed"] is True and message in result["msg"], result
    assert (root / "proc/sys/vm/compact_memory").read_text() == ""
    assert not (root / "var").exists()
