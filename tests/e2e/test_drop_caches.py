# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""memfrag.linux.drop_caches through ansible-playbook on a fake host tree (nothing live is written;
the module's sync is real but harmless)."""
from __future__ import annotations

import os
import shutil

import pytest

from helpers.reclaim_tree import Immutable, audit, guard_args, make_tree, one_task


@pytest.fixture
def root(tmp_path):
    return make_tree(tmp_path)


@pytest.mark.parametrize("level, value", [("pagecache", "1"), ("slab", "2"), ("both", "3")])
def test_levels_write_the_kernel_value(run_playbook, root, level, value):
    result = run_playbook(one_task("drop_caches", dict(guard_args(root), level=level))).task_result("run")
    assert result["changed"] is True, result
    assert (root / "proc/sys/vm/drop_caches").read_text() == value
    assert result["before"]["meminfo"]["SReclaimable"] == 181952 * 1024
    assert result["sync"]["completed"] is True
    assert "Cached 2280 MiB -> 2280 MiB" in result["summary"]
    assert audit(root)[0]["written"] == [{"path": str(root / "proc/sys/vm/drop_caches"), "value": value}]


def test_dirty_limit_refuses(run_playbook, root):
    result = run_playbook(one_task("drop_caches", dict(guard_args(root), max_dirty_mb=8))).task_result("run")
    assert result["failed"] is True and result["refused"] == "dirty"
    assert "Dirty+Writeback is 12 MiB, above max_dirty_mb=8" in result["msg"]
    assert (root / "proc/sys/vm/drop_caches").read_text() == ""
    assert audit(root)[0]["refused"] == "dirty"


def test_cooldown_and_check_mode(run_playbook, root):
    args = dict(guard_args(root), cooldown=3600)
    dry = run_playbook(one_task("drop_caches", args), check=True).task_result("run")
    assert dry["changed"] is True and "check mode: would sync (at most 60s), then write 1 to" in dry["msg"]
    assert (root / "proc/sys/vm/drop_caches").read_text() == "" and audit(root) == []
    run_playbook(one_task("drop_caches", args))
    (root / "proc/sys/vm/drop_caches").write_text("")
    again = run_playbook(one_task("drop_caches", dict(args, level="both"))).task_result("run")
    assert again["changed"] is False and again["refused"] == "cooldown"
    assert (root / "proc/sys/vm/drop_caches").read_text() == ""
    dry_again = run_playbook(one_task("drop_caches", args), check=True).task_result("run")
    assert dry_again["changed"] is False and dry_again["msg"].startswith("would skip drop_caches: within the cooldown")


def test_missing_meminfo_fails_before_writing(run_playbook, root):
    os.unlink(str(root / "proc/meminfo"))
    result = run_playbook(one_task("drop_caches", guard_args(root))).task_result("run")
    assert result["failed"] is True and result["refused"] == "measure"
    assert "meminfo" in result["msg"]
    assert (root / "proc/sys/vm/drop_caches").read_text() == ""


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("chattr") is None, reason="needs root and chattr")
def test_read_only_proc_sys(run_playbook, root):
    with Immutable(root / "proc/sys/vm/drop_caches"):
        result = run_playbook(one_task("drop_caches", guard_args(root))).task_result("run")
    assert result["failed"] is True and result["refused"] == "read_only"
