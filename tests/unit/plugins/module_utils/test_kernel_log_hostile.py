# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Hostile input to the kernel log scan (issue 10) and the kernel a log came from (issue 11).

Who wrote a line is settled before its message is parsed; numbers are bounded before conversion; the state
file, the paths and a consumer's ``log_scan`` are checked for their kind and shape; FIFOs never block; text
with non-breaking spaces is read and marked; GFP modes are decoded with the release the log names.
"""

from __future__ import annotations

import json
import os
import signal

import pytest

from ansible_collections.memfrag.linux.plugins.module_utils._findings.judge import log_findings
from ansible_collections.memfrag.linux.plugins.module_utils._kernel_log import sources
from ansible_collections.memfrag.linux.plugins.module_utils._kernel_log.patterns import (
    classify_message, confirm_line, parse_prefix, release_of)
from ansible_collections.memfrag.linux.plugins.module_utils._kernel_log.result import check_log_scan, log_scan_problem
from ansible_collections.memfrag.linux.plugins.module_utils._kernel_log.scan import scan
from ansible_collections.memfrag.linux.plugins.module_utils._kernel_log.state import (
    empty_state, load_state, save_state, state_path_problem)
from ansible_collections.memfrag.linux.plugins.module_utils._reclaim.policy import allocation_events

XFS = "XFS: possible memory allocation deadlock in kmem_alloc (mode:0x250)"
KERNEL = "Mar  5 22:42:57 node06 kernel: "


@pytest.fixture
def alarm():
    """Fail instead of hanging: a blocking open of a FIFO would wait forever."""
    def fail(_signum, _frame):
        raise AssertionError("blocked for 10 s (a FIFO opened for reading waits for a writer)")
    previous = signal.signal(signal.SIGALRM, fail)
    signal.alarm(10)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def _scan_files(paths, release=None, **kwargs):
    warnings = []
    result, state = scan(["files"], paths, None, empty_state(), release, 100, False, warnings.append, **kwargs)
    return result, state, warnings


# ---- who speaks ----------------------------------------------------------------------------------

@pytest.mark.parametrize("line,kernel", [
    ("Mar  5 22:42:57 node06 kernel: " + XFS, True),
    ("Mar  5 22:42:57 kernel: " + XFS, True),
    ("2024-03-05T22:42:57.123456+01:00 node06 kernel: " + XFS, True),
    ("Mar  5 22:42:57 node06 kernel[4242]: " + XFS, False),   # the kernel never logs a pid
    ("Mar  5 22:42:57 kernel[4242]: " + XFS, False),
    ("Mar  5 22:42:57 node06 kernel : " + XFS, False),
    ("Mar  5 22:42:57 node06 mallory: " + XFS, False),
    ("Mar  5 22:42:57 node06 two words: " + XFS, False),      # a time, then no kernel tag: a program
    ("Mar  5 22:42:57 node06 " + "t" * 300 + ": " + XFS, False),
])
def test_only_the_bare_kernel_tag_is_the_kernel(line, kernel):
    assert parse_prefix(line, 1.7e9).kernel is kernel


def test_a_user_line_with_a_huge_number_does_not_cost_the_event_before_it(tmp_path):
    log = tmp_path / "messages"
    log.write_text(KERNEL + XFS + "\n"
                   + "Mar  5 22:42:58 node06 mallory[7]: INFO: task x:" + "9" * 5000 + " blocked for more than 1 seconds\n"
                   + "Mar  5 22:42:59 node06 kernel[4242]: " + XFS + "\n")
    result, _state, _warnings = _scan_files([str(log)], "3.10.0")
    assert result["counts"]["xfs_alloc_deadlock"] == 1 and result["counts"]["hung_task"] == 0
    assert result["ignored"]["not_kernel"] == 2


# ---- numbers no kernel prints ----------------------------------------------------------------------

@pytest.mark.parametrize("message,field", [
    ("XFS: possible memory allocation deadlock in kmem_alloc (mode:0x" + "f" * 40 + ")", "mode"),
    ("XFS: possible memory allocation deadlock in kmem_alloc (mode:0x1ffffffff)", "mode"),
    ("XFS: a(" + "1" * 5000 + ") possible memory allocation deadlock in kmem_alloc (mode:0x250)", "pid"),
    ("XFS: a(99999999) possible memory allocation deadlock in kmem_alloc (mode:0x250)", "pid"),
    ("XFS: possible memory allocation deadlock size " + "7" * 5000 + " in kmem_alloc (mode:0x250)", "size"),
    ("x: page allocation failure: order:" + "4" * 5000 + ", mode:0x20", "order"),
    ("x: page allocation failure: order:99, mode:0x20", "order"),
    ("x: page allocation stalls for " + "5" * 5000 + "ms, order:0, mode:0x20", "seconds"),
    ("INFO: task x:1 blocked for more than " + "1" * 5000 + " seconds.", "seconds"),
    ("x invoked oom-killer: gfp_mask=0x201da, order=" + "1" * 5000 + ", oom_score_adj=0", "order"),
    ("Out of memory: Killed process " + "4" * 5000 + " (java)", "killed_pid"),
    ("oom-kill:constraint=CONSTRAINT_NONE,task=x,pid=" + "1" * 5000 + ",uid=0", "killed_pid"),
])
def test_numbers_out_of_range_leave_the_field_null(message, field):
    match = classify_message(message, "3.10.0")
    assert match is not None, message[:80]
    assert match.fields.get(field) is None and match.problems, (field, match.fields, match.problems)


def test_out_of_range_numbers_are_reported_once_per_file(tmp_path):
    log = tmp_path / "messages"
    log.write_text((KERNEL + "x: page allocation failure: order:" + "4" * 5000 + ", mode:0x20\n") * 3 + KERNEL + XFS + "\n")
    result, _state, warnings = _scan_files([str(log)], "3.10.0")
    assert result["counts"]["page_alloc_failure"] == 3 and result["counts"]["xfs_alloc_deadlock"] == 1
    assert [w for w in warnings if "numbers no kernel prints" in w and "3 event line" in w], warnings
    assert all("order" not in e for e in result["events"] if e["kind"] == "page_alloc_failure")


# ---- state file --------------------------------------------------------------------------------------

def test_state_file_fifo_never_blocks(tmp_path, alarm):
    fifo = str(tmp_path / "state.json")
    os.mkfifo(fifo)
    assert "not a regular file" in state_path_problem(fifo)
    state, problem = load_state(fifo)
    assert state == empty_state() and "not a regular file" in problem
    with pytest.raises(OSError):
        save_state(fifo, empty_state())
    assert os.path.exists(fifo) and not os.path.isfile(fifo)  # never replaced


@pytest.mark.parametrize("patch,dropped", [
    ({"files": [{"dev": 1, "ino": 2, "offset": -5, "head_len": 4, "head_sha1": "a" * 40}]}, "file record"),
    ({"files": [{"dev": 1, "ino": 2, "offset": True, "head_len": 4, "head_sha1": "a" * 40}]}, "file record"),
    ({"files": [{"dev": 1, "ino": 2, "offset": 7, "head_len": 99999, "head_sha1": "a" * 40}]}, "file record"),
    ({"files": [{"dev": 1, "ino": 2, "offset": 7, "head_len": 4, "head_sha1": "not hex"}]}, "file record"),
    ({"journal": {"cursor": "s=1", "first": "yesterday"}}, "journal"),
    ({"journal": {"cursor": 12, "first": 1.5}}, "journal"),
    ({"kmsg": {"boot_id": "b", "seq": "7"}}, "ring-buffer"),
    ({"kmsg": {"boot_id": "b", "seq": -1}}, "ring-buffer"),
])
def test_state_records_of_the_wrong_type_or_range_are_dropped(tmp_path, patch, dropped):
    path = tmp_path / "state.json"
    data = dict(empty_state(), **patch)
    path.write_text(json.dumps(data))
    state, problem = load_state(str(path))
    assert problem and dropped in problem
    assert state["files"] == [] and state["journal"] == {} and state["kmsg"] == {}


def test_state_with_huge_numbers_is_not_json_we_wrote(tmp_path):
    path = tmp_path / "state.json"
    path.write_text('{"version": 1, "files": [{"offset": %s}]}' % ("9" * 5000))
    state, problem = load_state(str(path))
    assert state == empty_state() and problem


def test_a_journal_state_with_a_string_time_is_read_from_the_start(tmp_path):
    script = tmp_path / "journalctl"
    script.write_text("#!/bin/sh\necho \"$@\" >> %s\n" % (tmp_path / "argv"))
    script.chmod(0o755)
    journal = tmp_path / "journal" / "m"
    journal.mkdir(parents=True)
    (journal / "system.journal").write_bytes(b"")
    state = dict(empty_state(), journal={"cursor": "c9", "first": "not a number"})
    result, _state = scan(["journal"], None, None, state, "6.1.0", 10, False, [].append,
                          journalctl=str(script), journal_dirs=(str(tmp_path / "journal"),))
    assert result["sources"]["journal"]["status"] == "scanned"


# ---- paths that are not regular files ---------------------------------------------------------------

def test_fifos_sockets_and_fd_links_in_paths_are_skipped_unopened(tmp_path, alarm):
    logs = tmp_path / "logs"
    logs.mkdir()
    os.mkfifo(str(logs / "messages.fifo"))
    os.symlink(str(logs / "messages.fifo"), str(logs / "messages.link"))  # a link to a FIFO in the same directory
    (logs / "messages").write_text(KERNEL + XFS + "\n")
    result, _state, _warnings = _scan_files([str(logs / "*"), "/proc/*/fd/*"], "3.10.0")
    assert result["counts"]["xfs_alloc_deadlock"] == 1
    notes = " ".join(result["sources"]["files"]["notes"])
    assert "messages.fifo: not a regular file" in notes and "messages.link: not a regular file" in notes
    assert len(result["sources"]["files"]["notes"]) <= 51


def test_a_path_swapped_for_a_fifo_after_the_glob_is_refused(tmp_path, alarm, monkeypatch):
    path = tmp_path / "messages"
    path.write_text(KERNEL + XFS + "\n")
    st = os.stat(str(path))
    os.unlink(str(path))
    os.mkfifo(str(path))
    with pytest.raises(sources.NotRegularFile):
        sources.open_regular(str(path), st)
    regular = tmp_path / "other"
    regular.write_text("x\n")
    with pytest.raises(sources.NotRegularFile):
        sources.open_regular(str(regular), st)  # same name, other file


def test_a_saved_ring_buffer_that_is_a_fifo_is_skipped(tmp_path, alarm):
    fifo = str(tmp_path / "kmsg")
    os.mkfifo(fifo)
    result, _state = scan(["kmsg"], None, None, empty_state(), "6.1.0", 10, False, [].append, kmsg_path=fifo)
    assert result["sources"]["kmsg"]["status"] == "skipped"


# ---- log_scan handed to consumers ------------------------------------------------------------------

@pytest.mark.parametrize("value,words", [
    ({"counts": [1, 2]}, "counts must be a dict"),
    ({"counts": {"oom_kill": -1}}, "counts.oom_kill"),
    ({"counts": {"oom_kill": "9" * 5000}}, "counts.oom_kill"),
    ({"counts": {"oom_kill": True}}, "counts.oom_kill"),
    ({"first_seen": ["x"]}, "first_seen"),
    ({"last_seen": {"oom_kill": 5}}, "last_seen.oom_kill"),
    ({"events": {"kind": "x"}}, "events must be a list"),
    ([1, 2], "a dict"),
])
def test_a_log_scan_of_the_wrong_shape_fails_with_its_field_named(value, words):
    assert words in log_scan_problem(value)
    with pytest.raises(ValueError) as info:
        log_findings(value)
    assert words in str(info.value)
    with pytest.raises(ValueError):
        allocation_events(value)


def test_a_real_result_and_templated_counts_are_accepted():
    check_log_scan({"counts": {"oom_kill": 2, "hung_task": "3"}, "first_seen": {"oom_kill": None}, "events": []})
    assert [f["id"] if "id" in f else f for f in log_findings({"counts": {"oom_kill": "2"}})]


# ---- non-breaking spaces -----------------------------------------------------------------------------

def test_text_with_non_breaking_spaces_is_read_and_marked(tmp_path):
    pasted = XFS.replace(" ", "\xa0")
    log = tmp_path / "pasted.txt"
    log.write_text("%s%s\n%s%s\n" % (KERNEL, pasted, KERNEL, XFS), encoding="utf-8")
    result, _state, warnings = _scan_files([str(log)], "3.10.0")
    assert result["counts"]["xfs_alloc_deadlock"] == 2
    exact = [e["byte_exact"] for e in result["events"]]
    assert exact == [False, True]
    assert result["events"][0]["mode"] == 0x250 and result["events"][0]["function"] == "kmem_alloc"
    assert any("not byte-exact" in w for w in warnings), warnings


def test_non_breaking_spaces_in_the_dmesg_time_only_keep_the_message_exact(tmp_path):
    log = tmp_path / "dmesg.txt"
    log.write_text("> [Tue Nov\xa0 5 11:18:34 2019] XFS: nginx(2540) possible memory allocation deadlock size 63960 "
                   "in kmem_alloc (mode:0x250)\n", encoding="utf-8")
    result, _state, _warnings = _scan_files([str(log)], "3.10.0")
    assert [e["byte_exact"] for e in result["events"]] == [True]


# ---- the kernel a log came from ---------------------------------------------------------------------

@pytest.mark.parametrize("message,release", [
    ("Linux version 3.10.0-1160.el7.x86_64 (mockbuild@kbuilder.bsys.centos.org) (gcc version 4.8.5)", "3.10.0-1160.el7.x86_64"),
    ("CPU: 3 PID: 1 Comm: x Not tainted 3.10.0-1160.el7.x86_64 #1", "3.10.0-1160.el7.x86_64"),
    ("CPU: 0 PID: 2034240 Comm: cat Tainted: G         C        5.10.2 #80", "5.10.2"),
    ("CPU: 1 UID: 0 PID: 7 Comm: kworker/1:0 Tainted: G        W          6.12.0-rc1 #1", "6.12.0-rc1"),
    ("Pid: 1234, comm: java Not tainted 2.6.32-431.el6.x86_64 #1 Dell Inc. PowerEdge R720", "2.6.32-431.el6.x86_64"),
    ("      Not tainted 5.10.0 #1", "5.10.0"),
    ("Tainted: [W]=WARN, [O]=OOT_MODULE", None),
    ("the box was painted 3.1 times", None),
])
def test_release_lines(message, release):
    found = release_of(message)
    assert (found[0] if found else None) == release


def test_modes_are_decoded_with_the_release_the_file_names(tmp_path):
    # mode:0x250 is GFP_NOFS|__GFP_NOWARN on 3.10; the running kernel (6.x) would print other names.
    log = tmp_path / "messages"
    log.write_text(KERNEL + "Linux version 3.10.0-1160.el7.x86_64 (mockbuild@x) #1 SMP\n" + KERNEL + XFS + "\n"
                   + KERNEL + "Linux version 6.1.0-18-amd64 (debian-kernel@lists.debian.org)\n" + KERNEL + XFS + "\n")
    result, _state, warnings = _scan_files([str(log)], fallback_release="6.18.0")
    first, second = result["events"]
    assert first["gfp_flags"] == ["GFP_NOFS", "__GFP_NOWARN"] and first["gfp_release"] == "3.10.0-1160.el7.x86_64"
    assert first["gfp_release_source"].startswith("Linux version line at offset 0 of ")
    assert second["gfp_release"] == "6.1.0-18-amd64" and second["gfp_flags_source"] == "decoded for 6.1.0-18-amd64"
    assert not [w for w in warnings if "running kernel" in w]


def test_a_taint_line_after_the_event_names_the_release(tmp_path):
    log = tmp_path / "messages"
    log.write_text(KERNEL + "swapper/0: page allocation failure: order:1, mode:0x20\n"
                   + KERNEL + "CPU: 3 PID: 0 Comm: swapper/0 Not tainted 3.10.0-1160.el7.x86_64 #1\n")
    result, _state, _warnings = _scan_files([str(log)], fallback_release="6.18.0")
    event = result["events"][0]
    assert event["gfp_release"] == "3.10.0-1160.el7.x86_64" and "taint line" in event["gfp_release_source"]
    assert event["gfp_flags"] == ["GFP_ATOMIC"]


def test_a_spoofed_release_line_is_not_believed(tmp_path):
    log = tmp_path / "messages"
    log.write_text("Mar  5 22:42:56 node06 mallory: Linux version 2.6.32-1.el6\n" + KERNEL + XFS + "\n")
    result, _state, warnings = _scan_files([str(log)], fallback_release="6.18.0")
    assert result["events"][0]["gfp_release"] == "6.18.0"
    assert "fallback" in result["events"][0]["gfp_release_source"]
    assert [w for w in warnings if "decoded for the running kernel 6.18.0" in w]


def test_a_file_naming_no_release_uses_the_older_files_of_the_scan(tmp_path):
    older = tmp_path / "messages.1"
    older.write_text(KERNEL + "Linux version 4.4.0-104-generic (buildd@lgw01-amd64-022)\n")
    os.utime(str(older), (1.6e9, 1.6e9))
    newer = tmp_path / "messages"
    newer.write_text(KERNEL + XFS + "\n")
    result, _state, _warnings = _scan_files([str(tmp_path / "messages*")], fallback_release="6.18.0")
    event = result["events"][0]
    assert event["gfp_release"] == "4.4.0-104-generic" and str(older) in event["gfp_release_source"]


def test_the_option_overrides_the_log(tmp_path):
    log = tmp_path / "messages"
    log.write_text(KERNEL + "Linux version 6.1.0 (x)\n" + KERNEL + XFS + "\n")
    result, _state, _warnings = _scan_files([str(log)], "3.10.0-1160.el7.x86_64", fallback_release="6.18.0")
    event = result["events"][0]
    assert (event["gfp_release"], event["gfp_release_source"]) == ("3.10.0-1160.el7.x86_64", "kernel_release option")


def test_journal_events_are_decoded_with_their_boot(tmp_path):
    entries = [
        {"__CURSOR": "c1", "__REALTIME_TIMESTAMP": "1700000000000000", "SYSLOG_FACILITY": "0", "_BOOT_ID": "old",
         "MESSAGE": "Linux version 3.10.0-1160.el7.x86_64 (mockbuild@x)"},
        {"__CURSOR": "c2", "__REALTIME_TIMESTAMP": "1700000100000000", "SYSLOG_FACILITY": "0", "_BOOT_ID": "old",
         "MESSAGE": XFS},
        {"__CURSOR": "c3", "__REALTIME_TIMESTAMP": "1700000200000000", "SYSLOG_FACILITY": "0", "_BOOT_ID": "other",
         "MESSAGE": XFS},
    ]
    data = tmp_path / "entries.json"
    data.write_text("".join(json.dumps(e) + "\n" for e in entries))
    script = tmp_path / "journalctl"
    script.write_text("#!/bin/sh\ncat %s\n" % data)
    script.chmod(0o755)
    (tmp_path / "journal" / "m").mkdir(parents=True)
    (tmp_path / "journal" / "m" / "system.journal").write_bytes(b"")
    warnings = []
    result, _state = scan(["journal"], None, None, empty_state(), None, 10, False, warnings.append,
                          journalctl=str(script), journal_dirs=(str(tmp_path / "journal"),), fallback_release="6.18.0")
    old, other = result["events"]
    assert old["gfp_release"] == "3.10.0-1160.el7.x86_64" and "boot old" in old["gfp_release_source"]
    assert other["gfp_release"] == "6.18.0" and "fallback" in other["gfp_release_source"]
    assert [w for w in warnings if "journal boot other" in w]


def test_the_live_ring_buffer_is_the_running_kernel(tmp_path):
    from ansible_collections.memfrag.linux.plugins.module_utils._kernel_log import scan as scan_module
    copy = tmp_path / "kmsg"
    copy.write_text("6,1,1000,-;Linux version 4.19.0-6-amd64 (debian-kernel@lists.debian.org)\n3,2,2000,-;%s\n" % XFS)
    result, _state = scan(["kmsg"], None, None, empty_state(), None, 10, False, [].append, kmsg_path=str(copy),
                          fallback_release="6.18.0")
    assert result["events"][0]["gfp_release"] == "4.19.0-6-amd64"  # a saved copy names its own kernel
    assert scan_module.running_release() == os.uname()[2]


# ---- the search itself ----------------------------------------------------------------------------------

@pytest.mark.parametrize("chunk", [64, 4096, 1024 * 1024])
def test_libc_search_and_bytes_find_give_the_same_lines(monkeypatch, fixtures_dir, chunk):
    with open(os.path.join(fixtures_dir, "logs", "rhel7-messages-with-spoofs.log"), "rb") as handle:
        data = handle.read()
    # NUL junk in the middle switches that chunk to memmem; non-breaking spaces are a needle of their own.
    data = data + b"\x00" * 100 + b"\n" + (KERNEL + XFS.replace(" ", "\xa0") + "\n").encode() + data
    monkeypatch.setattr(sources, "CHUNK", chunk)
    found = []
    for use_libc in (True, False):
        monkeypatch.setattr(sources, "USE_LIBC", use_libc)
        monkeypatch.setattr(sources, "_LIBC", [])
        items = list(sources.scan_stream(__import__("io").BytesIO(data), "x", 0, [].append))
        found.append([(h.offset, h.line, h.previous, h.following) for h in items[:-1]])
    expected = [line for line in data.split(b"\n") if confirm_line(line) or b"\xc2\xa0" in line]
    assert found[0] == found[1] and [hit[1] for hit in found[0]] == expected


def test_a_resumed_file_remembers_the_release_it_named(tmp_path):
    log = tmp_path / "messages"
    log.write_text(KERNEL + "Linux version 3.10.0-1160.el7.x86_64 (mockbuild@x) #1 SMP\n" + KERNEL + XFS + "\n")
    warnings = []
    first, state = scan(["files"], [str(log)], None, empty_state(), None, 10, False, warnings.append,
                        fallback_release="6.18.0")
    assert state["files"][0]["release"] == ["3.10.0-1160.el7.x86_64", "Linux version line"]
    with open(str(log), "a") as handle:
        handle.write(KERNEL + XFS + "\n")
    path = tmp_path / "state.json"
    save_state(str(path), state)
    state, problem = load_state(str(path))
    assert problem is None
    second, _state = scan(["files"], [str(log)], None, state, None, 10, False, warnings.append, fallback_release="6.18.0")
    event = second["events"][0]
    assert second["sources"]["files"]["files"][0]["status"] == "resumed"
    assert event["gfp_release"] == "3.10.0-1160.el7.x86_64" and "an earlier run" in event["gfp_release_source"]
    assert event["gfp_flags"] == ["GFP_NOFS", "__GFP_NOWARN"] and not warnings


def test_a_state_record_with_a_bad_release_is_dropped(tmp_path):
    path = tmp_path / "state.json"
    record = {"dev": 1, "ino": 2, "offset": 7, "head_len": 4, "head_sha1": "a" * 40, "release": ["x" * 500, "y"]}
    path.write_text(json.dumps(dict(empty_state(), files=[record])))
    state, problem = load_state(str(path))
    assert state["files"] == [] and "file record" in problem
