# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading log files: chunk boundaries, rotation and truncation with a state file, damaged input,
/dev/kmsg records and facility, de-duplication across sources, ``since`` and ``max_events``."""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import os
import shutil
import time

import pytest

from ansible_collections.memfrag.linux.plugins.module_utils._kernel_log import scan as _kernel_log_scan

from ansible_collections.memfrag.linux.plugins.module_utils._kernel_log import sources
from ansible_collections.memfrag.linux.plugins.module_utils._kernel_log.patterns import confirm_line
from ansible_collections.memfrag.linux.plugins.module_utils._kernel_log.scan import scan
from ansible_collections.memfrag.linux.plugins.module_utils._kernel_log.state import empty_state, load_state, save_state

XFS = "XFS: possible memory allocation deadlock in kmem_alloc (mode:0x250)"
NOISE = "Mar  5 22:40:01 node06 CRON[3110]: (root) CMD (/usr/lib64/sa/sa1 1 1)\n"


def xfs_line(n):
    return "Mar  5 22:%02d:%02d node06 kernel: %s\n" % (n // 60 % 60, n % 60, XFS)


def log_text(events, noise_per_event=3, first=0):
    return "".join(NOISE * noise_per_event + xfs_line(i) for i in range(first, first + events))


class Run(object):
    """scan() over files with a state kept between runs, as the module does with state_file."""

    def __init__(self, paths, **kwargs):
        self.paths = paths
        self.state = empty_state()
        self.kwargs = kwargs

    def __call__(self):
        self.warnings = []
        result, self.state = scan(["files"], self.paths, None, self.state, "3.10.0", 1000, False,
                                  self.warnings.append, **self.kwargs)
        self.files = dict((f["path"], f) for f in result["sources"]["files"]["files"])
        return result


def xfs_count(result):
    return result["counts"]["xfs_alloc_deadlock"]


# ---- chunking ---------------------------------------------------------------------------------

@pytest.mark.parametrize("chunk", [7, 64, 1000, 8 * 1024 * 1024])
def test_hits_do_not_depend_on_chunk_boundaries(monkeypatch, chunk, fixtures_dir):
    with open(os.path.join(fixtures_dir, "logs", "rhel7-messages-with-spoofs.log"), "rb") as handle:
        data = handle.read()
    monkeypatch.setattr(sources, "CHUNK", chunk)
    items = list(sources.scan_stream(io.BytesIO(data), "x", 0, [].append))
    assert items[-1] == len(data)
    hits = [(h.offset, h.line) for h in items[:-1]]
    expected = []
    offset = 0
    for line in data.split(b"\n"):
        if confirm_line(line):
            expected.append((offset, line))
        offset += len(line) + 1
    assert hits == expected


def test_fixture_with_spoofs(fixtures_dir):
    result = Run([os.path.join(fixtures_dir, "logs", "rhel7-messages-with-spoofs.log")])()
    assert result["counts"] == {"xfs_alloc_deadlock": 2, "page_alloc_failure": 1, "page_alloc_stall": 0,
                                "hung_task": 1, "oom_kill": 1}
    # root/logger/sshd lines carry the same text but were not written by the kernel.
    assert result["ignored"]["not_kernel"] == 3
    kill = [e for e in result["events"] if e["kind"] == "oom_kill"][0]
    assert (kill["killed_pid"], kill["comm"], kill["invoked_by"], kill["order"]) == (4242, "java", "java", 0)
    assert kill["gfp_flags"] == ["GFP_HIGHUSER_MOVABLE", "__GFP_COLD"]
    assert result["forms"]["oom_invoked"] == 1 and result["forms"]["oom_kill_candidate"] == 1
    assert all(e["origin"] == "syslog" for e in result["events"])


# ---- incremental scans ------------------------------------------------------------------------

def test_second_run_reads_only_new_bytes(tmp_path):
    log = tmp_path / "messages"
    log.write_text(log_text(2))
    run = Run([str(log)])
    assert xfs_count(run()) == 2
    size = log.stat().st_size
    again = run()
    assert xfs_count(again) == 0
    assert run.files[str(log)]["status"] == "resumed" and run.files[str(log)]["bytes_read"] == 0
    with open(str(log), "a") as handle:
        handle.write(log_text(3))
    third = run()
    assert xfs_count(third) == 3
    assert run.files[str(log)]["start"] == size


def test_partial_last_line_is_read_and_not_repeated(tmp_path):
    log = tmp_path / "messages"
    log.write_text(NOISE + xfs_line(1).rstrip("\n"))  # the writer has not finished the line yet
    run = Run([str(log)])
    assert xfs_count(run()) == 1
    with open(str(log), "a") as handle:
        handle.write("\n" + NOISE)
    assert xfs_count(run()) == 0


def test_truncated_file_is_read_from_the_start(tmp_path):
    log = tmp_path / "messages"
    log.write_text(log_text(5))
    run = Run([str(log)])
    assert xfs_count(run()) == 5
    with open(str(log), "w") as handle:  # truncate in place, same inode
        handle.write(log_text(1, noise_per_event=1))
    result = run()
    assert xfs_count(result) == 1
    assert run.files[str(log)]["status"] == "truncated" and run.files[str(log)]["start"] == 0


def test_truncated_then_grown_past_the_old_offset_is_detected_by_its_head(tmp_path):
    log = tmp_path / "messages"
    log.write_text(log_text(2))
    run = Run([str(log)])
    run()
    with open(str(log), "w") as handle:  # copytruncate, then more was written than before
        handle.write("Mar  6 00:00:00 node06 CRON[1]: new file\n" + log_text(4))
    assert xfs_count(run()) == 4
    assert run.files[str(log)]["status"] == "replaced"


def test_rotation_by_rename_loses_nothing(tmp_path):
    log = tmp_path / "messages"
    log.write_text(log_text(2))
    run = Run([str(tmp_path / "messages*")])
    assert xfs_count(run()) == 2
    with open(str(log), "a") as handle:  # written after our scan, before rotation
        handle.write(log_text(1, first=2))
    os.rename(str(log), str(tmp_path / "messages.1"))
    log.write_text(log_text(2, first=3))
    result = run()
    assert xfs_count(result) == 3
    assert run.files[str(tmp_path / "messages.1")]["status"] == "resumed"
    assert run.files[str(log)]["status"] == "new"


def test_rotated_file_compressed_later_is_not_read_again(tmp_path):
    log = tmp_path / "messages"
    log.write_text(log_text(3))
    run = Run([str(tmp_path / "messages*")])
    assert xfs_count(run()) == 3
    rotated = tmp_path / "messages.1.gz"
    with open(str(log), "rb") as src, gzip.open(str(rotated), "wb") as dst:
        shutil.copyfileobj(src, dst)
    os.unlink(str(log))
    log.write_text(log_text(1))
    result = run()
    assert xfs_count(result) == 1
    assert run.files[str(rotated)]["status"] == "rotated"
    assert run.files[str(rotated)]["bytes_read"] == 0
    # An unchanged compressed file is not even decompressed on the next run.
    run()
    assert run.files[str(rotated)]["status"] == "unchanged"


def test_copytruncate_rotation(tmp_path):
    log = tmp_path / "messages"
    log.write_text(log_text(2))
    run = Run([str(tmp_path / "messages*")])
    run()
    with open(str(log), "a") as handle:
        handle.write(log_text(1))
    shutil.copyfile(str(log), str(tmp_path / "messages.1"))  # new inode, same content
    with open(str(log), "w"):
        pass
    assert xfs_count(run()) == 1
    assert run.files[str(tmp_path / "messages.1")]["status"] == "rotated"


@pytest.mark.parametrize("opener,suffix", [(gzip.open, ".gz"), (lzma.open, ".xz"), (bz2.open, ".bz2")])
def test_compressed_files(tmp_path, opener, suffix):
    path = tmp_path / ("kern.log.2" + suffix)
    with opener(str(path), "wb") as handle:
        handle.write(log_text(4).encode())
    result = Run([str(path)])()
    assert xfs_count(result) == 4
    assert result["sources"]["files"]["files"][0]["compression"] in ("gzip", "xz", "bz2")


# ---- damaged input ----------------------------------------------------------------------------

def test_truncated_gzip_warns_and_keeps_what_was_readable(tmp_path):
    data = gzip.compress((log_text(50) + NOISE * 5000).encode())
    path = tmp_path / "syslog.3.gz"
    path.write_bytes(data[:len(data) // 2])
    run = Run([str(path)])
    result = run()
    assert 0 < xfs_count(result) <= 50
    assert len([w for w in run.warnings if "damaged" in w and "syslog.3.gz" in w]) == 1, run.warnings


def test_not_gzip_at_all_behind_a_gz_name_is_read_as_text(tmp_path):
    path = tmp_path / "messages.1.gz"
    path.write_text(log_text(1))
    assert xfs_count(Run([str(path)])()) == 1


def test_invalid_utf8_and_binary_junk(tmp_path):
    path = tmp_path / "messages"
    path.write_bytes(b"\x00" * 4096 + b"\xff\xfe garbage \x80\n"
                     + ("Mar  5 22:42:57 node06 kernel: XFS: caf\xe9(12) possible memory allocation deadlock "
                        "size 4 in kmem_alloc (mode:0x250)\n").encode("latin-1")
                     + xfs_line(3).encode())
    run = Run([str(path)])
    result = run()
    assert xfs_count(result) == 2
    assert result["events"][0]["comm"] == "caf\ufffd"
    assert any("NUL" in w for w in run.warnings) and any("not UTF-8" in w for w in run.warnings), run.warnings


def test_ten_megabyte_line_is_skipped_and_the_rest_read(tmp_path):
    path = tmp_path / "messages"
    with open(str(path), "wb") as handle:
        handle.write(xfs_line(1).encode())
        handle.write(b"A" * (10 * 1024 * 1024) + b" possible memory allocation deadlock " + b"B" * 1000 + b"\n")
        handle.write(xfs_line(2).encode())
    run = Run([str(path)])
    result = run()
    assert xfs_count(result) == 2
    assert any("not kernel output" in w for w in run.warnings), run.warnings


def test_long_line_with_a_needle_under_the_buffer_limit_is_skipped(tmp_path):
    path = tmp_path / "messages"
    path.write_text(("x" * 100000) + " " + XFS + "\n" + xfs_line(1))
    run = Run([str(path)])
    assert xfs_count(run()) == 1
    assert any("not kernel output" in w for w in run.warnings)


def test_unreadable_and_special_paths(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text(log_text(1))
    logs = tmp_path / "logs"
    logs.mkdir()
    os.symlink(str(outside / "secret"), str(logs / "messages"))
    (logs / "syslog.d").mkdir()
    run = Run([str(logs / "*"), str(tmp_path / "nothing*")])
    result = run()
    assert xfs_count(result) == 0
    notes = " ".join(result["sources"]["files"]["notes"])
    assert "not followed" in notes and "not a regular file" in notes and "no such file" in notes


# ---- state file ---------------------------------------------------------------------------------

def test_state_file_round_trip_and_damage(tmp_path):
    path = str(tmp_path / "state.json")
    state, problem = load_state(path)
    assert problem is None and state == empty_state()
    state["kmsg"] = {"boot_id": "b", "seq": 7}
    assert save_state(path, state) is True
    assert save_state(path, state) is False  # unchanged content is not rewritten
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    assert load_state(path)[0]["kmsg"] == {"boot_id": "b", "seq": 7}
    for junk in ("{not json", json.dumps({"version": 99}), json.dumps([1, 2])):
        with open(path, "w") as handle:
            handle.write(junk)
        state, problem = load_state(path)
        assert state == empty_state() and "scanning everything" in problem
    assert [p for p in os.listdir(str(tmp_path)) if p.startswith(".kernel_log_scan")] == []


# ---- /dev/kmsg records --------------------------------------------------------------------------

def test_kmsg_records_and_userspace_facility(fixtures_dir):
    path = os.path.join(fixtures_dir, "logs", "kmsg-records.txt")
    records, problem = sources.read_kmsg(path, [].append)
    assert problem is None
    assert [(r.facility, r.seq) for r in records] == [(0, 100), (0, 101), (0, 102), (1, 103), (1, 104), (0, 105), (0, 106)]
    result, state = scan(["kmsg"], None, None, empty_state(), "6.1.0", 100, False, [].append, kmsg_path=path)
    assert result["counts"] == {"xfs_alloc_deadlock": 1, "page_alloc_failure": 1, "page_alloc_stall": 0,
                                "hung_task": 1, "oom_kill": 1}
    assert result["ignored"]["userspace_kmsg"] == 2
    assert {e["origin"] for e in result["events"]} == {"kmsg"}
    assert state["kmsg"]["seq"] == 106
    # Written by a process: counted only on request, and marked as such.
    result, _state = scan(["kmsg"], None, None, empty_state(), "6.1.0", 100, True, [].append, kmsg_path=path)
    assert result["counts"]["xfs_alloc_deadlock"] == 2 and result["counts"]["hung_task"] == 2
    assert sorted(e["origin"] for e in result["events"] if e["kind"] == "xfs_alloc_deadlock") == ["kmsg", "kmsg_userspace"]
    # Incremental: nothing new after seq 106 in the same boot.
    again, _state = scan(["kmsg"], None, None, state, "6.1.0", 100, False, [].append, kmsg_path=path)
    assert sum(again["counts"].values()) == 0 and again["sources"]["kmsg"]["new_records"] == 0


def test_missing_sources_are_reported_not_fatal(tmp_path):
    warnings = []
    result, _state = scan(None, [str(tmp_path / "none*")], None, empty_state(), "6.1.0", 10, False, warnings.append,
                          kmsg_path=str(tmp_path / "kmsg"), journalctl=None)
    assert result["skipped_sources"] == ["files", "journal", "kmsg"]
    assert warnings == []  # defaults: silently skip what the host does not have
    warnings = []
    result, _state = scan(["kmsg", "journal", "files"], [str(tmp_path / "none*")], None, empty_state(), "6.1.0", 10,
                          False, warnings.append, kmsg_path=str(tmp_path / "kmsg"), journalctl=None)
    assert len(warnings) == 3 and result["sources"]["journal"]["reason"] == "journalctl not found"
    assert "does not exist" in result["sources"]["kmsg"]["reason"]


# ---- one event, several sources -----------------------------------------------------------------

def test_event_in_ring_buffer_and_syslog_is_counted_once(tmp_path, fixtures_dir):
    now = time.time()
    stamp = time.strftime("%b %d %H:%M:%S", time.localtime(now - 1))
    old = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(now - 400 * 86400))
    log = tmp_path / "messages"
    log.write_text("%s host kernel: %s\n%s host kernel: INFO: task md0_raid1:212 blocked for more than 122 seconds.\n"
                   "%s host kernel: %s\n" % (stamp, XFS, stamp, old, XFS))
    result, _state = scan(["kmsg", "files"], [str(log)], None, empty_state(), "6.1.0", 100, False, [].append,
                          kmsg_path=os.path.join(fixtures_dir, "logs", "kmsg-records.txt"))
    # The two recent syslog lines fall in the ring buffer's window (already counted from kmsg); the
    # line from 400 days ago predates it and counts.
    assert result["ignored"]["duplicates"] == 2
    assert result["counts"]["xfs_alloc_deadlock"] == 2 and result["counts"]["hung_task"] == 1


def test_since_and_max_events(tmp_path):
    now = time.time()
    lines = ["  " + XFS + "\n"]  # no time at all: always counted
    for days in (10, 3, 0.01):
        lines.append("%s host kernel: %s\n" % (time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(now - days * 86400)), XFS))
    log = tmp_path / "messages"
    log.write_text("".join(lines))
    result, _state = scan(["files"], [str(log)], now - 5 * 86400, empty_state(), "6.1.0", 1, False, [].append)
    assert xfs_count(result) == 3 and result["ignored"]["before_since"] == 1
    assert len(result["events"]) == 1 and result["events_dropped"] == 2
    assert result["events"][0]["origin"] == "syslog"  # the newest (last) one is kept
    assert result["first_seen"]["xfs_alloc_deadlock"] < result["last_seen"]["xfs_alloc_deadlock"]


def test_reused_inode_is_recognised_by_content():
    from ansible_collections.memfrag.linux.plugins.module_utils._kernel_log.state import file_record, resume_offset
    old_damaged = file_record("/l/messages.3.gz", 1, 5, 900, b"old damaged head", True)
    old_plain = file_record("/l/messages.1", 1, 6, 181, b"rotated content head", False)
    head = b"rotated content head and the rest"
    # messages.2.gz now has inode 5 (freed by logrotate) and carries messages.1's content.
    assert resume_offset([old_damaged, old_plain], 1, 5, None, lambda n: head[:n], True) == (181, "rotated")
    # Same inode, other content, nothing known: read from the start.
    assert resume_offset([old_damaged], 1, 5, 4000, lambda n: b"x" * n, False) == (0, "replaced")
    assert resume_offset([old_damaged], 1, 5, 10, lambda n: b"old damaged head"[:n], False) == (0, "truncated")
    # The original still holds that content under its own inode: a look-alike is a new file.
    assert resume_offset([old_plain], 1, 9, 4000, lambda n: head[:n], False,
                         present={(1, 6): b"rotated content head"}) == (0, "new")


# ---- big files: the second half is scanned by a child process --------------------------------------

def _hits(items, data):
    hits = [h for h in items if not isinstance(h, int)]
    for hit in hits:
        # The line after a hit is known unless it sits across a chunk boundary.
        line_end = hit.offset + len(hit.line)
        true_next = data[line_end + 1:data.find(b"\n", line_end + 1)] if line_end + 1 < len(data) else None
        assert hit.following is None or hit.following == true_next
    return [(h.offset, h.line, h.previous) for h in hits], items[-1]


@pytest.mark.parametrize("chunk", [50, 4096, 8 * 1024 * 1024])
def test_two_process_scan_equals_one_process_scan(monkeypatch, tmp_path, chunk):
    text = "".join((NOISE * (i % 7)) + xfs_line(i) + ("x" * (i * 37 % 500)) + "\n" for i in range(300))
    path = tmp_path / "messages"
    path.write_text(text)
    data = path.read_bytes()
    monkeypatch.setattr(sources, "CHUNK", chunk)
    with open(str(path), "rb") as raw:
        single, single_end = _hits(list(sources.scan_stream(raw, str(path), 0, [].append)), data)
    assert len(single) == 300 and single_end == len(data)
    monkeypatch.setattr(sources, "PARALLEL_MIN", 1)
    for start in (0, single[10][0], single[150][0]):
        warnings = []
        with open(str(path), "rb") as raw:
            double, end = _hits(list(sources.scan_plain_file(raw, str(path), start, len(data), warnings.append)), data)
        assert end == len(data) and warnings == []
        assert double == [h for h in single if h[0] >= start]


def test_two_process_scan_of_damaged_file_reports_child_warnings(monkeypatch, tmp_path):
    monkeypatch.setattr(sources, "PARALLEL_MIN", 1)
    path = tmp_path / "messages"
    with open(str(path), "wb") as handle:
        handle.write((NOISE * 2000 + xfs_line(1)).encode())
        handle.write(b"\x00" * 100 + b"\n" + b"A" * (3 * 1024 * 1024) + b" allocation \n" + xfs_line(2).encode())
    run = Run([str(path)])
    result = run()
    assert xfs_count(result) == 2
    assert any("NUL" in w for w in run.warnings) and any("not kernel output" in w for w in run.warnings)
    assert run.files[str(path)]["end"] == path.stat().st_size


def test_syslog_copy_stamped_just_before_the_ring_buffer_start_counts_once(tmp_path, monkeypatch):
    # The ring buffer starts with an XFS message at wall time S = whole second W + 0.7; syslog stamps its copy
    # W (whole seconds), 0.7 s before S. Same message at the edge: a duplicate. A different XFS message there,
    # and the same message 3.7 s before S (outside the 2 s margin), are events of their own.
    whole = int(time.time()) - 3600
    monkeypatch.setattr(_kernel_log_scan, "_boot_epoch", lambda: whole - 5 + 0.7)
    kmsg = tmp_path / "kmsg"
    kmsg.write_text("3,200,5000000,-;%s\n3,201,6000000,-;INFO: task md0_raid1:212 blocked for more than 122 seconds.\n"
                    % XFS)
    other = XFS.replace("0x250", "0x8250")

    def stamp(offset):
        return time.strftime("%b %d %H:%M:%S", time.localtime(whole + offset))

    log = tmp_path / "messages"
    log.write_text("".join("%s host kernel: %s\n" % (stamp(offset), text)
                           for offset, text in ((-3, XFS), (0, other), (0, XFS), (1, XFS))))
    result, _state = scan(["kmsg", "files"], [str(log)], None, empty_state(), "6.1.0", 100, False, [].append,
                          kmsg_path=str(kmsg))
    # kmsg: 1 XFS; file: W-3 counts (outside the margin), W other message counts, W same message is the edge
    # copy, W+1 is inside the coverage (a duplicate as before).
    assert result["counts"]["xfs_alloc_deadlock"] == 3
    assert result["ignored"]["duplicates"] == 2
    modes = sorted(e["mode"] for e in result["events"] if e["kind"] == "xfs_alloc_deadlock")
    assert modes == [0x250, 0x250, 0x8250]
    # A second file with the same lines (rsyslog writes kern.log and syslog): still counted once each.
    (tmp_path / "kern.log").write_text(log.read_text())
    both, _state = scan(["kmsg", "files"], [str(log), str(tmp_path / "kern.log")], None, empty_state(), "6.1.0", 100,
                        False, [].append, kmsg_path=str(kmsg))
    assert both["counts"] == result["counts"]


# ---- journal (through a stand-in journalctl: this host has no journal) ----------------------------

def _fake_journalctl(tmp_path, entries):
    data = tmp_path / "entries.json"
    data.write_text("".join(json.dumps(e) + "\n" for e in entries))
    script = tmp_path / "journalctl"
    script.write_text("#!/bin/sh\necho \"$@\" >> %s\ncat %s\n" % (tmp_path / "argv.log", data))
    script.chmod(0o755)
    journal_dir = tmp_path / "journal" / "machine-id"
    journal_dir.mkdir(parents=True)
    (journal_dir / "system.journal").write_bytes(b"")
    return str(script), (str(tmp_path / "journal"),)


def test_journal_kernel_transport(tmp_path):
    now = time.time()
    entries = [
        {"__CURSOR": "c1", "__REALTIME_TIMESTAMP": str(int((now - 3600) * 1e6)), "SYSLOG_FACILITY": "0",
         "MESSAGE": "Linux version 6.1.0"},
        {"__CURSOR": "c2", "__REALTIME_TIMESTAMP": str(int((now - 60) * 1e6)), "SYSLOG_FACILITY": "0",
         "MESSAGE": XFS},
        {"__CURSOR": "c3", "__REALTIME_TIMESTAMP": str(int((now - 50) * 1e6)), "SYSLOG_FACILITY": "1",
         "MESSAGE": XFS},  # written into /dev/kmsg by a process
        {"__CURSOR": "c4", "__REALTIME_TIMESTAMP": str(int((now - 40) * 1e6)),
         "MESSAGE": list(b"INFO: task \xff\xfebad:12 blocked for more than 120 seconds.")},
        {"__CURSOR": "c5", "__REALTIME_TIMESTAMP": str(int((now - 30) * 1e6)), "MESSAGE": "e1000e: link up"},
    ]
    journalctl, dirs = _fake_journalctl(tmp_path, entries)
    result, state = scan(["journal"], None, None, empty_state(), "6.1.0", 10, False, [].append,
                         journalctl=journalctl, journal_dirs=dirs)
    assert result["counts"]["xfs_alloc_deadlock"] == 1 and result["counts"]["hung_task"] == 1
    assert result["ignored"]["userspace_kmsg"] == 1
    hung = [e for e in result["events"] if e["kind"] == "hung_task"][0]
    assert hung["comm"] == "\ufffd\ufffdbad" and hung["origin"] == "journal" and hung["source"] == "journal"
    assert state["journal"]["cursor"] == "c5"
    assert result["sources"]["journal"]["entries"] == 5
    # The next run starts after the cursor (journalctl does the skipping) and keeps the coverage start.
    scan(["journal"], None, None, state, "6.1.0", 10, False, [].append, journalctl=journalctl, journal_dirs=dirs)
    argv = (tmp_path / "argv.log").read_text().splitlines()
    assert "_TRANSPORT=kernel" in argv[0] and "--output=json" in argv[0] and "--after-cursor=c5" in argv[1]


def test_journal_and_files_count_an_event_once(tmp_path):
    now = time.time()
    journalctl, dirs = _fake_journalctl(tmp_path, [
        {"__CURSOR": "c1", "__REALTIME_TIMESTAMP": str(int((now - 7200) * 1e6)), "SYSLOG_FACILITY": "0", "MESSAGE": "boot"},
        {"__CURSOR": "c2", "__REALTIME_TIMESTAMP": str(int((now - 60) * 1e6)), "SYSLOG_FACILITY": "0", "MESSAGE": XFS}])
    log = tmp_path / "messages"
    log.write_text("%s host kernel: %s\n" % (time.strftime("%b %d %H:%M:%S", time.localtime(now - 60)), XFS))
    result, _state = scan(["journal", "files"], [str(log)], None, empty_state(), "6.1.0", 10, False, [].append,
                          journalctl=journalctl, journal_dirs=dirs)
    assert result["counts"]["xfs_alloc_deadlock"] == 1 and result["ignored"]["duplicates"] == 1


def test_syslog_copy_stamped_just_before_the_journal_start_counts_once(tmp_path):
    whole = int(time.time()) - 600
    journalctl, dirs = _fake_journalctl(tmp_path, [
        {"__CURSOR": "c1", "__REALTIME_TIMESTAMP": str(int((whole + 0.7) * 1e6)), "SYSLOG_FACILITY": "0", "MESSAGE": XFS}])
    log = tmp_path / "messages"
    log.write_text("%s host kernel: %s\n" % (time.strftime("%b %d %H:%M:%S", time.localtime(whole)), XFS))
    result, _state = scan(["journal", "files"], [str(log)], None, empty_state(), "6.1.0", 10, False, [].append,
                          journalctl=journalctl, journal_dirs=dirs)
    assert result["counts"]["xfs_alloc_deadlock"] == 1 and result["ignored"]["duplicates"] == 1


def test_child_spool_limit_hands_the_rest_back(monkeypatch, tmp_path):
    # A host spamming event lines: the child stops spooling at the limit and the parent finishes.
    monkeypatch.setattr(sources, "PARALLEL_MIN", 1)
    monkeypatch.setattr(sources, "SPOOL_LIMIT", 2000)
    path = tmp_path / "messages"
    path.write_text(log_text(400, noise_per_event=1))
    run = Run([str(path)])
    result = run()
    assert xfs_count(result) == 400
    stamps = [e["timestamp"] for e in result["events"]]
    assert len(stamps) == 400 and stamps == sorted(stamps)  # file order kept across the hand-over
    assert run.files[str(path)]["end"] == path.stat().st_size


def test_kernel_lines_written_to_two_files_count_once(tmp_path):
    # Debian's rsyslog writes kernel messages to kern.log and syslog; XFS repeats within a second.
    kern = tmp_path / "kern.log"
    syslog = tmp_path / "syslog"
    same_second = "Mar  5 22:42:57 node06 kernel: %s\n" % XFS
    kern.write_text(same_second * 3)
    syslog.write_text(NOISE + same_second * 2 + NOISE + same_second + "Mar  5 22:42:57 node07 kernel: %s\n" % XFS)
    result = Run([str(kern), str(syslog)])()
    # Three copies in each file are the same three messages; node07's line is another host's.
    assert xfs_count(result) == 4 and result["ignored"]["duplicates"] == 3


def test_a_damaged_tiny_gzip_never_matches_other_files(tmp_path):
    # Its readable head is empty: an empty head must not "match" every later file.
    broken = tmp_path / "messages.2.gz"
    broken.write_bytes(gzip.compress(b"")[:12])
    run = Run([str(tmp_path / "messages*")])
    run()
    log = tmp_path / "messages"
    log.write_text(log_text(2))
    assert xfs_count(run()) == 2 and run.files[str(log)]["status"] == "new"
    from ansible_collections.memfrag.linux.plugins.module_utils._kernel_log.state import file_record, resume_offset
    empty_head = file_record("/l/x.gz", 1, 5, 900, b"", True)
    assert resume_offset([empty_head], 1, 6, 4000, lambda n: b"anything"[:n], False) == (0, "new")


@pytest.mark.parametrize("chunk", [4096, 9000, 65536])
def test_lines_longer_than_the_line_limit_at_chunk_ends(monkeypatch, tmp_path, chunk):
    # 10 KiB and 20 KiB lines (past MAX_LINE) land across chunk boundaries in every position: they are skipped
    # with one warning, the buffer never overflows, and every kernel line around them is found.
    monkeypatch.setattr(sources, "CHUNK", chunk)
    parts = []
    for index in range(40):
        parts.append(xfs_line(index))
        parts.append("Mar  5 22:40:01 node06 app[1]: " + "y" * (10240 + 997 * index % 10240) + "\n")
    path = tmp_path / "messages"
    path.write_text("".join(parts))
    run = Run([str(path)])
    result = run()
    assert xfs_count(result) == 40
    assert run.files[str(path)]["end"] == path.stat().st_size
    assert any("not kernel output" in w for w in run.warnings)


def test_one_scan_state_type():
    from ansible_collections.memfrag.linux.plugins.module_utils._kernel_log.state import VERSION, empty_state, next_state
    old = {"version": VERSION, "files": [{"path": "/var/log/messages"}], "journal": {"cursor": "c"}, "kmsg": {"seq": 7}}
    new = next_state(old)
    assert new == {"version": VERSION, "files": [], "journal": {"cursor": "c"}, "kmsg": {"seq": 7}}
    new["journal"]["cursor"] = "d"
    assert old["journal"]["cursor"] == "c"  # the old state is not changed by the scan writing the new one
    assert next_state(empty_state()) == empty_state()
