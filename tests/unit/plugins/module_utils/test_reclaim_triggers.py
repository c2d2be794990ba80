# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import errno
import os
import threading

import pytest

from ansible_collections.memfrag.linux.plugins.module_utils._reclaim import triggers


def test_compact_paths_all_and_nodes(tmp_path):
    proc, sys_root = str(tmp_path / "proc"), str(tmp_path / "sys")
    assert triggers.compact_paths(proc, sys_root, ["all"]) == [os.path.join(proc, "sys/vm/compact_memory")]
    assert triggers.compact_paths(proc, sys_root, ["0", 2]) == [
        os.path.join(sys_root, "devices/system/node/node0/compact"),
        os.path.join(sys_root, "devices/system/node/node2/compact")]


@pytest.mark.parametrize("nodes", [["x"], ["-1"], ["all", "0"], ["../0"], ["²"], ["١"], ["99999"], [" 1"]])
def test_compact_paths_reject_bad_nodes(tmp_path, nodes):
    with pytest.raises(triggers.TriggerError) as info:
        triggers.compact_paths(str(tmp_path), str(tmp_path), nodes)
    assert info.value.reason == "rejected"


def test_write_trigger_writes_the_value_without_creating(tmp_path):
    trigger = tmp_path / "drop_caches"
    trigger.write_text("")
    triggers.write_trigger(str(trigger), "3")
    assert trigger.read_text() == "3"
    with pytest.raises(triggers.TriggerError) as info:
        triggers.write_trigger(str(tmp_path / "compact_memory"), "1")
    assert info.value.reason == "missing"
    assert "CONFIG_COMPACTION" in info.value.message
    assert not (tmp_path / "compact_memory").exists()


def test_write_trigger_refuses_symlinks(tmp_path):
    target = tmp_path / "victim"
    target.write_text("keep")
    os.symlink(str(target), str(tmp_path / "compact_memory"))
    with pytest.raises(triggers.TriggerError) as info:
        triggers.write_trigger(str(tmp_path / "compact_memory"), "1")
    assert info.value.reason == "io"
    assert target.read_text() == "keep"
    with pytest.raises(triggers.TriggerError):
        triggers.check_writable(str(tmp_path / "compact_memory"))


@pytest.mark.parametrize("code, reason, words", [
    (errno.EROFS, "read_only", "read-only /proc/sys"),
    (errno.EACCES, "read_only", "read-only /proc/sys"),
    (errno.EPERM, "read_only", "not root"),
    (errno.EINVAL, "rejected", "rejected '2'"),
    (errno.EIO, "io", "cannot write"),
])
def test_write_errors_are_classified(tmp_path, monkeypatch, code, reason, words):
    trigger = tmp_path / "compact_memory"
    trigger.write_text("")

    def failing_write(fd, data):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(triggers.os, "write", failing_write)
    with pytest.raises(triggers.TriggerError) as info:
        triggers.write_trigger(str(trigger), "2")
    assert info.value.reason == reason
    assert words in info.value.message


def test_check_writable_reports_missing_node(tmp_path):
    with pytest.raises(triggers.TriggerError) as info:
        triggers.check_writable(str(tmp_path / "devices/system/node/node7/compact"))
    assert info.value.reason == "missing" and "no such NUMA node" in info.value.message


def test_bounded_sync_finishes_and_times_out():
    done, waited = triggers.bounded_sync(5, lambda: None)
    assert done and waited < 5
    gate = threading.Event()
    done, waited = triggers.bounded_sync(0.2, gate.wait)
    assert not done and waited >= 0.2
    gate.set()


def test_drop_levels_are_the_kernel_values():
    assert triggers.DROP_LEVELS == {"pagecache": 1, "slab": 2, "both": 3}


def test_fifo_trigger_is_refused_without_blocking(tmp_path):
    """Issue 10 item 1: a FIFO with no reader used to block the open for writing forever."""
    path = str(tmp_path / "compact_memory")
    os.mkfifo(path)
    for call in (lambda: triggers.check_writable(path), lambda: triggers.write_trigger(path, "1"),
                 lambda: triggers.read_number(path)):
        with pytest.raises(triggers.TriggerError) as info:
            call()
        assert info.value.reason == "io"


@pytest.mark.parametrize("content, ok", [("0\n", 0), ("1024\n", 1024), ("", None), ("9" * 40, None), ("-1", None),
                                         ("12 34", None)])
def test_read_number(tmp_path, content, ok):
    path = tmp_path / "nr_hugepages"
    path.write_text(content)
    if ok is None:
        with pytest.raises(triggers.TriggerError):
            triggers.read_number(str(path))
    else:
        assert triggers.read_number(str(path)) == ok


def test_write_trigger_replaces_the_value_of_a_fake_file(tmp_path):
    path = tmp_path / "nr_hugepages"
    path.write_text("88\n")
    triggers.write_trigger(str(path), "0")
    assert path.read_text() == "0"
