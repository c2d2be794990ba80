# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""_process_memory: RSS sum from statm or status, vanished pids, kernel threads, symlinks, speed."""

from __future__ import annotations

import os
import time

import pytest

from ansible_collections.memfrag.linux.plugins.module_utils._procfs.process_memory import (
    process_rss, rss_from_statm, rss_from_status)


def _pid(root, pid, statm=None, status=None):
    directory = root / str(pid)
    directory.mkdir()
    if statm is not None:
        (directory / "statm").write_text(statm)
    if status is not None:
        (directory / "status").write_text(status)
    return directory


@pytest.mark.parametrize("data, page_size, expected", [
    (b"4532 1280 900 100 0 600 0\n", 4096, 1280 * 4096),
    (b"4532 1280 900 100 0 600 0\n", 65536, 1280 * 65536),
    (b"0 0 0 0 0 0 0\n", 4096, 0),           # kernel thread
    (b"4532\n", 4096, None),                 # cut short
    (b"", 4096, None),                       # empty: the process exited while we read
    (b"4532 x 900\n", 4096, None),
])
def test_rss_from_statm(data, page_size, expected):
    assert rss_from_statm(data, page_size) == expected


@pytest.mark.parametrize("data, expected", [
    (b"Name:\tbash\nVmRSS:\t    5120 kB\n", 5120 * 1024),
    (b"Name:\tkthreadd\nState:\tS (sleeping)\n", 0),   # kernel threads have no VmRSS line
    (b"", None),
    (b"garbage\n", None),
    (b"Name:\tx\nVmRSS:\t  lots kB\n", None),
])
def test_rss_from_status(data, expected):
    assert rss_from_status(data) == expected


def test_tree_with_statm_status_kernel_threads_and_junk(tmp_path):
    _pid(tmp_path, 1, statm="4532 1280 900 100 0 600 0\n")                    # 1280 pages
    _pid(tmp_path, 2, statm="0 0 0 0 0 0 0\n")                                # kernel thread
    _pid(tmp_path, 315, status="Name:\tpostgres\nVmRSS:\t   51200 kB\n")      # sosreport: status only
    _pid(tmp_path, 400, statm="100 10 0 0 0 0 0\n", status="Name:\tx\nVmRSS:\t999 kB\n")  # statm wins
    _pid(tmp_path, 77)                                                         # exited: nothing left
    (tmp_path / "sys").mkdir()                                                 # not a pid
    (tmp_path / "meminfo").write_text("MemTotal: 1 kB\n")
    (tmp_path / "self").symlink_to("315")                                      # not numeric: ignored
    result = process_rss(str(tmp_path), 4096)
    assert result.as_fact() == {"count": 4, "rss_bytes": (1280 + 10) * 4096 + 51200 * 1024, "without_rss": 1}


def test_symlinks_out_of_root_are_never_followed(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "statm").write_text("1 1000000 0 0 0 0 0\n")
    (outside / "status").write_text("Name:\tx\nVmRSS:\t999999 kB\n")
    root = tmp_path / "proc"
    root.mkdir()
    (root / "10").symlink_to(outside)                       # a pid directory that is a link
    pid = _pid(root, 11)
    (pid / "statm").symlink_to(outside / "statm")          # pid files that are links
    (pid / "status").symlink_to(outside / "status")
    _pid(root, 12, statm="5 2 0 0 0 0 0\n")
    result = process_rss(str(root), 4096)
    assert result.as_fact() == {"count": 1, "rss_bytes": 2 * 4096, "without_rss": 0}


def test_unlistable_root_raises_oserror(tmp_path):
    with pytest.raises(OSError):
        process_rss(str(tmp_path / "absent"), 4096)


def test_thousands_of_pids_are_fast(tmp_path):
    for pid in range(1, 3001):
        directory = tmp_path / str(pid)
        directory.mkdir()
        (directory / "statm").write_text("100 %d 0 0 0 0 0\n" % (pid % 7))
    started = time.monotonic()
    result = process_rss(str(tmp_path), 4096)
    elapsed = time.monotonic() - started
    assert result.count == 3000
    assert result.rss_bytes == sum(pid % 7 for pid in range(1, 3001)) * 4096
    assert elapsed < 2.0, "3000 pids took %.2fs" % elapsed


def test_live_proc_includes_this_process():
    with open("/proc/self/statm") as handle:
        own_rss = int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    result = process_rss("/proc", os.sysconf("SC_PAGE_SIZE"))
    assert result.count >= 2
    assert result.rss_bytes >= own_rss > 0
    assert result.without_rss >= 1  # kthreadd and friends
