# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/reclaim.yml on a fake host tree: the decision, the least-damage ladder, check mode, the
cooldown and the role's cost in task executions, with every trigger a plain file (nothing live is written).
On a fake tree buddyinfo never changes, so the target is never met and the whole allowed ladder runs."""
from __future__ import annotations

import os
import sys

from collection_tree import REPO_ROOT
from helpers.reclaim_tree import audit, make_tree

PLAYBOOK = os.path.join(REPO_ROOT, "playbooks", "reclaim.yml")
PREFIX = "memfrag.linux.reclaim : "
RECORD = PREFIX + "Reclaim memory, least damage first"
REPORT = PREFIX + "Report what was done and achieved"
FULL_LADDER = ["compact_memory", "hugetlb_compact", "cgroup memory.reclaim", "compact_memory after memory.reclaim",
               "drop_caches pagecache", "compact_memory after drop"]


def role_vars(root, **extra):
    values = {
        "reclaim_proc_root": str(root / "proc"), "reclaim_sys_root": str(root / "sys"),
        "reclaim_lock_dir": str(root / "run" / "memfrag"), "reclaim_state_dir": str(root / "var" / "lib" / "memfrag"),
        "reclaim_audit_log": str(root / "var" / "log" / "memfrag" / "reclaim.log"),
        # the fixture's Normal zone has 1.4 GiB free but only 71 MiB in blocks of order >= 4
        "reclaim_target_free_mb": 256,
    }
    values.update(extra)
    return values


def reclaim_fact(run):
    return run.task_result(RECORD)["ansible_facts"]["memfrag_reclaim"]


def test_short_zone_runs_the_ladder_in_order(run_playbook, tmp_path):
    root = make_tree(tmp_path)
    # hugetlb_compact is opt-in (not in the default bounded steps): asked for here, so every step runs.
    every_step = dict(reclaim_bounded_steps=["hugetlb_compact", "cgroup_reclaim"])
    run = run_playbook(PLAYBOOK, extra_vars=role_vars(root, **every_step))
    assert run.rc == 0, run.stdout[-3000:]
    fact = reclaim_fact(run)
    assert fact["needed"] is True
    assert "node 0 zone Normal has 71 MiB free in blocks of order >= 4, below the target 256 MiB" in fact["reason"]
    assert [a["action"] for a in fact["actions"]] == FULL_LADDER
    assert all(a["changed"] for a in fact["actions"])
    assert fact["target_met"] is False
    assert (root / "proc/sys/vm/compact_memory").read_text() == "1"
    assert (root / "proc/sys/vm/drop_caches").read_text() == "1"  # never 2 or 3: slab is not allowed by default
    # Normal has 73088 KiB at order >= 4 (64 x 64 KiB + 67 x 128 KiB + ... + 8 x 4 MiB), 189056 KiB short of 256 MiB:
    # 93 huge pages of 2 MiB taken, then the original value (0) written back; memory.reclaim asked for the shortfall.
    assert (root / "proc/sys/vm/nr_hugepages").read_text() == "0"
    assert (root / "sys/fs/cgroup/memory.reclaim").read_text() == str(189056 * 1024)
    lines = audit(root)
    assert [line["what"] for line in lines[:-1]] == FULL_LADDER and lines[-1]["step"] == "end"
    assert lines[1]["written"] == [{"path": str(root / "proc/sys/vm/nr_hugepages"), "value": "93"},
                                   {"path": str(root / "proc/sys/vm/nr_hugepages"), "value": "0"}]
    report = run.task_result(REPORT)["msg"]["localhost"]
    assert report[0].startswith("reclaim needed: ") and report[-1].endswith("NOT met")

    # The whole ladder cost at most three task executions for this host (issue 15: it was about 27).
    assert task_executions(run, "localhost") <= 3

    # Within the cooldown a second run is held back at the first step and writes nothing.
    for name in ("compact_memory", "drop_caches"):
        (root / "proc/sys/vm" / name).write_text("")
    again = run_playbook(PLAYBOOK, extra_vars=role_vars(root, **every_step))
    assert again.rc == 0
    fact = reclaim_fact(again)
    assert [(a["action"], a["changed"], a["refused"]) for a in fact["actions"]] == [("reclaim_memory", False, "cooldown")]
    assert again.stats["localhost"]["changed"] == 0
    assert (root / "proc/sys/vm/compact_memory").read_text() == ""
    assert (root / "proc/sys/vm/drop_caches").read_text() == ""


def test_host_that_does_not_need_it_is_untouched(run_playbook, tmp_path):
    root = make_tree(tmp_path)
    run = run_playbook(PLAYBOOK, extra_vars=role_vars(root, reclaim_target_free_mb=32))
    fact = reclaim_fact(run)
    assert fact["needed"] is False and fact["actions"] == []
    assert fact["reason"] == "every judged zone has at least 32 MiB free in blocks of order >= 4"
    assert (root / "proc/sys/vm/compact_memory").read_text() == ""
    assert not (root / "var").exists()


def test_guard_query_and_slab_step(run_playbook, tmp_path):
    root = make_tree(tmp_path)
    extra = role_vars(root, reclaim_target_free_mb=32, reclaim_allow_drop_pagecache=False, reclaim_allow_slab=True,
                      reclaim_slab_min_mb=100,
                      reclaim_guard_query="memfrag_buddyinfo.zones[?zone=='Normal'] | [0].free_blocks[0] > `100000`")
    fact = reclaim_fact(run_playbook(PLAYBOOK, extra_vars=extra))
    assert fact["needed"] is True and "reclaim_guard_query is true" in fact["reason"]
    # the target (32 MiB) is met, so compaction is the only step
    assert [a["action"] for a in fact["actions"]] == ["compact_memory"]
    extra.update(reclaim_target_free_mb=256, reclaim_cooldown=0, reclaim_bounded_steps=[])
    run = run_playbook(PLAYBOOK, extra_vars=extra)
    fact = reclaim_fact(run)
    # page cache not allowed, slab allowed and SReclaimable (178 MiB) >= 100 MiB
    assert [a["action"] for a in fact["actions"]] == ["compact_memory", "drop_caches slab", "compact_memory after slab drop"]
    assert (root / "proc/sys/vm/drop_caches").read_text() == "2"
    # with a guard query: memory_facts, the ladder and the report, still at most three
    assert task_executions(run, "localhost") <= 3


def test_check_mode_lists_what_would_be_done(run_playbook, tmp_path):
    root = make_tree(tmp_path)
    run = run_playbook(PLAYBOOK, extra_vars=role_vars(root), check=True)
    assert run.rc == 0
    fact = reclaim_fact(run)
    assert fact["check_mode"] is True
    # the default ladder: compaction, memory.reclaim, the page-cache drop (hugetlb_compact is opt-in)
    assert [a["action"] for a in fact["actions"]] == ["compact", "cgroup_reclaim", "drop_pagecache"]
    assert [a["summary"].split(":")[0] for a in fact["actions"]] == ["check mode"] * 3
    assert "would write 1 to" in fact["actions"][0]["summary"]
    assert "would sync (at most 60s), then write 1 to" in fact["actions"][2]["summary"]
    assert (root / "proc/sys/vm/compact_memory").read_text() == ""
    assert (root / "proc/sys/vm/nr_hugepages").read_text() == "0\n"
    assert (root / "proc/sys/vm/drop_caches").read_text() == ""
    assert not (root / "var").exists() and not (root / "run").exists()
    assert run.task_result(REPORT)["msg"]["localhost"][-1].endswith("(check mode: nothing was written)")


def test_missing_compaction_is_skipped_with_the_reason(run_playbook, tmp_path):
    """A kernel without CONFIG_COMPACTION: the step is recorded with its reason, the host is not failed."""
    root = make_tree(tmp_path)
    os.unlink(str(root / "proc/sys/vm/compact_memory"))
    run = run_playbook(PLAYBOOK, extra_vars=role_vars(root))
    assert run.rc == 0, run.stdout[-3000:]
    result = run.task_result(RECORD)
    assert not result.get("failed") and result["steps"][0]["refused"] == "missing"
    assert "CONFIG_COMPACTION" in result["steps"][0]["summary"]
    actions = reclaim_fact_of(run, "localhost")["actions"]
    assert actions[0]["action"] == "compact" and actions[0]["refused"] == "missing"
    assert actions[1]["action"] == "cgroup memory.reclaim" and actions[1]["changed"] is True
    # the default ladder never touches nr_hugepages (hugetlb_compact is opt-in)
    assert (root / "proc/sys/vm/nr_hugepages").read_text() == "0\n"


def test_serial_batches_and_max_fail_percentage(run_playbook, tmp_path):
    """Two hosts, one per batch; the first fails (its trigger is a symlink, never written through) so the
    rollout stops before the second."""
    trees = {}
    lines = ["[fleet]"]
    for name in ("h1", "h2"):
        trees[name] = make_tree(tmp_path / name)
        host_vars = role_vars(trees[name])
        lines.append("%s ansible_connection=local ansible_python_interpreter=%s %s" % (
            name, sys.executable, " ".join("%s=%s" % item for item in sorted(host_vars.items()))))
    inventory = tmp_path / "inventory.ini"
    inventory.write_text("\n".join(lines) + "\n")

    # memfrag_serial makes batches: one play start per batch.
    run = run_playbook(PLAYBOOK, inventory=str(inventory), extra_vars={"memfrag_hosts": "fleet", "memfrag_serial": 1})
    assert run.rc == 0, run.stdout[-3000:]
    assert [sorted(task["hosts"]) for task in (play["tasks"][1] for play in run.data["plays"])] == [["h1"], ["h2"]]
    assert reclaim_fact_of(run, "h1")["needed"] and reclaim_fact_of(run, "h2")["needed"]

    os.unlink(str(trees["h1"] / "proc/sys/vm/compact_memory"))
    os.symlink(os.devnull, str(trees["h1"] / "proc/sys/vm/compact_memory"))
    for name in ("h1", "h2"):
        (trees[name] / "var").rename(trees[name] / "var.first-run")  # forget the cooldown of the first run
    stopped = run_playbook(PLAYBOOK, inventory=str(inventory),
                           extra_vars={"memfrag_hosts": "fleet", "memfrag_serial": 1, "memfrag_max_fail_percentage": 0})
    assert stopped.rc != 0
    assert stopped.task_results(RECORD, host="h1")[0]["failed"] is True
    assert stopped.task_results(RECORD, host="h2") == []
    assert (trees["h2"] / "proc/sys/vm/compact_memory").read_text() == "1"  # only from the first run
    assert not (trees["h2"] / "var").exists()


def reclaim_fact_of(run, host):
    return run.task_result(RECORD, host=host)["ansible_facts"]["memfrag_reclaim"]


def task_executions(run, host):
    """Task results recorded for ``host`` (run, changed, failed or skipped: each was a worker on the controller)."""
    return sum(1 for play in run.data["plays"] for task in play["tasks"] if host in task["hosts"])


def test_deprecated_rollout_names_are_gone():
    """A 0.x collection keeps no aliases: reclaim_serial and reclaim_max_fail_percentage were removed."""
    with open(PLAYBOOK) as handle:
        text = handle.read()
    assert "reclaim_serial" not in text and "reclaim_max_fail_percentage" not in text


def test_memory_reclaim_is_capped_at_the_inactive_page_cache(run_playbook, tmp_path):
    """Asked for more than its inactive list, memory.reclaim evicts hot cache: the request stops at Inactive(file)."""
    root = make_tree(tmp_path)
    meminfo = root / "proc" / "meminfo"
    meminfo.write_text(meminfo.read_text().replace("Inactive(file):  1836388 kB", "Inactive(file):    20480 kB"))
    run = run_playbook(PLAYBOOK, extra_vars=role_vars(root, reclaim_allow_drop_pagecache=False))
    assert run.rc == 0, run.stdout[-3000:]
    fact = reclaim_fact(run)
    assert [a["action"] for a in fact["actions"]] == ["compact_memory", "cgroup memory.reclaim",
                                                      "compact_memory after memory.reclaim"]
    # the shortfall is 189056 KiB; the inactive page cache, 20 MiB, is all that is asked for
    assert (root / "sys/fs/cgroup/memory.reclaim").read_text() == str(20480 * 1024)
    assert "capped at the inactive page cache" in fact["actions"][1]["summary"]
    assert (root / "proc/sys/vm/drop_caches").read_text() == ""
