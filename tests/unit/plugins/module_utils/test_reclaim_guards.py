# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import json
import os
import stat

import pytest

from ansible_collections.memfrag.linux.plugins.module_utils._reclaim.guards import (
    GuardError, RunLock, append_audit, cooldown_remaining, dirty_bytes, read_state, write_state)


def test_lock_is_exclusive_and_released(tmp_path):
    lock_dir = str(tmp_path / "run" / "memfrag")
    first = RunLock(lock_dir)
    first.acquire()
    assert stat.S_IMODE(os.stat(lock_dir).st_mode) == 0o700
    second = RunLock(lock_dir)
    assert second.held_elsewhere()
    with pytest.raises(GuardError) as info:
        second.acquire()
    assert info.value.reason == "lock_held"
    assert "another memfrag reclaim run holds" in info.value.message
    first.release()
    assert not second.held_elsewhere()
    second.acquire()
    second.release()


def test_lock_probe_creates_nothing(tmp_path):
    assert not RunLock(str(tmp_path / "absent")).held_elsewhere()
    assert not (tmp_path / "absent").exists()


def test_lock_refuses_a_symlinked_lock_file(tmp_path):
    (tmp_path / "elsewhere").write_text("")
    os.symlink(str(tmp_path / "elsewhere"), str(tmp_path / "reclaim.lock"))
    with pytest.raises(GuardError) as info:
        RunLock(str(tmp_path)).acquire()
    assert info.value.reason == "io"


@pytest.mark.parametrize("state, cooldown, now, expected", [
    (None, 900, 1000.0, 0.0),
    ({"last_run": 1000.0}, 900, 1100.0, 800.0),
    ({"last_run": 1000.0}, 900, 1900.0, 0.0),
    ({"last_run": 1000.0}, 0, 1001.0, 0.0),
    # a clock that went backwards never blocks forever
    ({"last_run": 5000.0}, 900, 1000.0, 0.0),
])
def test_cooldown_remaining(state, cooldown, now, expected):
    assert cooldown_remaining(state, cooldown, now) == expected


def test_state_round_trip_is_private_and_atomic(tmp_path):
    state_dir = str(tmp_path / "lib" / "memfrag")
    write_state(state_dir, "compact_memory", {"last_run": 123.5})
    data, warnings = read_state(state_dir, "compact_memory")
    assert data == {"last_run": 123.5} and warnings == []
    assert os.listdir(state_dir) == ["compact_memory.state.json"]
    assert stat.S_IMODE(os.stat(os.path.join(state_dir, "compact_memory.state.json")).st_mode) == 0o600


@pytest.mark.parametrize("content, warning", [
    ("{not json", "is not JSON"),
    ('{"last_run": "yesterday"}', "has no numeric last_run"),
    ("[1, 2]", "has no numeric last_run"),
])
def test_corrupt_state_is_a_warning(tmp_path, content, warning):
    (tmp_path / "drop_caches.state.json").write_text(content)
    data, warnings = read_state(str(tmp_path), "drop_caches")
    assert data is None
    assert len(warnings) == 1 and warning in warnings[0]


def test_audit_appends_one_json_line_per_call_root_only(tmp_path):
    log = str(tmp_path / "log" / "memfrag" / "reclaim.log")
    append_audit(log, {"action": "compact_memory", "changed": True})
    append_audit(log, {"action": "drop_caches", "changed": False})
    lines = open(log).read().splitlines()
    assert [json.loads(line)["action"] for line in lines] == ["compact_memory", "drop_caches"]
    assert stat.S_IMODE(os.stat(log).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(log)).st_mode) == 0o700


def test_audit_tightens_an_existing_world_readable_log(tmp_path):
    log = tmp_path / "reclaim.log"
    log.write_text("")
    os.chmod(str(log), 0o644)
    append_audit(str(log), {"a": 1})
    assert stat.S_IMODE(os.stat(str(log)).st_mode) == 0o600


def test_audit_never_writes_through_a_symlink(tmp_path):
    target = tmp_path / "passwd"
    target.write_text("root:x:0:0\n")
    os.symlink(str(target), str(tmp_path / "reclaim.log"))
    with pytest.raises(OSError):
        append_audit(str(tmp_path / "reclaim.log"), {"a": 1})
    assert target.read_text() == "root:x:0:0\n"


def test_dirty_bytes():
    assert dirty_bytes({"Dirty": 10, "Writeback": 5, "MemFree": 99}) == 15
    assert dirty_bytes({}) == 0
