# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The diagnose playbook through real ansible-playbook: on this host's kernel and on a capture."""

from __future__ import annotations

import os

import pytest

from conftest import REPO_ROOT

PLAYBOOK = os.path.join(REPO_ROOT, "playbooks", "diagnose.yml")
JUDGE = "Gather memory facts, scan kernel logs and judge the host"


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
    # The log scan ran in the same module run (proc_root is /proc) and its counts reached the facts.
    assert set(judged["memfrag_log_counts"]["counts"]) == {
        "xfs_alloc_deadlock", "page_alloc_failure", "page_alloc_stall", "hung_task", "oom_kill"}
    scan = run.task_result(JUDGE)["kernel_log_scan"]
    assert scan["counts"] == judged["memfrag_log_counts"]["counts"]
    assert scan["sources"]["kmsg"]["status"] == "scanned"
    # One task per host: no argument-check task, no separate log scan.
    assert [task["task"]["name"].split(" : ")[-1] for play in run.data["plays"] for task in play["tasks"]] == [
        JUDGE, "Show the verdict and findings of every host"]
    shown = run.task_result("Show the verdict and findings of every host")["msg"]
    assert shown["localhost"][0].startswith(verdict["severity"].upper() + ": ")
    assert len(shown["localhost"]) == len(findings) + 1 + len([f for f in findings if f.get("remedy")])


def test_diagnose_capture_of_fragmented_host(run_playbook, fixtures_dir):
    proc_root = os.path.join(fixtures_dir, "proc", "diagnose-fragmented")
    run = run_playbook(PLAYBOOK, extra_vars={"diagnose_proc_root": proc_root})
    assert run.rc == 0, run.stdout[-3000:] + run.stderr[-3000:]
    # A capture: the host's own logs are not scanned.
    assert "kernel_log_scan" not in run.task_result(JUDGE)
    assert _facts(run, JUDGE)["memfrag_log_counts"] is None
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
    # Every warning and critical finding says what to do on this host; the verdict prints it under the finding.
    for finding in findings:
        assert bool(finding.get("remedy")) == (finding["severity"] in ("warning", "critical")), finding
    assert by_zone[(1, "Normal")]["remedy"].startswith(
        "now: ansible-playbook memfrag.linux.reclaim --limit localhost -e reclaim_target_order=4")
    assert "vm.vfs_cache_pressure" in [f for f in findings if f["code"] == "slab_reclaimable_large"][0]["remedy"]
    assert "  remedy: " + by_zone[(1, "Normal")]["remedy"] in verdict["lines"]
    assert verdict["remedies"][0] == findings[0]["remedy"]


@pytest.mark.parametrize("fail_on, fails", [("critical", True), ("warning", True), ("none", False)])
def test_diagnose_fail_on_makes_the_run_fail_with_the_verdict(run_playbook, fixtures_dir, fail_on, fails):
    proc_root = os.path.join(fixtures_dir, "proc", "diagnose-fragmented")
    run = run_playbook(PLAYBOOK, extra_vars={"diagnose_proc_root": proc_root, "diagnose_fail_on": fail_on})
    result = run.task_result(JUDGE)
    if fails:
        assert run.rc != 0 and result.get("failed")
        assert result["msg"].startswith("CRITICAL: ")
        assert "  remedy: now: ansible-playbook memfrag.linux.reclaim --limit localhost" in result["msg"]
        assert result["verdict"]["severity"] == "critical"
    else:
        assert run.rc == 0 and not result.get("failed"), run.stdout[-3000:]


def test_diagnose_fail_on_passes_a_host_below_the_severity(run_playbook, fixtures_dir):
    # At order 2 node 0 has plenty of blocks; with thresholds that make nothing critical the host is only a warning
    # at worst, so fail_on=critical lets it pass.
    proc_root = os.path.join(fixtures_dir, "proc", "diagnose-fragmented")
    run = run_playbook(PLAYBOOK, extra_vars={"diagnose_proc_root": proc_root, "diagnose_fail_on": "critical",
                                             "diagnose_order": 0, "diagnose_unusable_critical": 1.0})
    verdict = _facts(run, JUDGE)["memfrag_verdict"]
    assert verdict["severity"] != "critical", verdict
    assert run.rc == 0, run.stdout[-3000:]


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


@pytest.mark.parametrize("extra_vars, text", [
    ({"diagnose_order": "four"}, "diagnose_order must be an integer, got 'four'"),
    ({"diagnose_order": "abc"}, "diagnose_order must be an integer, got 'abc'"),
    ({"diagnose_min_zone_mb": "9" * 5000}, "diagnose_min_zone_mb must be an integer, got a 5000-character value"),
    ({"diagnose_zones": ["normal"]}, "value of zones must be one or more of: DMA, DMA32, Normal, HighMem, Movable, Device"),
    ({"diagnose_unusable_warning": 7.5}, "diagnose_unusable_warning is a share of memory between 0 and 1, got 7.5"),
    ({"diagnose_log_sources": ["dmesg"]}, "value of sources must be one or more of: kmsg, journal, files"),
    ({"diagnose_log_window": "yesterday"}, "since must be a duration such as 24h"),
])
def test_diagnose_playbook_rejects_bad_role_variable(run_playbook, extra_vars, text):
    # The playbook leaves out the role's argument-check task; memory_facts refuses the value on the host.
    run = run_playbook(PLAYBOOK, extra_vars=extra_vars)
    assert run.rc != 0
    result = run.task_result(JUDGE)
    assert result.get("failed") and text in result["msg"], result
    assert "ansible_facts" not in result


def test_diagnose_role_under_roles_checks_its_variables_first(run_playbook):
    run = run_playbook("""
- hosts: localhost
  gather_facts: false
  roles:
    - role: memfrag.linux.diagnose
      vars:
        diagnose_order: four
""")
    assert run.rc != 0
    assert "diagnose_order" in run.stdout
    assert not run.task_results(JUDGE)
