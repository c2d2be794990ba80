# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""memfrag.linux.reclaim_memory through ansible-playbook on a fake host tree (nothing live is written):
the whole ladder in one module run, the module_defaults action group, and the guards that must refuse
before any trigger (issue 10)."""
from __future__ import annotations

import json
import os

from helpers.reclaim_tree import audit, guard_args, make_tree, one_task

TRIGGERS = ("proc/sys/vm/compact_memory", "proc/sys/vm/drop_caches", "sys/fs/cgroup/memory.reclaim")


def untouched(root):
    return all((root / name).read_text() == "" for name in TRIGGERS) and \
        (root / "proc/sys/vm/nr_hugepages").read_text() == "0\n"


def test_action_group_sets_the_guard_options_once(run_playbook, tmp_path):
    root = make_tree(tmp_path)
    args = guard_args(root)
    playbook = """
- hosts: localhost
  gather_facts: false
  module_defaults:
    group/memfrag.linux.reclaim: %s
  tasks:
    - name: ladder
      memfrag.linux.reclaim_memory:
        order: 3
        target_free_mb: 256
        zones: [Normal]
        steps: [compact, drop_pagecache]
    - name: primitive in the same group
      memfrag.linux.compact_memory:
        cooldown: 0
""" % json.dumps(args)
    run = run_playbook(playbook)
    assert run.rc == 0, run.stdout[-3000:]
    ladder = run.task_result("ladder")
    assert ladder["changed"] is True and ladder["needed"] is True and ladder["target_met"] is False
    assert [s["action"] for s in ladder["steps"]] == ["compact_memory", "drop_caches pagecache", "compact_memory after drop"]
    # before/after at the order asked for, not 4 and 9
    assert all("order>=3 free" in s["summary"] and "order>=9" not in s["summary"] for s in ladder["steps"])
    assert ladder["ansible_facts"]["memfrag_reclaim"]["order"] == 3
    # both modules took the group's lock_dir, state_dir and audit_log
    assert (root / "var/lib/memfrag/reclaim_memory.state.json").exists()
    assert (root / "var/lib/memfrag/compact_memory.state.json").exists()
    assert [line.get("what", line["action"]) for line in audit(root)] == [
        "compact_memory", "drop_caches pagecache", "compact_memory after drop", "reclaim_memory", "compact_memory"]


def test_guards_refuse_before_any_trigger(run_playbook, tmp_path):
    """FIFO trigger, FIFO or symlinked audit log, symlinked state_dir, corrupt cooldown state: the run fails
    clearly, nothing is written, and nothing hangs (each case is its own tree)."""
    cases = {}
    for name in ("fifo_trigger", "fifo_audit", "symlinked_audit", "symlinked_state_dir", "huge_last_run"):
        root = make_tree(tmp_path / name)
        args = guard_args(root)
        if name == "fifo_trigger":
            os.unlink(str(root / "proc/sys/vm/compact_memory"))
            os.mkfifo(str(root / "proc/sys/vm/compact_memory"))
        elif name in ("fifo_audit", "symlinked_audit"):
            os.makedirs(os.path.dirname(args["audit_log"]))
            if name == "fifo_audit":
                os.mkfifo(args["audit_log"])
            else:
                os.symlink(str(root / "elsewhere.log"), args["audit_log"])
        elif name == "symlinked_state_dir":
            os.makedirs(str(root / "real-state"))
            os.makedirs(os.path.dirname(args["state_dir"]))
            os.symlink(str(root / "real-state"), args["state_dir"])
        else:
            os.makedirs(args["state_dir"], mode=0o700)
            with open(os.path.join(args["state_dir"], "reclaim_memory.state.json"), "w") as handle:
                handle.write('{"last_run": %s}' % ("9" * 5000))
        cases[name] = root
    tasks = "".join("""
    - name: %s
      memfrag.linux.reclaim_memory: %s
      ignore_errors: true
""" % (name, json.dumps(dict(guard_args(root), zones=["Normal"]))) for name, root in cases.items())
    run = run_playbook("- hosts: localhost\n  gather_facts: false\n  tasks:" + tasks, timeout=300)
    for name, root in cases.items():
        result = run.task_result(name)
        assert result["failed"] is True and result["changed"] is False, (name, result)
        assert result["refused"] in ("io", "state"), (name, result["msg"])
        if name != "fifo_trigger":
            assert untouched(root), name
    assert "not a regular file" in run.task_result("fifo_trigger")["msg"]
    assert "remove the file" in run.task_result("huge_last_run")["msg"]
    assert not (cases["symlinked_audit"] / "elsewhere.log").exists()
    assert os.listdir(str(cases["symlinked_state_dir"] / "real-state")) == []


def test_invalid_options_are_refused(run_playbook, tmp_path):
    root = make_tree(tmp_path)
    cases = [({"page_size": -4096}, "page_size must be a power of two"),
             ({"compact_nodes": ["\u00b2"]}, "compact_nodes must be [auto], [all] or a list of NUMA node ids"),
             ({"order": 99}, "order must be 0-20"),
             ({"target_free_mb": -1}, "target_free_mb must be between 0")]
    tasks = "".join("""
    - name: case %d
      memfrag.linux.reclaim_memory: %s
      ignore_errors: true
""" % (index, json.dumps(dict(guard_args(root), **args))) for index, (args, dummy) in enumerate(cases))
    run = run_playbook("- hosts: localhost\n  gather_facts: false\n  tasks:" + tasks)
    for index, (dummy, message) in enumerate(cases):
        result = run.task_result("case %d" % index)
        assert result["failed"] is True and message in result["msg"], result
    assert untouched(root) and not (root / "var").exists()


def test_host_with_less_free_memory_than_the_target_does_not_report_target_met(run_playbook, tmp_path):
    """Issue 10 item 7: every zone below the target in free memory at all used to report `target met`."""
    root = make_tree(tmp_path)
    result = run_playbook(one_task("reclaim_memory", dict(guard_args(root), target_free_mb=65536))).task_result("run")
    assert result["needed"] is False and result["target_met"] is False
    assert "short of memory, not fragmented" in result["msg"]
    assert result["ansible_facts"]["memfrag_reclaim"]["target_met"] is False
    assert untouched(root)
