# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The diagnose playbook through real ansible-playbook: on this host's kernel and on a capture."""

from __future__ import annotations

import os

from conftest import REPO_ROOT

PLAYBOOK = os.path.join(REPO_ROOT, "playbooks", "diagnose.yml")
JUDGE = "Gather free memory by zone and order and where memory went, and judge the host"


def _facts(run, task):
    return run.task_result(task)["ansible_facts"]


def test_diagnose_live_host(run_playbook):
    run = run_playbook(PLAYBOOK)
    assert run.rc == 0, run.stdout[-3000:] + run.stderr[-3000:]
    verdict = _facts(run, JUDGE)["memfrag_verdict"]
    assert verdict["severity"] in ("ok", "warning", "critical")
    judged = _facts(run, JUDGE)
    findings = judged["memfrag_findings"]
    # This host has a Normal zone of several GiB: it must be judged at order 4.
    normal = [f for f in findings if f.get("zone") == "Normal" and f["numbers"].get("order") == 4]
    assert normal, findings
    # The log scan ran (proc_root is /proc) and its counts reached the facts.
    assert set(judged["memfrag_log_counts"]["counts"]) == {
        "xfs_alloc_deadlock", "page_alloc_failure", "page_alloc_stall", "hung_task", "oom_kill"}
    shown = run.task_result("Show the verdict and findings of every host")["msg"]
    assert shown["localhost"][0].startswith(verdict["severity"].upper() + ": ")
    assert len(shown["localhost"]) == len(findings) + 1


def test_diagnose_capture_of_fragmented_host(run_playbook, fixtures_dir):
    proc_root = os.path.join(fixtures_dir, "proc", "diagnose-fragmented")
    run = run_playbook(PLAYBOOK, extra_vars={"diagnose_proc_root": proc_root})
    assert run.rc == 0, run.stdout[-3000:] + run.stderr[-3000:]
    # A capture: the host's own logs are not scanned.
    assert run.task_result("Scan kernel logs for allocation deadlocks, failures, stalls, hung tasks and OOM kills").get("skipped")
    findings = _facts(run, JUDGE)["memfrag_findings"]
    by_zone = {(f.get("node"), f.get("zone")): f for f in findings if "zone" in f}
    # Node 1 Normal [33331, 3323, 582, 87, 0...]: nothing free at order >= 4; largest block order 3 = 32 KiB.
    assert by_zone[(1, "Normal")]["code"] == "no_high_order_blocks"
    assert by_zone[(1, "Normal")]["message"] == (
        "Normal zone node 1: no free block of order >= 4; 100% of free memory is unusable for order-4 requests; "
        "largest free block 32 KiB")
    # Node 0 Normal has one order-4 block (64 KiB) of 67727 free pages: critical, not "no block".
    assert by_zone[(0, "Normal")]["code"] == "high_order_unusable"
    assert by_zone[(0, "Normal")]["numbers"]["free_bytes_at_or_above_order"] == 16 * 4096
    # Reclaimable slab is 7 GiB of 15.6 GiB: the vfs_cache_pressure hint.
    assert "slab_reclaimable_large" in [f["code"] for f in findings]
    verdict = _facts(run, JUDGE)["memfrag_verdict"]
    assert verdict["severity"] == "critical"
    assert verdict["counts"]["critical"] == 3


def test_diagnose_threshold_from_variables(run_playbook, fixtures_dir):
    # At order 2 the same capture has plenty of free blocks on node 0 Normal.
    proc_root = os.path.join(fixtures_dir, "proc", "diagnose-fragmented")
    run = run_playbook(PLAYBOOK, extra_vars={"diagnose_proc_root": proc_root, "diagnose_order": 2,
                                             "diagnose_min_high_order_free_mb": 1})
    assert run.rc == 0, run.stdout[-3000:]
    findings = _facts(run, JUDGE)["memfrag_findings"]
    node0 = [f for f in findings if f.get("zone") == "Normal" and f.get("node") == 0][0]
    assert node0["numbers"]["order"] == 2
    assert node0["severity"] != "critical"


def test_diagnose_rejects_bad_role_variable(run_playbook):
    run = run_playbook(PLAYBOOK, extra_vars={"diagnose_order": "four"})
    assert run.rc != 0
    assert "diagnose_order" in run.stdout
