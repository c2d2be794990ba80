# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""_sysctl/runtime.py: the /proc/sys read (one bounded read) and write, on trees and the live kernel."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from ansible_collections.memfrag.linux.plugins.module_utils._procfs import files
from ansible_collections.memfrag.linux.plugins.module_utils._procfs.files import ProcFileError, read_bytes
from ansible_collections.memfrag.linux.plugins.module_utils._sysctl.runtime import (
    SYSCTL_READ_LIMIT, has_sysctl, read_sysctl, read_value, write_problem, write_sysctl)
from ansible_collections.memfrag.linux.plugins.module_utils._procfs.release import read_release


def _proc(tmp_path, values):
    vm = tmp_path / "sys" / "vm"
    vm.mkdir(parents=True)
    for name, value in values.items():
        (vm / name).write_text(value)
    return str(tmp_path)


class _RecordingOpen(object):
    """Wraps the one reader's os.read (files.os.read) to record every read size asked of a file."""

    def __init__(self, monkeypatch):
        self.sizes = []
        real_read = os.read
        recorder = self

        def fake_read(fd, size):
            recorder.sizes.append(size)
            return real_read(fd, size)

        monkeypatch.setattr(files.os, "read", fake_read)


def test_runtime_roundtrip_truncates_and_never_creates(tmp_path):
    proc = _proc(tmp_path, {"min_free_kbytes": "1234567\n", "lowmem_reserve_ratio": "256\t256\t32\n"})
    assert read_value(proc, "vm/lowmem_reserve_ratio") == "256 256 32"
    assert write_sysctl(proc, "vm/min_free_kbytes", "90112") is None
    assert read_value(proc, "vm/min_free_kbytes") == "90112"
    error = write_sysctl(proc, "vm/swappiness", "10")
    assert error and "No such file" in error
    assert not os.path.exists(os.path.join(proc, "sys", "vm", "swappiness"))
    assert has_sysctl(proc, "vm/min_free_kbytes") and not has_sysctl(proc, "vm/swappiness")


def test_runtime_link_out_of_root_is_refused(tmp_path):
    target = tmp_path / "elsewhere"
    target.write_text("1\n")
    proc = tmp_path / "proc"
    (proc / "sys" / "vm").mkdir(parents=True)
    os.symlink(str(target), str(proc / "sys" / "vm" / "swappiness"))
    assert not has_sysctl(str(proc), "vm/swappiness")
    error = write_sysctl(str(proc), "vm/swappiness", "99")
    assert error and "outside" in error
    assert write_problem(str(proc), "vm/swappiness") and "outside" in write_problem(str(proc), "vm/swappiness")
    assert target.read_text() == "1\n"


def test_one_bounded_read_per_sysctl_file(tmp_path, monkeypatch):
    """The kernel is asked once, for SYSCTL_READ_LIMIT + 1 bytes (kvzalloc(count + 1) is one 4 KiB page)."""
    proc = _proc(tmp_path, {"min_free_kbytes": "67584\n"})
    recording = _RecordingOpen(monkeypatch)
    assert read_sysctl(proc, "vm/min_free_kbytes") == "67584\n"
    assert recording.sizes == [SYSCTL_READ_LIMIT + 1] and SYSCTL_READ_LIMIT + 2 == 4096


def test_sysctl_value_at_and_over_the_limit(tmp_path):
    proc = _proc(tmp_path, {"fits": "1" * SYSCTL_READ_LIMIT, "long": "1" * (SYSCTL_READ_LIMIT + 1)})
    assert len(read_sysctl(proc, "vm/fits")) == SYSCTL_READ_LIMIT
    with pytest.raises(ProcFileError, match="larger than 4094 bytes"):
        read_sysctl(proc, "vm/long")


def test_read_bytes_never_asks_for_more_than_the_limit(tmp_path, monkeypatch):
    (tmp_path / "big").write_bytes(b"x" * 200000)
    recording = _RecordingOpen(monkeypatch)
    assert len(read_bytes(str(tmp_path), "big")) == 200000
    assert max(recording.sizes) == files.READ_CHUNK_BYTES and recording.sizes[-1] > 0
    recording.sizes[:] = []
    with pytest.raises(ProcFileError, match="larger than 100000 bytes"):
        read_bytes(str(tmp_path), "big", limit=100000)
    assert sum(recording.sizes) == 100001, recording.sizes
    recording.sizes[:] = []
    with pytest.raises(ProcFileError):
        read_bytes(str(tmp_path), "big", limit=300)
    assert recording.sizes == [301]


def test_osrelease_is_read_like_any_sysctl(tmp_path, monkeypatch):
    (tmp_path / "sys" / "kernel").mkdir(parents=True)
    assert read_release(str(tmp_path)) is None
    (tmp_path / "sys" / "kernel" / "osrelease").write_text("5.10.0-30-amd64\n")
    recording = _RecordingOpen(monkeypatch)
    assert read_release(str(tmp_path)) == "5.10.0-30-amd64"
    assert recording.sizes == [SYSCTL_READ_LIMIT + 1]
    (tmp_path / "sys" / "kernel" / "osrelease").write_text("\n")
    assert read_release(str(tmp_path)) is None


def test_write_problem_on_a_writable_tree(tmp_path):
    proc = _proc(tmp_path, {"min_free_kbytes": "1\n"})
    assert write_problem(proc, "vm/min_free_kbytes") is None
    assert "does not exist" in write_problem(proc, "vm/swappiness")


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None, reason="needs root and unshare(1)")
def test_write_problem_and_write_on_a_read_only_mount(tmp_path):
    """A read-only bind mount of the tree, as a container's /proc/sys: named as such, before any write."""
    proc = _proc(tmp_path, {"min_free_kbytes": "1\n"})
    code = ("import sys; from ansible_collections.memfrag.linux.plugins.module_utils._sysctl.runtime import "
            "write_problem, write_sysctl; print(write_problem(sys.argv[1], 'vm/min_free_kbytes')); "
            "print(write_sysctl(sys.argv[1], 'vm/min_free_kbytes', '2'))")
    script = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && exec "$2" -c "$3" "$1"'
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    proc_run = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "ro", proc,
                               sys.executable, code], capture_output=True, text=True, env=env, timeout=60, check=False)
    assert proc_run.returncode == 0, proc_run.stderr
    problem, write_error = proc_run.stdout.splitlines()
    assert "read-only file system" in problem and "/proc/sys mounted read-only" in problem, problem
    assert "read-only file system" in write_error, write_error
    assert (tmp_path / "sys" / "vm" / "min_free_kbytes").read_text() == "1\n"


def test_live_read_is_one_page():
    if not os.path.exists("/proc/sys/vm/min_free_kbytes"):
        pytest.skip("needs a live /proc/sys/vm")
    assert int(read_value("/proc", "vm/min_free_kbytes")) > 0
    assert read_release("/proc") == os.uname().release


@pytest.mark.skipif(not os.access("/proc/sys/vm/compact_memory", os.F_OK), reason="needs a live /proc/sys/vm")
def test_runtime_live_rejection_is_reported():
    # Harmless on a live kernel: 0 is outside [1, 1000|3000] on every kernel that has the file.
    if os.geteuid() != 0:
        pytest.skip("needs root to write /proc/sys")
    before = read_value("/proc", "vm/watermark_scale_factor")
    error = write_sysctl("/proc", "vm/watermark_scale_factor", "0")
    assert error and "EINVAL" in error
    assert read_value("/proc", "vm/watermark_scale_factor") == before
