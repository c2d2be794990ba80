# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/reclaim.yml on this machine's live kernel, against memory fragmented for real.

tests/helpers/fragmenter.py builds each shape in a child process capped by RLIMIT_AS (2 GiB here,
freed when the test ends, pass or fail). The assertions follow what the kernel really does, measured
independently from /proc, with memory newly brought into the zone by lazy deferred init taken out:

- page cache interleaved with free holes (drop_caches' case): dropping the page cache frees the
  file's pages next to the holes, so free memory at order >= 4 must rise (by how much depends on how
  many holes the machine's other allocations refilled meanwhile; see the test).
- movable anonymous pages with free holes (compaction's case): on 6.x kernels compaction gives up a
  zone at the first large folio it cannot place (status=contended in the compaction trace, see
  tools/trace_compaction.py), so it may recover little or nothing. The test asserts that the
  kernel really ran compaction and that the role reports what the kernel gave, not a number it hoped for.
- a second run within the cooldown changes nothing.

Guards use private directories. The live writes are the kernel triggers (compact_memory, drop_caches 1) and
nr_hugepages, which the ladder raises for allocation-driven compaction and puts back; every test checks that
nr_hugepages (and compaction_proactiveness) end where they started, and restores them if not.
"""
from __future__ import annotations

import os

import pytest

from collection_tree import REPO_ROOT
from helpers.fragmenter import Fragmenter
from helpers import livemem

PLAYBOOK = os.path.join(REPO_ROOT, "playbooks", "reclaim.yml")
PREFIX = "memfrag.linux.reclaim : "
MIB = livemem.MIB
SHAPE_MIB = 2048


def _live_ok():
    if os.geteuid() != 0:
        return "needs root"
    if not os.access("/proc/sys/vm/compact_memory", os.W_OK):
        return "no writable /proc/sys/vm/compact_memory on this host"
    if livemem.snapshot()["meminfo"].get("MemAvailable", 0) < 3 * SHAPE_MIB * MIB:
        return "less than %d MiB available; the fragmenter would put the host under pressure" % (3 * SHAPE_MIB)
    return None


pytestmark = pytest.mark.skipif(_live_ok() is not None, reason=_live_ok() or "")

TUNABLES = ("/proc/sys/vm/nr_hugepages", "/proc/sys/vm/compaction_proactiveness")


def _read(path):
    with open(path) as handle:
        return handle.read().strip()


@pytest.fixture(autouse=True)
def tunables_restored():
    """Every tunable the ladder may touch ends where it started; restored (and the test failed) if not."""
    saved = dict((path, _read(path)) for path in TUNABLES if os.path.exists(path))
    yield
    changed = dict((path, _read(path)) for path in saved if _read(path) != saved[path])
    for path in changed:
        with open(path, "w") as handle:
            handle.write(saved[path])
    assert not changed, "tunables not restored by the ladder: %r (were %r)" % (changed, saved)


def role_vars(tmp_path, target_mb, **extra):
    values = {
        "reclaim_lock_dir": str(tmp_path / "run"), "reclaim_state_dir": str(tmp_path / "state"),
        "reclaim_audit_log": str(tmp_path / "log" / "reclaim.log"),
        "reclaim_zones": ["Normal"], "reclaim_target_free_mb": target_mb,
        # Other engineers share this machine and write gigabytes; the dirty guard itself is tested on fake trees.
        "reclaim_max_dirty_mb": 16384, "reclaim_sync_timeout": 300,
        "reclaim_use_kernel_log": False,
    }
    values.update(extra)
    return values


def reclaim_fact(run):
    assert run.rc == 0, run.stdout[-4000:] + run.stderr[-2000:]
    return run.task_result(PREFIX + "Reclaim memory, least damage first")["ansible_facts"]["memfrag_reclaim"]


def target_for(snap):
    """A target the fragmented Normal zone misses but could meet: up to 512 MiB more than it has at order >= 4, and
    never more than it has free at all. A zone without that much free memory is short of memory, not fragmented,
    and the ladder rightly leaves it alone; with lazy deferred struct-page init and a page cache filling the zone
    (other jobs on the machine) MemAvailable can be gigabytes while the zone itself holds little free memory."""
    high = livemem.high(snap, 4, "Normal")
    room = livemem.high(snap, 0, "Normal") - high  # free memory in blocks below order 4: what merging could add
    if room < 128 * MIB:
        pytest.skip("the Normal zone has only %d MiB free below order 4; no fragmentation to recover" % (room // MIB))
    return int((high + min(512 * MIB, room // 2)) // MIB)


def test_pagecache_holes_are_recovered_and_a_second_run_changes_nothing(run_playbook, tmp_path):
    with Fragmenter("pagecache", SHAPE_MIB) as frag:
        before = livemem.snapshot()
        target = target_for(before)
        fact = reclaim_fact(run_playbook(PLAYBOOK, extra_vars=role_vars(tmp_path, target)))
        after = livemem.snapshot()

        assert fact["needed"] is True and "zone Normal has" in fact["reason"]
        actions = [a["action"] for a in fact["actions"]]
        assert actions[0] == "compact_memory" and fact["actions"][0]["changed"] is True
        gain4 = livemem.net_gain(before, after, 4, "Normal")
        gain9 = livemem.net_gain(before, after, 9, "Normal")
        print("\npagecache shape: holes %d MiB, target %d MiB, actions %s, Normal order>=4 net gain %+d MiB, "
              "order>=9 net gain %+d MiB, Cached %d -> %d MiB, zone growth %d MiB"
              % (frag.info["hole_bytes"] // MIB, target, actions, gain4 // MIB, gain9 // MIB,
                 before["meminfo"]["Cached"] // MIB, after["meminfo"]["Cached"] // MIB, livemem.growth(before, after, "Normal") // MIB))
        if "drop_caches pagecache" not in actions:
            # a step before the drop was enough: the gain is real and the page cache was kept
            assert fact["target_met"] and gain4 > 0
            assert after["meminfo"]["Cached"] > before["meminfo"]["Cached"] // 2
        else:
            # The drop really freed the file's pages (Cached fell by most of what the fragmenter left cached), and
            # free memory at order >= 4 rose, measured from outside and by the module. How much it rose is not
            # asserted: the buddy allocator serves every order-0 request from the smallest free blocks, so each page
            # of page cache or process memory allocated on the machine during the run (Ansible's own processes and
            # file reads among them) refills a hole before the drop can merge it. Measured on this 6.18 host over
            # repeated runs: from +68 MiB to +1149 MiB out of 1024 MiB of holes.
            dropped = before["meminfo"]["Cached"] - after["meminfo"]["Cached"]
            assert dropped >= frag.info["hole_bytes"] * 9 // 10, (dropped, frag.info["hole_bytes"])
            assert gain4 > 0
        assert fact["after_high_order_bytes"] > fact["before_high_order_bytes"]

        # Second run at once: forced to "needed" by the guard query, held back by the cooldown.
        second = run_playbook(PLAYBOOK, extra_vars=role_vars(tmp_path, target, reclaim_guard_query="`true`"))
        fact2 = reclaim_fact(second)
        assert fact2["needed"] is True
        assert [(a["action"], a["changed"], a["refused"]) for a in fact2["actions"]] == [("reclaim_memory", False, "cooldown")]
        assert second.stats["localhost"]["changed"] == 0


def test_anonymous_holes_compaction_reports_what_the_kernel_gave(run_playbook, tmp_path):
    with Fragmenter("anon", SHAPE_MIB) as frag:
        before = livemem.snapshot()
        target = target_for(before)
        run = run_playbook(PLAYBOOK, extra_vars=role_vars(tmp_path, target, reclaim_allow_drop_pagecache=False))
        fact = reclaim_fact(run)
        after = livemem.snapshot()

        assert fact["needed"] is True
        actions = [a["action"] for a in fact["actions"]]
        assert actions[0] == "compact_memory" and fact["actions"][0]["changed"] is True
        assert "drop_caches pagecache" not in actions
        # The kernel really compacted: its migrate scanner walked the zones.
        assert livemem.delta(before, after, "compact_migrate_scanned") > 0
        gain4 = livemem.net_gain(before, after, 4, "Normal")
        print("\nanon shape: holes %d MiB, compaction migrated %d pages (%d failed), Normal order>=4 net gain %+d MiB, "
              "role says target %s"
              % (frag.info["hole_bytes"] // MIB, livemem.delta(before, after, "pgmigrate_success"),
                 livemem.delta(before, after, "pgmigrate_fail"), gain4 // MIB, "met" if fact["target_met"] else "NOT met"))
        # The role's verdict must agree with an independent read of /proc/buddyinfo, whatever the kernel gave.
        normal_after = livemem.high(livemem.snapshot(), 4, "Normal")
        slack = 64 * MIB  # other processes allocate and free between the two reads
        if fact["target_met"]:
            assert normal_after >= target * MIB - slack
        else:
            assert normal_after < target * MIB + slack
            assert run.task_result(PREFIX + "Report what was done and achieved")["msg"]["localhost"][-1].endswith("NOT met")


def test_check_mode_is_a_dry_run(run_playbook, tmp_path):
    before = livemem.snapshot()
    target = int(livemem.high(before, 4, "Normal") // MIB) + 512  # forced "needed" by the guard query, whatever it is
    fact = reclaim_fact(run_playbook(PLAYBOOK, check=True,
                                     extra_vars=role_vars(tmp_path, target, reclaim_guard_query="`true`")))
    assert fact["needed"] is True and fact["check_mode"] is True
    assert fact["actions"] and all(a["summary"].startswith("check mode: ") for a in fact["actions"])
    # what this kernel lacks (cgroup v2 memory.reclaim on a cgroup v1 host) is listed as not available
    assert all(a["summary"].startswith("check mode: would ") for a in fact["actions"] if a["refused"] is None)
    assert not (tmp_path / "state").exists() and not (tmp_path / "log").exists()
