# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rollout safety on a fleet of netns hosts over SSH: serial batches, faults, max_fail_percentage,
check mode, missing kernel interfaces. Every claim is checked on the hosts' own files (their fixture
proc_root and config_root trees), not only in the play output."""

from __future__ import annotations

import datetime
import os

from conftest import read_tree

# Every host must need reclaim so that the writes happen: a guard query true everywhere, a target never met.
RECLAIM_VARS = {"reclaim_guard_query": "memfrag_buddyinfo.page_size", "reclaim_target_free_mb": 10 ** 6, "reclaim_cooldown": 0, "reclaim_use_kernel_log": False,
                "reclaim_max_dirty_mb": 10 ** 6}


def reclaim_inventory(fleet, names=None):
    hosts = fleet.inventory(names)
    for name, hv in hosts.items():
        tree = fleet.trees[name]
        cfg = tree["config_root"]
        hv.update({
            "reclaim_proc_root": tree["proc_root"], "reclaim_sys_root": os.path.join(cfg, "sys"),
            "reclaim_lock_dir": os.path.join(cfg, "run/memfrag"), "reclaim_state_dir": os.path.join(cfg, "var/lib/memfrag"),
            "reclaim_audit_log": os.path.join(cfg, "var/log/memfrag/reclaim.log"),
            "diagnose_proc_root": tree["proc_root"],
        })
    return hosts


def triggered(fleet, name):
    """What reclaim wrote into the host's compact_memory trigger ('' when nothing)."""
    with open(os.path.join(fleet.trees[name]["proc_root"], "sys/vm/compact_memory")) as f:
        return f.read().strip()


def host_state(fleet, name):
    return {"proc": read_tree(fleet.trees[name]["proc_root"]), "config": read_tree(fleet.trees[name]["config_root"])}


def _ts(text):
    return datetime.datetime.fromisoformat(text)


def test_serial_batches_are_honoured(netns_fleet, fleet_playbook):
    names = ["b1", "b2", "b3", "b4", "b5"]
    for name in names:
        netns_fleet.add(name)
    run = fleet_playbook("reclaim.yml", reclaim_inventory(netns_fleet), dict(RECLAIM_VARS, memfrag_serial=2))
    assert run.rc == 0, run
    assert run.batches() == [["b1", "b2"], ["b3", "b4"], ["b5"]]
    # Time, not only grouping: no host of a batch starts before every host of the previous one is done.
    spans = []
    for batch in run.batches():
        starts, ends = [], []
        for host in batch:
            times = [(r["_start"], r["_end"]) for _task, r in run.host_results(host) if r.get("_start")]
            starts.append(min(_ts(s) for s, _end in times))
            ends.append(max(_ts(e) for _start, e in times))
        spans.append((min(starts), max(ends)))
    for (_first, end), (start, _last) in zip(spans, spans[1:]):
        assert end <= start, spans
    for name in names:
        assert triggered(netns_fleet, name) == "1", name


def test_faults_are_reported_and_others_proceed(netns_fleet, fleet_playbook):
    for name in ("ok1", "ok2", "ok3"):
        netns_fleet.add(name)
    netns_fleet.add("down", reachable=False)
    netns_fleet.add("rosys", readonly_sys=True)
    run = fleet_playbook("reclaim.yml", reclaim_inventory(netns_fleet),
                         dict(RECLAIM_VARS, memfrag_serial=10, memfrag_max_fail_percentage=100))
    assert run.stats["down"]["unreachable"] == 1, run
    assert any("10." in m and ("ssh" in m or "reach" in m) for m in run.failures("down")), run.failures("down")
    assert run.stats["rosys"]["failures"] == 1, run
    assert any("read-only" in m.lower() for m in run.failures("rosys")), run.failures("rosys")
    assert triggered(netns_fleet, "rosys") == ""
    for name in ("ok1", "ok2", "ok3"):
        assert run.stats[name]["failures"] == 0 and run.stats[name]["unreachable"] == 0, (name, run)
        assert triggered(netns_fleet, name) == "1", name
        assert os.path.getsize(os.path.join(netns_fleet.trees[name]["config_root"], "var/log/memfrag/reclaim.log")) > 0


def test_max_fail_percentage_stops_the_rollout(netns_fleet, fleet_playbook):
    # Batches of two; the read-only host is in the first batch, so 50% of it fails (> 0%).
    netns_fleet.add("first", readonly_sys=True)
    for name in ("second", "third", "fourth", "fifth"):
        netns_fleet.add(name)
    before = dict((n, host_state(netns_fleet, n)) for n in ("third", "fourth", "fifth"))
    run = fleet_playbook("reclaim.yml", reclaim_inventory(netns_fleet),
                         dict(RECLAIM_VARS, memfrag_serial=2, memfrag_max_fail_percentage=0))
    assert run.rc != 0
    assert run.stats["first"]["failures"] == 1, run
    assert run.batches() == [["first", "second"]], run.batches()
    # The rest of the fleet is untouched: every file of their trees is as before.
    for name, state in before.items():
        assert host_state(netns_fleet, name) == state, name
        assert triggered(netns_fleet, name) == ""


def test_check_mode_changes_nothing_anywhere(netns_fleet, fleet_playbook):
    for name in ("c1", "c2", "c3"):
        netns_fleet.add(name)
    netns_fleet.add("cnocompact", missing=("compact_memory", "compaction_proactiveness"))
    hosts = reclaim_inventory(netns_fleet)
    before = dict((n, host_state(netns_fleet, n)) for n in hosts)
    with open("/proc/sys/vm/min_free_kbytes") as f:
        live_before = f.read()
    run = fleet_playbook("reclaim.yml", hosts, dict(RECLAIM_VARS, memfrag_serial=10, memfrag_max_fail_percentage=100),
                         check=True)
    assert all(run.stats[n]["unreachable"] == 0 for n in hosts), run
    for name in ("c1", "c2", "c3"):
        assert run.stats[name]["failures"] == 0, (name, run)
        reclaim = run.results("Reclaim memory, least damage first", name)[-1]["ansible_facts"]["memfrag_reclaim"]
        assert reclaim["needed"] and reclaim["check_mode"]
    for name, state in before.items():
        assert host_state(netns_fleet, name) == state, name
    with open("/proc/sys/vm/min_free_kbytes") as f:
        assert f.read() == live_before


def test_missing_interface_is_skipped_with_the_reason(netns_fleet, fleet_playbook):
    netns_fleet.add("withcompact")
    netns_fleet.add("nocompact", missing=("compact_memory", "compaction_proactiveness"))
    run = fleet_playbook("reclaim.yml", reclaim_inventory(netns_fleet),
                         dict(RECLAIM_VARS, memfrag_serial=10, memfrag_max_fail_percentage=0,
                              reclaim_allow_drop_pagecache=False))
    assert run.stats["withcompact"]["failures"] == 0 and triggered(netns_fleet, "withcompact") == "1", run
    assert run.stats["nocompact"]["failures"] == 0, (run, run.failures("nocompact"))
    assert not os.path.exists(os.path.join(netns_fleet.trees["nocompact"]["proc_root"], "sys/vm/compact_memory"))
    reclaim = run.results("Reclaim memory, least damage first", "nocompact")[-1]["ansible_facts"]["memfrag_reclaim"]
    reasons = " ".join(str(a.get("refused")) + " " + str(a.get("summary")) for a in reclaim["actions"])
    assert "missing" in reasons or "compact_memory" in reasons, reclaim


def tune_inventory(fleet, names=None):
    hosts = fleet.inventory(names)
    for name, hv in hosts.items():
        hv.update({"sysctl_tuning_proc_root": fleet.trees[name]["proc_root"],
                   "sysctl_tuning_config_root": fleet.trees[name]["config_root"]})
    return hosts


TUNE_VARS = {"sysctl_tuning_computed_keys": [], "sysctl_tuning_skip_missing": True,
             "sysctl_tuning_settings": {"vm.min_free_kbytes": 70000, "vm.compaction_proactiveness": 30}}


def sysctl_value(fleet, name, key):
    path = os.path.join(fleet.trees[name]["proc_root"], "sys/vm", key)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return f.read().strip()


def dropin(fleet, name):
    path = os.path.join(fleet.trees[name]["config_root"], "etc/sysctl.d/60-memfrag.conf")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return f.read()


def test_tune_rollout_with_faults_and_a_kernel_without_compaction(netns_fleet, fleet_playbook):
    for name in ("t1", "t2"):
        netns_fleet.add(name)
    netns_fleet.add("tdown", reachable=False)
    netns_fleet.add("trosys", readonly_sys=True)
    netns_fleet.add("tnocompact", missing=("compact_memory", "compaction_proactiveness"))
    run = fleet_playbook("tune.yml", tune_inventory(netns_fleet),
                         dict(TUNE_VARS, memfrag_serial=10, memfrag_max_fail_percentage=100))
    assert run.stats["tdown"]["unreachable"] == 1, run
    assert run.stats["trosys"]["failures"] == 1, run
    assert any("read-only" in m.lower() for m in run.failures("trosys")), run.failures("trosys")
    assert dropin(netns_fleet, "trosys") is None  # nothing persisted that the kernel did not take
    for name in ("t1", "t2"):
        assert run.stats[name]["failures"] == 0, (name, run)
        assert sysctl_value(netns_fleet, name, "min_free_kbytes") == "70000"
        assert sysctl_value(netns_fleet, name, "compaction_proactiveness") == "30"
        assert "vm.compaction_proactiveness = 30" in dropin(netns_fleet, name)
    # No compaction_proactiveness on this kernel: skipped with the reason, the rest applied, not failed.
    assert run.stats["tnocompact"]["failures"] == 0, (run, run.failures("tnocompact"))
    assert sysctl_value(netns_fleet, "tnocompact", "min_free_kbytes") == "70000"
    assert "compaction_proactiveness" not in dropin(netns_fleet, "tnocompact")
    applied = run.results("Apply the baseline through vm_sysctl", "tnocompact")[-1]
    assert any("compaction_proactiveness" in w for w in applied.get("warnings", [])), applied.get("warnings")


def test_tune_max_fail_percentage_leaves_later_batches_untouched(netns_fleet, fleet_playbook):
    netns_fleet.add("u1", readonly_sys=True)
    for name in ("u2", "u3", "u4"):
        netns_fleet.add(name)
    before = dict((n, host_state(netns_fleet, n)) for n in ("u3", "u4"))
    run = fleet_playbook("tune.yml", tune_inventory(netns_fleet),
                         dict(TUNE_VARS, memfrag_serial=2, memfrag_max_fail_percentage=0))
    assert run.rc != 0 and run.stats["u1"]["failures"] == 1, run
    assert run.batches() == [["u1", "u2"]]
    for name, state in before.items():
        assert host_state(netns_fleet, name) == state, name
        assert dropin(netns_fleet, name) is None


def test_tune_check_mode_changes_nothing(netns_fleet, fleet_playbook):
    for name in ("k1", "k2"):
        netns_fleet.add(name)
    hosts = tune_inventory(netns_fleet)
    before = dict((n, host_state(netns_fleet, n)) for n in hosts)
    run = fleet_playbook("tune.yml", hosts, dict(TUNE_VARS, memfrag_serial=10), check=True, args=["--diff"])
    assert run.rc == 0, run
    for name in hosts:
        result = run.results("Apply the baseline through vm_sysctl", name)[-1]
        assert result["changed"], result  # it would change...
        assert host_state(netns_fleet, name) == before[name], name  # ...but nothing was written
