# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""From an XFS deadlock line to the file and its fix, on a real XFS file system (loop device, Debian xfsprogs).

Each test gets a fresh 1 GiB XFS file system (the fixture installs xfsprogs when missing and unmounts,
detaches and removes everything afterwards, also when the test fails), files of 20,500 extents (every other
block punched out; or, for the remedy, allocated block by block in turn with another file, since no
defragmenter can join extents that holes separate), and processes holding them open under names of their
own. Counts are checked against ``xfs_io -c stat``.
"""

from __future__ import annotations

import math
import os
import time
import uuid

import pytest

from helpers.xfs_loop import XfsLoop, extsize, interleaved, nextents, punched
from lab.lab import LabUnavailable

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (loop device, mount)")

BLOCKS = 20500  # one extent per block: 20,500 extents
SCAN = "Scan for fragmented files"


@pytest.fixture
def xfs(tmp_path):
    loop = XfsLoop(str(tmp_path / "xfs"))
    try:
        loop.start()
    except LabUnavailable as exc:
        pytest.skip(str(exc))
    try:
        yield loop
    finally:
        loop.stop()


def _play(tasks):
    return "- hosts: localhost\n  gather_facts: false\n  tasks:\n" + tasks


def _comm():
    return "mf%s" % uuid.uuid4().hex[:10]


def test_scan_counts_like_xfs_io_and_names_the_holder(xfs, run_playbook, tmp_path):
    mnt = xfs.mountpoint
    os.makedirs(os.path.join(mnt, "vm", "sub"))
    image = os.path.join(mnt, "vm", "db01.img")
    expected = punched(image, BLOCKS)
    assert expected == BLOCKS >= 20000
    with open(os.path.join(mnt, "vm", "sub", "small"), "w") as handle:
        handle.write("x")
    os.symlink(image, os.path.join(mnt, "link-to-image"))                     # never followed
    os.symlink(os.path.join(mnt, "vm"), os.path.join(mnt, "link-to-dir"))
    xfs.mount_tmpfs("vm/run")                                                 # never crossed
    other = tmp_path / "ext4-dir"
    other.mkdir()
    reader = xfs.hold(_comm(), image)
    run = run_playbook(_play("""
    - name: %(scan)s
      memfrag.linux.xfs_extent_scan:
        paths: [%(mnt)s, %(other)s, %(mnt)s/link-to-image]
        min_extents: 1000
      register: auto
    - name: The same with one fstatat per file
      memfrag.linux.xfs_extent_scan:
        paths: [%(mnt)s]
        min_extents: 1000
        method: stat
        open_by: false
    - name: Sizes for RHEL 7
      memfrag.linux.xfs_extent_scan:
        paths: [%(mnt)s]
        min_extents: 1000
        kernel_release: 3.10.0-1160.el7.x86_64
    - name: Files of one process
      memfrag.linux.xfs_extent_scan:
        pids: [%(pid)d]
        min_extents: 1000
    - name: Bounded
      memfrag.linux.xfs_extent_scan:
        paths: [%(mnt)s]
        max_files: 2
        min_extents: 1000
""" % {"scan": SCAN, "mnt": mnt, "other": other, "pid": reader.pid}))
    assert run.rc == 0, run.stdout[-3000:] + run.stderr[-3000:]
    result = run.task_result(SCAN)
    assert result["changed"] is False
    assert [item["path"] for item in result["files"]] == [image]          # once: no symlink path
    found = result["files"][0]
    assert found["extents"] == nextents(image) == expected
    assert found["mount"] == mnt and found["size"] == 2 * BLOCKS * 4096
    assert {"pid": reader.pid, "comm": reader.comm, "write": False, "mapped": False} in found["open_by"]
    assert (found["alloc_bytes"], found["alloc_order"]) == (256, 0)       # this kernel: iext b+tree
    reasons = dict((item["path"], item["reason"]) for item in result["skipped_paths"])
    assert reasons[str(other)] == "ext4 file system, not XFS"
    assert reasons[os.path.join(mnt, "link-to-image")] == "is a symbolic link; symlinks are never followed"
    walked = result["scanned"][0]
    # bulkstat listed one file with enough blocks; once it was met the rest of the tree had nothing to find
    assert walked["method"] == "bulkstat" and walked["opened"] == 1 and walked["walked"] == "until all found"
    assert result["stopped_early"] is None
    assert result["ansible_facts"]["memfrag_xfs_files"]["files"][0]["path"] == image

    by_stat = run.task_result("The same with one fstatat per file")
    walked = by_stat["scanned"][0]
    assert walked["method"] == "stat" and walked["walked"] == "all" and walked["opened"] == 1 and walked["too_small"] >= 1
    assert [item["path"] for item in by_stat["files"]] == [image] and by_stat["files"][0]["extents"] == expected
    assert by_stat["files"][0]["open_by"] == []
    reasons = dict((item["path"], item["reason"]) for item in by_stat["skipped_paths"])
    assert reasons[os.path.join(mnt, "vm", "run")] == "mount point of another file system (tmpfs on %s/vm/run); not crossed" % mnt

    rhel7 = run.task_result("Sizes for RHEL 7")["files"][0]
    # up to 4.14: 4 KiB extent buffers and a 16-byte index entry per 256 extents, whichever is larger
    assert rhel7["alloc_bytes"] == max(4096, 16 * math.ceil(expected / 256.0))
    assert run.task_result("Sizes for RHEL 7")["extent_map"]["era"] == "extent_list"

    by_pid = run.task_result("Files of one process")
    assert by_pid["processes"] == [{"pid": reader.pid, "comm": reader.comm, "xfs_files": 1, "max_extents": expected,
                                    "files": [image]}]
    assert by_pid["files"][0]["path"] == image and by_pid["scanned"] == []

    bounded = run.task_result("Bounded")
    assert bounded["stopped_early"]["reason"] == "max_files" and bounded["stopped_early"]["limit"] == 2


def test_planted_kernel_line_leads_diagnose_to_the_file(xfs, run_playbook, tmp_path):
    mnt = xfs.mountpoint
    held = os.path.join(mnt, "held.img")
    unheld = os.path.join(mnt, "unheld.img")
    extents, _other = interleaved(held, BLOCKS, unheld)
    holder = xfs.hold(_comm(), held, write=True)
    log = tmp_path / "messages"
    stamp = time.strftime("%b %e %H:%M:%S", time.localtime())
    log.write_text("%s testhost kernel: [ 2304.372647] XFS: %s(%d) possible memory allocation deadlock size 65552 "
                   "in kmem_alloc (mode:0x250)\n" % (stamp, holder.comm, holder.pid))
    role_vars = {"diagnose_log_sources": ["files"], "diagnose_log_paths": [str(log)], "diagnose_xfs_min_extents": 1000}
    run = run_playbook("""
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Diagnose with the XFS scan off (the default)
      ansible.builtin.include_role:
        name: memfrag.linux.diagnose
      vars:
        diagnose_show_findings: false
    - name: Diagnose with the XFS scan on auto
      ansible.builtin.include_role:
        name: memfrag.linux.diagnose
      vars:
        diagnose_xfs_scan: auto
""", extra_vars=role_vars)
    assert run.rc == 0, run.stdout[-3000:] + run.stderr[-3000:]
    judged = run.task_results("Gather memory facts, scan kernel logs and judge the host")
    assert len(judged) == 2
    off, auto = judged[0]["ansible_facts"], judged[1]["ansible_facts"]
    assert "memfrag_xfs_files" not in off
    assert not [item for item in off["memfrag_findings"] if item["code"].startswith("xfs_files")
                or item["code"] == "xfs_fragmented_files"]
    assert off["memfrag_log_counts"]["counts"]["xfs_alloc_deadlock"] == 1
    xfs_files = auto["memfrag_xfs_files"]
    assert xfs_files["log_processes"][0]["matched_by"] == "pid"
    assert (xfs_files["log_processes"][0]["comm"], xfs_files["log_processes"][0]["pid"]) == (holder.comm, holder.pid)
    # The process's files, not a walk of the mount: the file it does not hold is not there.
    assert [item["path"] for item in xfs_files["files"]] == [held]
    assert xfs_files["files"][0]["extents"] == extents == nextents(held)
    assert xfs_files["files"][0]["open_by"] == [{"pid": holder.pid, "comm": holder.comm, "write": True, "mapped": False}]
    finding = [item for item in auto["memfrag_findings"] if item["code"] == "xfs_fragmented_files"][0]
    assert finding["message"].startswith("XFS deadlock messages name %s(%d); the XFS files with the most extents are %s (%d extents"
                                         % (holder.comm, holder.pid, held, extents))
    shown = run.task_result("Show the verdict and findings of every host")["msg"]["localhost"]
    assert any(held in line for line in shown)


def test_remedy_lowers_the_count_and_refuses_a_written_file(xfs, run_playbook):
    mnt = xfs.mountpoint
    os.makedirs(os.path.join(mnt, "images"))
    read_only = os.path.join(mnt, "images", "backup-source.img")
    written = os.path.join(mnt, "images", "running-vm.img")
    before, written_before = interleaved(read_only, BLOCKS, written)
    assert before == written_before == BLOCKS
    reader = xfs.hold(_comm(), read_only)
    writer = xfs.hold(_comm(), written, write=True)
    role_vars = {"xfs_extents_files": [read_only, written], "xfs_extents_min_extents": 1000,
                 "xfs_extents_hint_dirs": [os.path.join(mnt, "images")], "xfs_extents_hint_size": "1m"}
    playbook = """
- hosts: localhost
  gather_facts: false
  roles:
    - role: memfrag.linux.xfs_extents
"""
    check = run_playbook(playbook, extra_vars=role_vars, check=True)
    assert check.rc == 0, check.stdout[-3000:] + check.stderr[-3000:]
    planned = check.task_result("Defragment the files and set extent size hints")
    assert [item["action"] for item in planned["files"]] == ["would_defragment", "refused"]
    assert planned["dirs"][0]["action"] == "would_set"
    assert nextents(read_only) == before and extsize(os.path.join(mnt, "images")) == 0   # check mode: nothing ran

    run = run_playbook(playbook, extra_vars=role_vars)
    assert run.rc == 0, run.stdout[-3000:] + run.stderr[-3000:]
    done = run.task_result("Defragment the files and set extent size hints")
    first, second = done["files"]
    assert first["action"] == "defragmented" and first["extents_before"] == before
    assert first["extents_after"] == nextents(read_only) < before
    assert first["open_by"] == [{"pid": reader.pid, "comm": reader.comm, "write": False, "mapped": False}]
    assert first["command"][-2:] == ["-v", read_only] and "ionice" in first["command"][4]
    assert second["action"] == "refused" and "%s(%d)" % (writer.comm, writer.pid) in second["reason"]
    assert second["extents_before"] == second["extents_after"] == nextents(written) == written_before
    assert done["dirs"][0]["action"] == "set" and extsize(os.path.join(mnt, "images")) == 1 << 20
    lines = run.task_result("Show extents before and after")["msg"]
    assert lines[0] == "%s: %d -> %d extents (defragmented)" % (read_only, before, first["extents_after"])
    assert lines[1].startswith("%s: %d -> %d extents (refused: open for writing by %s(%d)"
                               % (written, written_before, written_before, writer.comm, writer.pid))
    assert lines[2] == "%s: extent size hint 0 -> 1048576 bytes (set)" % os.path.join(mnt, "images")
