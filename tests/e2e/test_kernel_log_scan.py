# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""kernel_log_scan through real ansible-playbook: the live ring buffer, rotated and compressed files.

Writing to /dev/kmsg from userspace is the only way to put a known line into the live ring buffer,
but the kernel stamps such records with syslog facility ``user`` (it never lets a process claim
facility ``kern``). The module therefore ignores them by default - exactly what keeps a spoofed line
from raising an alarm - and these tests check both halves: ignored by default (counted in
``ignored.userspace_kmsg``), found with ``include_userspace_kmsg: true`` and marked
``origin: kmsg_userspace``.
"""

from __future__ import annotations

import gzip
import json
import os
import uuid

import pytest

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists("/dev/kmsg"),
                                reason="needs root and /dev/kmsg (writes test lines into the live ring buffer)")

XFS = "XFS: possible memory allocation deadlock in kmem_alloc (mode:0x250)"


def _write_kmsg(lines):
    # One write per record; the kernel rate-limits userspace writers (printk_devkmsg), a few are fine.
    fd = os.open("/dev/kmsg", os.O_WRONLY)
    try:
        for line in lines:
            os.write(fd, line.encode())
    finally:
        os.close(fd)


def _play(tasks):
    return "- hosts: localhost\n  gather_facts: false\n  tasks:\n" + tasks


def test_kmsg_lines_written_by_a_process_are_found_only_when_asked(run_playbook, tmp_path):
    marker = "mf%s" % uuid.uuid4().hex[:10]
    _write_kmsg([
        "<3>XFS: %s(4242) possible memory allocation deadlock size 65536 in kmem_alloc (mode:0x250)\n" % marker,
        "<3>INFO: task %s:4243 blocked for more than 120 seconds.\n" % marker,
    ])
    state = tmp_path / "state.json"
    run = run_playbook(_play("""
    - name: default - only the kernel speaks
      memfrag.linux.kernel_log_scan:
        sources: [kmsg]
        max_events: 100000
      register: default_scan
    - name: userspace records included
      memfrag.linux.kernel_log_scan:
        sources: [kmsg]
        include_userspace_kmsg: true
        kernel_release: 3.10.0-1160.el7.x86_64
        max_events: 100000
        state_file: %s
      register: first
    - name: again with the state file
      memfrag.linux.kernel_log_scan:
        sources: [kmsg]
        include_userspace_kmsg: true
        state_file: %s
      register: second
""" % (state, state)))
    assert run.rc == 0, run.stdout[-3000:]
    default = run.task_result("default - only the kernel speaks")
    assert not [e for e in default["events"] if marker in e["message"]]
    assert default["ignored"]["userspace_kmsg"] >= 2
    assert default["sources"]["kmsg"]["status"] == "scanned"
    first = run.task_result("userspace records included")
    mine = [e for e in first["events"] if marker in e["message"]]
    assert sorted(e["kind"] for e in mine) == ["hung_task", "xfs_alloc_deadlock"]
    assert {e["origin"] for e in mine} == {"kmsg_userspace"} and {e["source"] for e in mine} == {"kmsg"}
    xfs = [e for e in mine if e["kind"] == "xfs_alloc_deadlock"][0]
    assert (xfs["comm"], xfs["pid"], xfs["size"], xfs["mode"]) == (marker, 4242, 65536, 0x250)
    assert xfs["gfp_flags"] == ["GFP_NOFS", "__GFP_NOWARN"] and xfs["timestamp"] and xfs["uptime"] > 0
    assert first["changed"] is True
    saved = json.loads(state.read_text())
    assert saved["kmsg"]["seq"] > 0 and saved["kmsg"]["boot_id"]
    second = run.task_result("again with the state file")
    assert not [e for e in second["events"] if marker in e["message"]]


def _rotated_logs(directory):
    """messages (current), messages.1 (plain), messages.2.gz, messages.3.gz (cut short) like logrotate leaves them."""
    def line(day, clock, text, tag="kernel"):
        return "Mar %2d %s node06 %s: %s\n" % (day, clock, tag, text)
    damaged = gzip.compress((line(1, "01:00:00", XFS) + "".join(
        line(1, "01:00:01", "session %d opened" % n, "CRON[1]") for n in range(5000))).encode())
    (directory / "messages.3.gz").write_bytes(damaged[:len(damaged) // 2])  # cut short, as after a full disk
    (directory / "messages.2.gz").write_bytes(gzip.compress(
        (line(2, "02:00:00", XFS) + line(2, "02:00:05", "INFO: task qemu-kvm:6902 blocked for more than 120 seconds.")).encode()))
    (directory / "messages.1").write_text(
        line(3, "03:00:00", "swapper: page allocation failure: order:1, mode:0x20")
        + line(3, "03:00:01", XFS, "root"))
    (directory / "messages").write_text(
        line(4, "04:00:00", XFS)
        + line(4, "04:00:01", "Invalid user " + XFS, "sshd[77]"))
    for index, name in enumerate(("messages.3.gz", "messages.2.gz", "messages.1", "messages")):
        os.utime(str(directory / name), (1700000000 + index * 86400, 1700000000 + index * 86400))


def test_rotated_and_compressed_files(run_playbook, tmp_path):
    logs = tmp_path / "log"
    logs.mkdir()
    _rotated_logs(logs)
    state = tmp_path / "scan-state.json"
    scan = """
    - name: %s
      memfrag.linux.kernel_log_scan:
        sources: [files]
        paths: ["%s/messages*"]
        kernel_release: 3.10.0-1160.el7.x86_64
        state_file: %s
      register: scan
"""
    run = run_playbook(_play(scan % ("dry run", logs, state)), check=True)
    assert run.rc == 0, run.stdout[-3000:]
    dry = run.task_result("dry run")
    assert dry["changed"] is True and not state.exists()

    run = run_playbook(_play(scan % ("first scan", logs, state)))
    assert run.rc == 0, run.stdout[-3000:]
    first = run.task_result("first scan")
    assert first["counts"] == {"xfs_alloc_deadlock": 3, "page_alloc_failure": 1, "page_alloc_stall": 0,
                               "hung_task": 1, "oom_kill": 0}
    assert first["ignored"]["not_kernel"] == 2
    assert [os.path.basename(f["path"]) for f in first["sources"]["files"]["files"]] == \
        ["messages.3.gz", "messages.2.gz", "messages.1", "messages"]
    assert [f["compression"] for f in first["sources"]["files"]["files"]] == ["gzip", "gzip", None, None]
    assert any("messages.3.gz" in w and "damaged" in w for w in first.get("warnings", [])), first.get("warnings")
    xfs = [e for e in first["events"] if e["kind"] == "xfs_alloc_deadlock"]
    assert [e["gfp_flags"] for e in xfs] == [["GFP_NOFS", "__GFP_NOWARN"]] * 3
    assert xfs[-1]["path"].endswith("/messages") and xfs[-1]["origin"] == "syslog"
    assert first["first_seen"]["xfs_alloc_deadlock"].endswith("+00:00")
    assert first["changed"] is True and state.exists()

    run = run_playbook(_play(scan % ("unchanged", logs, state)))
    again = run.task_result("unchanged")
    assert sum(again["counts"].values()) == 0 and again["changed"] is False
    assert {f["status"] for f in again["sources"]["files"]["files"]} <= {"resumed", "unchanged"}

    # logrotate: messages.1 is compressed to messages.2.gz and so on; messages becomes messages.1.
    for old, new in (("messages.2.gz", "messages.3.gz"),):
        os.replace(str(logs / old), str(logs / new))
    with open(str(logs / "messages.1"), "rb") as src:
        (logs / "messages.2.gz").write_bytes(gzip.compress(src.read()))
    os.unlink(str(logs / "messages.1"))
    with open(str(logs / "messages"), "a") as handle:
        handle.write("Mar  4 04:10:00 node06 kernel: %s\n" % XFS)
    os.replace(str(logs / "messages"), str(logs / "messages.1"))
    (logs / "messages").write_text("Mar  5 05:00:00 node06 kernel: Out of memory: Killed process 77 (java) "
                                   "total-vm:1kB, anon-rss:1kB, file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:4kB oom_score_adj:0\n")
    run = run_playbook(_play(scan % ("after rotation", logs, state)))
    rotated = run.task_result("after rotation")
    # Only what was written since the last scan: one XFS line appended before rotation, one OOM kill.
    assert rotated["counts"] == {"xfs_alloc_deadlock": 1, "page_alloc_failure": 0, "page_alloc_stall": 0,
                                 "hung_task": 0, "oom_kill": 1}
    statuses = dict((os.path.basename(f["path"]), f["status"]) for f in rotated["sources"]["files"]["files"])
    assert statuses["messages.1"] == "resumed" and statuses["messages.2.gz"] == "rotated"
    # The new file may get an inode number logrotate just freed; then it is "replaced" or "truncated"
    # (same inode, other content) rather than "new" - read from the start either way.
    assert statuses["messages"] in ("new", "replaced", "truncated")
    assert [f["start"] for f in rotated["sources"]["files"]["files"] if f["path"].endswith("/messages")] == [0]


def test_default_sources_on_this_host(run_playbook):
    run = run_playbook(_play("""
    - name: everything that exists
      memfrag.linux.kernel_log_scan:
        since: 24h
      register: scan
    - name: the result is usable as the diagnose role uses it
      ansible.builtin.assert:
        that:
          - scan.counts.xfs_alloc_deadlock is number
          - scan.first_seen.oom_kill is none or scan.first_seen.oom_kill is string
          - scan.events is sequence
"""))
    assert run.rc == 0, run.stdout[-3000:]
    result = run.task_result("everything that exists")
    assert result["sources"]["kmsg"]["status"] == "scanned"
    for name in result["skipped_sources"]:
        assert result["sources"][name]["reason"]
    assert set(result["counts"]) == {"xfs_alloc_deadlock", "page_alloc_failure", "page_alloc_stall", "hung_task", "oom_kill"}


def test_bad_options_fail_clearly(run_playbook):
    run = run_playbook(_play("""
    - name: bad since
      memfrag.linux.kernel_log_scan:
        since: yesterday-ish
      ignore_errors: true
    - name: bad release
      memfrag.linux.kernel_log_scan:
        kernel_release: linux
      ignore_errors: true
"""))
    assert "24h" in run.task_result("bad since")["msg"]
    assert "not a kernel release" in run.task_result("bad release")["msg"]


def test_gfp_flags_filter_in_a_play(run_playbook):
    run = run_playbook(_play("""
    - name: decode
      ansible.builtin.debug:
        msg: "{{ '0x250' | memfrag.linux.gfp_flags('3.10.0-1160.el7.x86_64') }} {{ 3264 | memfrag.linux.gfp_flags('6.1.0') }}"
"""))
    assert run.rc == 0, run.stdout[-3000:]
    assert run.task_result("decode")["msg"] == "['GFP_NOFS', '__GFP_NOWARN'] ['GFP_KERNEL']"


def test_hostile_paths_state_and_text_never_hang_or_abort(run_playbook, tmp_path):
    # A FIFO as state_file fails the task before anything is read; FIFOs and /proc/*/fd/* links among the paths
    # are skipped unopened; a user-space line with a 5,000-digit number and a "kernel[4242]:" line are not the
    # kernel and cost nothing; the release the log names decodes the mode; non-breaking spaces are read.
    logs = tmp_path / "log"
    logs.mkdir()
    os.mkfifo(str(logs / "messages.fifo"))
    os.mkfifo(str(tmp_path / "state.fifo"))
    (logs / "messages").write_text(
        "Mar  5 22:40:00 node06 kernel: Linux version 3.10.0-1160.el7.x86_64 (mockbuild@x) #1 SMP\n"
        "Mar  5 22:42:57 node06 kernel: %s\n"
        "Mar  5 22:42:58 node06 mallory[7]: INFO: task x:%s blocked for more than 1 seconds\n"
        "Mar  5 22:42:59 node06 kernel[4242]: %s\n"
        "Mar  5 22:43:00 node06 kernel: %s\n" % (XFS, "9" * 5000, XFS, XFS.replace(" ", "\xa0")), encoding="utf-8")
    run = run_playbook(_play("""
    - name: fifo state file
      memfrag.linux.kernel_log_scan:
        sources: [files]
        paths: ["%(logs)s/*"]
        state_file: %(fifo)s
      ignore_errors: true
    - name: hostile files
      memfrag.linux.kernel_log_scan:
        sources: [files]
        paths: ["%(logs)s/*", "/proc/*/fd/*"]
        state_file: %(state)s
      register: scan
""" % {"logs": logs, "fifo": tmp_path / "state.fifo", "state": tmp_path / "state.json"}), timeout=300)
    fifo = run.task_result("fifo state file")
    assert fifo["failed"] and "not a regular file" in fifo["msg"], fifo
    assert run.rc == 0, run.stdout[-3000:]
    result = run.task_result("hostile files")
    assert result["counts"]["xfs_alloc_deadlock"] == 2 and result["counts"]["hung_task"] == 0
    assert result["ignored"]["not_kernel"] == 2
    notes = " ".join(result["sources"]["files"]["notes"])
    assert "messages.fifo: not a regular file" in notes
    plain, pasted = [e for e in result["events"] if e.get("path", "").endswith("/messages")]
    assert plain["gfp_flags"] == ["GFP_NOFS", "__GFP_NOWARN"] and plain["gfp_release"] == "3.10.0-1160.el7.x86_64"
    assert plain["gfp_release_source"].startswith("Linux version line") and plain["byte_exact"] is True
    assert pasted["byte_exact"] is False and pasted["mode"] == 0x250
    assert json.loads((tmp_path / "state.json").read_text())["files"]


def test_a_log_scan_of_the_wrong_shape_fails_memory_facts_cleanly(run_playbook):
    run = run_playbook(_play("""
    - name: counts as a list
      memfrag.linux.memory_facts:
        judge: true
        log_scan:
          counts: [1, 2]
      ignore_errors: true
"""))
    result = run.task_result("counts as a list")
    assert result["failed"] and "log_scan.counts must be a dict" in result["msg"], result
    assert "Traceback" not in run.stdout
