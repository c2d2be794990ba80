# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import json
import os
import stat
import subprocess

import pytest

from ansible_collections.memfrag.linux.plugins.module_utils._reclaim.guards import (
    AuditLog, GuardError, RunLock, append_audit, cooldown_remaining, dirty_bytes, read_state, restore_state, write_state)


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
    assert read_state(state_dir, "compact_memory") == {"last_run": 123.5}
    assert os.listdir(state_dir) == ["compact_memory.state.json"]
    assert stat.S_IMODE(os.stat(os.path.join(state_dir, "compact_memory.state.json")).st_mode) == 0o600


@pytest.mark.parametrize("content, problem", [
    ("{not json", "is not valid JSON"),
    ('{"last_run": "yesterday"}', "has no numeric last_run"),
    ('{"last_run": true}', "has no numeric last_run"),
    ("[1, 2]", "has no numeric last_run"),
    # issue 10: numbers past Python's 4,300-digit limit or too large for a float raised tracebacks
    ('{"last_run": %s}' % ("9" * 5000), "is not valid JSON"),
    ('{"last_run": 1e999}', "out of range"),
    ('{"last_run": NaN}', "is not valid JSON"),
    ('{"last_run": -5}', "out of range"),
    ('{"last_run": 1e300}', "out of range"),
    ("[" * 60000, "is not valid JSON"),
])
def test_corrupt_state_fails_closed(tmp_path, content, problem):
    """A state that cannot be trusted means the cooldown cannot be judged: refuse, naming the file."""
    (tmp_path / "drop_caches.state.json").write_text(content)
    with pytest.raises(GuardError) as info:
        read_state(str(tmp_path), "drop_caches")
    assert info.value.reason == "state"
    assert problem in info.value.message and "drop_caches.state.json" in info.value.message


def test_huge_state_file_is_refused_without_reading_it_all(tmp_path):
    (tmp_path / "drop_caches.state.json").write_text('{"last_run": 1, "pad": "%s"}' % ("x" * 200000))
    with pytest.raises(GuardError) as info:
        read_state(str(tmp_path), "drop_caches")
    assert "larger than" in info.value.message


def test_fifo_state_is_refused_without_blocking(tmp_path):
    os.mkfifo(str(tmp_path / "compact_memory.state.json"))
    with pytest.raises(GuardError) as info:
        read_state(str(tmp_path), "compact_memory")
    assert info.value.reason == "state" and "not a regular file (a FIFO)" in info.value.message


def test_symlinked_state_dir_is_refused_for_reading_and_writing(tmp_path):
    (tmp_path / "real").mkdir()
    os.symlink(str(tmp_path / "real"), str(tmp_path / "state"))
    for call in (lambda: read_state(str(tmp_path / "state"), "compact_memory"),
                 lambda: write_state(str(tmp_path / "state"), "compact_memory", {"last_run": 1.0})):
        with pytest.raises(GuardError) as info:
            call()
        assert "symbolic link" in info.value.message
    assert os.listdir(str(tmp_path / "real")) == []


def test_world_writable_state_dir_is_refused(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    os.chmod(str(state), 0o777)
    with pytest.raises(GuardError) as info:
        write_state(str(state), "compact_memory", {"last_run": 1.0})
    assert "writable by every user" in info.value.message


def test_missing_state_is_never_run(tmp_path):
    assert read_state(str(tmp_path / "absent"), "compact_memory") is None
    assert not (tmp_path / "absent").exists()


def test_restore_state_puts_back_or_removes(tmp_path):
    write_state(str(tmp_path), "x", {"last_run": 2.0})
    restore_state(str(tmp_path), "x", {"last_run": 1.0})
    assert read_state(str(tmp_path), "x") == {"last_run": 1.0}
    restore_state(str(tmp_path), "x", None)
    assert read_state(str(tmp_path), "x") is None


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
    with pytest.raises(GuardError) as info:
        append_audit(str(tmp_path / "reclaim.log"), {"a": 1})
    assert "symbolic link" in info.value.message
    assert target.read_text() == "root:x:0:0\n"


@pytest.mark.parametrize("kind", ["fifo", "directory"])
def test_audit_log_that_is_not_a_regular_file_is_refused_without_blocking(tmp_path, kind):
    path = tmp_path / "reclaim.log"
    if kind == "fifo":
        os.mkfifo(str(path))  # no reader: a blocking open for writing would hang forever
    else:
        path.mkdir()
    log = AuditLog(str(path))
    with pytest.raises(GuardError) as info:
        log.open()
    assert info.value.reason == "io" and log.fd is None


def test_unwritable_audit_log_is_refused(tmp_path):
    path = tmp_path / "reclaim.log"
    path.write_text("")
    # chattr +i: even root gets EPERM when opening for writing. Always undone.
    subprocess.run(["chattr", "+i", str(path)], check=True)
    try:
        with pytest.raises(GuardError) as info:
            AuditLog(str(path)).open()
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)
    assert "cannot open audit log" in info.value.message


def test_lock_file_fifo_is_refused(tmp_path):
    os.mkfifo(str(tmp_path / "reclaim.lock"))
    with pytest.raises(GuardError) as info:
        RunLock(str(tmp_path)).acquire()
    assert "not a regular file" in info.value.message


def test_dirty_bytes():
    assert dirty_bytes({"Dirty": 10, "Writeback": 5, "MemFree": 99}) == 15
    assert dirty_bytes({}) == 0
