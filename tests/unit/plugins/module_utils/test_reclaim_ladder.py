# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The reclaim ladder's decisions (cases/reclaim_ladder.yml) and its guards, on a fake host whose free memory
changes as triggers are written. Triggers, lock, state and audit are real files under a temporary tree."""
from __future__ import annotations

import json
import os
import shutil

import pytest
import yaml

from ansible_collections.memfrag.linux.plugins.module_utils._reclaim.ladder import DEFAULT_STEPS, Host, Ladder, Plan

FIXTURE = os.path.join(os.path.dirname(__file__), "..", "..", "..", "fixtures", "reclaim", "fragmented")
MIB = 1024 * 1024
ORDERS = 11

with open(os.path.join(os.path.dirname(__file__), "cases", "reclaim_ladder.yml")) as handle:
    CASES = yaml.safe_load(handle)

TRIGGERS = {"compact_memory": "proc/sys/vm/compact_memory", "drop_caches": "proc/sys/vm/drop_caches",
            "nr_hugepages": "proc/sys/vm/nr_hugepages", "memory.reclaim": "sys/fs/cgroup/memory.reclaim"}


class FakeHost(Host):
    """A Host whose measurements follow the case: each write to a trigger may set the Normal zone's high_mb."""

    def __init__(self, root, start, effects, order=4):
        super(FakeHost, self).__init__(str(root / "proc"), str(root / "sys"), 4096, str(root / "run"),
                                       str(root / "state"), str(root / "log" / "reclaim.log"), sync=lambda: None)
        self.free = start["free_mb"] * MIB
        self.high = start["high_mb"] * MIB
        self.start = start
        self.effects = effects or {}
        self.order = order
        self.writes = []
        self.counts = {}

    def measure(self):
        columns = [self.free] * (self.order if self.order < ORDERS else ORDERS)
        columns += [self.high] * (ORDERS - len(columns))
        zone = {"node": 0, "zone": "Normal", "free_blocks": [0] * ORDERS, "free_bytes": self.free,
                "free_bytes_at_or_above_order": columns}
        meminfo = {"MemFree": self.free, "Cached": 2048 * MIB, "MemTotal": 24 * 1024 * MIB,
                   "SReclaimable": self.start.get("sreclaimable_mb", 100) * MIB,
                   "Dirty": self.start.get("dirty_mb", 0) * MIB, "Writeback": 0,
                   "SwapTotal": self.start.get("swap_mb", 0) * MIB, "Hugepagesize": 2 * MIB}
        if self.start.get("inactive_file_mb", 1024) is not None:
            meminfo["Inactive(file)"] = self.start.get("inactive_file_mb", 1024) * MIB
        return {"zones": [zone], "meminfo": meminfo, "counters": None, "warnings": []}

    def write(self, path, value):
        super(FakeHost, self).write(path, value)
        name = os.path.basename(path)
        self.writes.append("%s=%s" % (name, value))
        if name == "nr_hugepages" and int(value) == self.start.get("nr_hugepages", 0):
            return  # giving the huge pages back changes nothing measured here
        self.counts[name] = self.counts.get(name, 0) + 1
        for key in ("%s#%d" % (name, self.counts[name]), "%s=%s" % (name, value), name):
            if key in self.effects:
                self.high = self.effects[key] * MIB
                return


def make_tree(tmp_path, case):
    root = tmp_path / "host"
    shutil.copytree(FIXTURE, str(root))
    (root / "proc/sys/vm/nr_hugepages").write_text("%d\n" % case["start"].get("nr_hugepages", 0))
    for name in case.get("missing", []):
        os.unlink(str(root / TRIGGERS[name]))
    return root


def plan_for(case, **extra):
    values = dict(order=case.get("order", 4), target_mb=case.get("target_mb", 256), zone_names=["Normal"],
                  steps=case.get("steps", DEFAULT_STEPS), slab_min_mb=case.get("slab_min_mb", 512),
                  log_scan=case.get("log_scan"), guard_query_hit=case.get("guard_query_hit", False), cooldown=900)
    values.update(extra)
    return Plan(**values)


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_ladder(tmp_path, case):
    root = make_tree(tmp_path, case)
    host = FakeHost(root, case["start"], case.get("effects"), order=case.get("order", 4))
    result = Ladder(plan_for(case), host).run()
    expect = case["expect"]
    assert result["needed"] is expect["needed"]
    assert [a["action"] for a in result["steps"]] == expect["actions"]
    if "refused" in expect:
        assert [a["refused"] for a in result["steps"]] == expect["refused"]
    assert result["target_met"] is expect["target_met"]
    assert result["failed"] is expect.get("failed", False), result["msg"]
    assert result["refused"] == expect.get("stopped")
    assert host.writes == expect["written"]
    fact = result["ansible_facts"]["memfrag_reclaim"]
    assert fact["needed"] is expect["needed"] and fact["target_met"] is expect["target_met"]
    assert [a["action"] for a in fact["actions"]] == expect["actions"]
    # The huge page count always ends where it started.
    if "nr_hugepages" not in case.get("missing", []):
        assert (root / "proc/sys/vm/nr_hugepages").read_text().strip() == str(case["start"].get("nr_hugepages", 0))
    audit = root / "log" / "reclaim.log"
    if expect["needed"]:
        lines = [json.loads(line) for line in audit.read_text().splitlines()]
        assert [line["what"] for line in lines[:-1]] == expect["actions"]
        assert lines[-1]["step"] == "end" and lines[-1]["target_met"] is expect["target_met"]
    else:
        assert not audit.exists() and not (root / "state").exists()


def test_every_step_reports_the_requested_order(tmp_path):
    case = {"start": {"free_mb": 1400, "high_mb": 71}, "order": 3, "steps": ["compact"]}
    host = FakeHost(make_tree(tmp_path, case), case["start"], {"compact_memory": 90}, order=3)
    result = Ladder(plan_for(case), host).run()
    (step,) = result["steps"]
    assert step["order"] == 3 and "order>=3 free 71 MiB -> 90 MiB (+19 MiB)" in step["summary"]
    assert "order>=4" not in step["summary"] and "order>=9" not in step["summary"]
    assert (step["before_high_order_bytes"], step["after_high_order_bytes"]) == (71 * MIB, 90 * MIB)


def test_cooldown_holds_a_second_run_and_writes_nothing(tmp_path):
    case = {"start": {"free_mb": 1400, "high_mb": 71}}
    root = make_tree(tmp_path, case)
    first = Ladder(plan_for(case), FakeHost(root, case["start"], {})).run()
    assert first["changed"] is True
    host = FakeHost(root, case["start"], {})
    second = Ladder(plan_for(case), host).run()
    assert second["changed"] is False and second["failed"] is False and second["refused"] == "cooldown"
    assert host.writes == [] and [a["refused"] for a in second["steps"]] == ["cooldown"]


def test_check_mode_writes_nothing_and_lists_the_steps(tmp_path):
    case = {"start": {"free_mb": 1400, "high_mb": 71}}
    root = make_tree(tmp_path, case)
    host = FakeHost(root, case["start"], {})
    result = Ladder(plan_for(case), host, check_mode=True).run()
    assert host.writes == [] and result["changed"] is True
    assert [a["action"] for a in result["steps"]] == list(DEFAULT_STEPS)
    assert all(line.startswith("check mode: would ") for line in result["would"])
    assert not (root / "run").exists() and not (root / "state").exists() and not (root / "log").exists()


@pytest.mark.parametrize("spoil", ["symlinked_state_dir", "symlinked_audit_log", "fifo_audit_log", "corrupt_state",
                                   "fifo_state"])
def test_guards_refuse_before_any_trigger(tmp_path, spoil):
    """Issue 10 item 7: guards that cannot do their job stop the run before anything is written."""
    case = {"start": {"free_mb": 1400, "high_mb": 71}}
    root = make_tree(tmp_path, case)
    (root / "elsewhere").mkdir()
    if spoil == "symlinked_state_dir":
        os.symlink(str(root / "elsewhere"), str(root / "state"))
    elif spoil in ("symlinked_audit_log", "fifo_audit_log"):
        (root / "log").mkdir()
        if spoil == "fifo_audit_log":
            os.mkfifo(str(root / "log" / "reclaim.log"))
        else:
            os.symlink(str(root / "elsewhere" / "x.log"), str(root / "log" / "reclaim.log"))
    else:
        (root / "state").mkdir(mode=0o700)
        if spoil == "fifo_state":
            os.mkfifo(str(root / "state" / "reclaim_memory.state.json"))
        else:
            (root / "state" / "reclaim_memory.state.json").write_text('{"last_run": %s}' % ("9" * 5000))
    host = FakeHost(root, case["start"], {})
    result = Ladder(plan_for(case), host).run()
    assert result["failed"] is True and result["changed"] is False
    assert result["refused"] in ("io", "state"), result["msg"]
    assert host.writes == []
    assert (root / "proc/sys/vm/compact_memory").read_text() == ""
    assert os.listdir(str(root / "elsewhere")) == []


def test_fifo_trigger_is_refused_without_blocking(tmp_path):
    case = {"start": {"free_mb": 1400, "high_mb": 71}, "steps": ["compact"]}
    root = make_tree(tmp_path, case)
    os.unlink(str(root / "proc/sys/vm/compact_memory"))
    os.mkfifo(str(root / "proc/sys/vm/compact_memory"))
    result = Ladder(plan_for(case), FakeHost(root, case["start"], {})).run()
    assert result["failed"] is True and result["refused"] == "io" and "not a regular file" in result["msg"]


def test_huge_pages_are_given_back_even_when_measuring_fails(tmp_path):
    case = {"start": {"free_mb": 1400, "high_mb": 71}, "steps": ["compact", "hugetlb_compact"]}
    root = make_tree(tmp_path, case)
    host = FakeHost(root, case["start"], {})
    calls = []
    original_measure = host.measure

    def measure():
        calls.append(1)
        if len(calls) == 3:  # the measurement after the huge pages were taken and given back
            from ansible_collections.memfrag.linux.plugins.module_utils._procfs.files import ProcFileError
            raise ProcFileError("buddyinfo", "garbage")
        return original_measure()

    host.measure = measure
    result = Ladder(plan_for(case), host).run()
    assert result["failed"] is True and result["refused"] == "measure"
    assert host.writes == ["compact_memory=1", "nr_hugepages=93", "nr_hugepages=0"]
    assert (root / "proc/sys/vm/nr_hugepages").read_text() == "0"
    assert [a["action"] for a in result["steps"]][-1].startswith("hugetlb_compact")
    lines = [json.loads(line) for line in (root / "log" / "reclaim.log").read_text().splitlines()]
    assert lines[-2]["step"] == "hugetlb_compact" and lines[-2]["changed"] is True and lines[-1]["failed"] is True
