# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""run(): the guarded sequence on a copy of tests/fixtures/reclaim/fragmented (no live kernel touched)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading

import pytest

from ansible_collections.memfrag.linux.plugins.module_utils._reclaim.guards import RunLock
from ansible_collections.memfrag.linux.plugins.module_utils._reclaim.run import Request, check_options, run

FIXTURE = os.path.join(os.path.dirname(__file__), "..", "..", "..", "fixtures", "reclaim", "fragmented")
MIB = 1024 * 1024


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "host"
    shutil.copytree(FIXTURE, str(root))
    return root


def request(tree, action="compact_memory", value="1", trigger="proc/sys/vm/compact_memory", **kw):
    args = dict(action=action, targets=[(str(tree / trigger), value)], proc_root=str(tree / "proc"),
                lock_dir=str(tree / "run"), state_dir=str(tree / "lib"), audit_log=str(tree / "log" / "reclaim.log"),
                cooldown=900, check_mode=False, page_size=4096, what=action)
    args.update(kw)
    return Request(**args)


def audit_lines(tree):
    path = tree / "log" / "reclaim.log"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_writes_measures_records_and_audits(tree):
    result = run(request(tree))
    assert result["failed"] is False and result["changed"] is True and result["refused"] is None
    assert (tree / "proc/sys/vm/compact_memory").read_text() == "1"
    assert result["written"] == [{"path": str(tree / "proc/sys/vm/compact_memory"), "value": "1"}]
    assert [z["zone"] for z in result["before"]["zones"]] == ["DMA", "DMA32", "Normal"]
    assert result["after"]["zones"] == result["before"]["zones"]  # a fake tree: nothing moves
    assert result["summary"].startswith("compact_memory in ")
    assert json.loads((tree / "lib" / "compact_memory.state.json").read_text())["last_run"] > 0
    (line,) = audit_lines(tree)
    assert line["action"] == "compact_memory" and line["changed"] is True
    assert line["before"]["zones"][2]["free_blocks"][0] == 366684


def test_second_run_within_cooldown_writes_nothing(tree):
    run(request(tree))
    (tree / "proc/sys/vm/compact_memory").write_text("")
    result = run(request(tree))
    assert result["failed"] is False and result["changed"] is False and result["refused"] == "cooldown"
    assert 0 < result["cooldown_remaining"] <= 900
    assert (tree / "proc/sys/vm/compact_memory").read_text() == ""
    assert [line["refused"] for line in audit_lines(tree)] == [None, "cooldown"]


def test_cooldown_zero_always_runs(tree):
    run(request(tree, cooldown=0))
    (tree / "proc/sys/vm/compact_memory").write_text("")
    assert run(request(tree, cooldown=0))["changed"] is True
    assert (tree / "proc/sys/vm/compact_memory").read_text() == "1"


def test_lock_held_refuses(tree):
    holder = RunLock(str(tree / "run"))
    holder.acquire()
    try:
        result = run(request(tree))
    finally:
        holder.release()
    assert result["failed"] is True and result["refused"] == "lock_held" and result["changed"] is False
    assert (tree / "proc/sys/vm/compact_memory").read_text() == ""
    assert audit_lines(tree)[0]["refused"] == "lock_held"


def test_check_mode_writes_nothing_at_all(tree):
    result = run(request(tree, check_mode=True))
    assert result["changed"] is True and result["failed"] is False
    assert result["would"] == "write 1 to %s" % (tree / "proc/sys/vm/compact_memory")
    assert (tree / "proc/sys/vm/compact_memory").read_text() == ""
    for name in ("run", "lib", "log"):
        assert not (tree / name).exists()


def test_check_mode_reports_cooldown_and_lock(tree):
    run(request(tree))
    assert run(request(tree, check_mode=True))["refused"] == "cooldown"
    holder = RunLock(str(tree / "run"))
    holder.acquire()
    try:
        assert run(request(tree, check_mode=True, cooldown=0))["refused"] == "lock_held"
    finally:
        holder.release()


def test_missing_interface_fails_clearly(tree):
    os.unlink(str(tree / "proc/sys/vm/compact_memory"))
    result = run(request(tree))
    assert result["failed"] is True and result["refused"] == "missing"
    assert "CONFIG_COMPACTION" in result["msg"]
    assert not (tree / "proc/sys/vm/compact_memory").exists()


def test_truncated_buddyinfo_fails_before_writing(tree):
    (tree / "proc/buddyinfo").write_text("Node 0, zone   Normal  1 2 3\nNode 0, zone  DMA32 1 2\n")
    result = run(request(tree))
    assert result["failed"] is True and result["refused"] == "measure"
    assert "cannot measure before compact_memory" in result["msg"]
    assert (tree / "proc/sys/vm/compact_memory").read_text() == ""


def drop_request(tree, **kw):
    args = dict(action="drop_caches", value="1", trigger="proc/sys/vm/drop_caches", measure_meminfo=True,
                sync=True, sync_timeout=5, max_dirty_bytes=256 * MIB, sync_function=lambda: None)
    args.update(kw)
    return request(tree, **args)


def test_drop_caches_measures_meminfo_and_syncs(tree):
    result = run(drop_request(tree, value="3"))
    assert result["changed"] is True
    assert (tree / "proc/sys/vm/drop_caches").read_text() == "3"
    assert result["before"]["meminfo"]["Cached"] == 2334940 * 1024
    assert result["sync"]["completed"] is True
    assert "Cached 2280 MiB -> 2280 MiB" in result["summary"]


def test_dirty_above_limit_refuses(tree):
    result = run(drop_request(tree, max_dirty_bytes=8 * MIB))
    assert result["failed"] is True and result["refused"] == "dirty"
    assert "Dirty+Writeback is 12 MiB, above max_dirty_mb=8" in result["msg"]
    assert (tree / "proc/sys/vm/drop_caches").read_text() == ""


def test_slow_sync_refuses(tree):
    gate = threading.Event()
    try:
        result = run(drop_request(tree, sync_timeout=0.2, sync_function=gate.wait))
    finally:
        gate.set()
    assert result["failed"] is True and result["refused"] == "sync_timeout"
    assert (tree / "proc/sys/vm/drop_caches").read_text() == ""
    assert not (tree / "lib" / "drop_caches.state.json").exists()


@pytest.mark.parametrize("spoil", ["file_for_dir", "symlink", "fifo"])
def test_audit_log_that_cannot_be_written_refuses_before_the_trigger(tree, spoil):
    """Issue 10 item 7: an unwritable or symlinked audit log used to leave the trigger running, unaudited."""
    if spoil == "file_for_dir":
        (tree / "log").write_text("a file where the directory should be")
    else:
        (tree / "log").mkdir()
        if spoil == "symlink":
            os.symlink(str(tree / "elsewhere.log"), str(tree / "log" / "reclaim.log"))
        else:
            os.mkfifo(str(tree / "log" / "reclaim.log"))
    result = run(request(tree))
    assert result["failed"] is True and result["changed"] is False and result["refused"] == "io"
    assert (tree / "proc/sys/vm/compact_memory").read_text() == ""
    assert not (tree / "lib").exists() and not (tree / "elsewhere.log").exists()


def test_symlinked_state_dir_refuses_before_the_trigger(tree):
    """Issue 10 item 7: a symlinked state_dir meant the cooldown was never saved, so it never applied."""
    (tree / "real-state").mkdir()
    os.symlink(str(tree / "real-state"), str(tree / "lib"))
    result = run(request(tree))
    assert result["failed"] is True and result["refused"] in ("io", "state") and "symbolic link" in result["msg"]
    assert (tree / "proc/sys/vm/compact_memory").read_text() == ""
    assert os.listdir(str(tree / "real-state")) == []
    (line,) = audit_lines(tree)  # the refusal itself is audited
    assert line["refused"] == result["refused"] and line["changed"] is False


def test_fifo_trigger_is_refused_without_blocking(tree):
    trigger = tree / "proc/sys/vm/compact_memory"
    trigger.unlink()
    os.mkfifo(str(trigger))
    result = run(request(tree))
    assert result["failed"] is True and result["refused"] == "io" and "not a regular file" in result["msg"]


def test_failed_after_measurement_is_still_audited(tree):
    """Issue 10 item 2: a run that wrote the trigger and then failed measuring left no audit line."""
    def spoil():
        (tree / "proc/buddyinfo").write_text("Node 0, zone   Normal %s 1 1\n" % ("9" * 5000))
    result = run(request(tree, sync=True, sync_timeout=5, sync_function=spoil))
    assert result["changed"] is True and result["failed"] is False
    assert any("cannot measure after" in w for w in result["warnings"])
    (line,) = audit_lines(tree)
    assert line["changed"] is True and line["written"]


def test_trigger_failure_puts_the_cooldown_back(tree):
    (tree / "proc/sys/vm/compact_memory").chmod(0o444)
    subprocess.run(["chattr", "+i", str(tree / "proc/sys/vm/compact_memory")], check=True)
    try:
        result = run(request(tree))
    finally:
        subprocess.run(["chattr", "-i", str(tree / "proc/sys/vm/compact_memory")], check=True)
    assert result["failed"] is True and result["changed"] is False
    assert not (tree / "lib" / "compact_memory.state.json").exists()


@pytest.mark.parametrize("params, problem", [
    ({"page_size": -4096, "cooldown": 900}, "page_size must be a power of two"),
    ({"page_size": 4097, "cooldown": 900}, "page_size must be a power of two"),
    ({"page_size": None, "cooldown": -1}, "cooldown must be between 0"),
    ({"page_size": None, "cooldown": 900, "nodes": ["²"]}, "nodes must be [all] or a list of NUMA node ids"),
    ({"page_size": None, "cooldown": 900, "compact_nodes": ["auto", "0"]}, "compact_nodes must be"),
    ({"page_size": None, "cooldown": 900, "sync_timeout": 10 ** 12}, "sync_timeout must be between"),
    ({"page_size": None, "cooldown": 900, "sync_timeout": 90000}, "sync_timeout must be at most"),
])
def test_check_options_refuses(params, problem):
    counts = ("sync_timeout",) if "sync_timeout" in params else ()
    assert problem in check_options(params, counts=counts)


@pytest.mark.parametrize("params", [
    {"page_size": None, "cooldown": 0}, {"page_size": 65536, "cooldown": 900, "nodes": ["all"]},
    {"page_size": 4096, "cooldown": 900, "nodes": ["0", "12"]}, {"page_size": None, "cooldown": 1, "compact_nodes": ["auto"]},
])
def test_check_options_accepts(params):
    assert check_options(params) is None
