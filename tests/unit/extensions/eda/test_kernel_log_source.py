# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The kernel_log event source (extensions/eda/plugins/event_source/kernel_log.py) without ansible-rulebook.

The plugin is loaded from its file, as ansible-rulebook does. Its recognition must be kernel_log_scan's: the
parity tests run the scanner and the plugin's file follower over the same logs (our fixture and every log of the
shared corpus) and compare the events. The rulebook itself is tested with the real ansible-rulebook in
tests/e2e/test_eda.py.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import sys
import time

import pytest

from ansible_collections.memfrag.linux.tests.collection_tree import CORPUS_SKIP_REASON, corpus_dir, REPO_ROOT

from ansible_collections.memfrag.linux.plugins.module_utils._kernel_log.scan import scan
from ansible_collections.memfrag.linux.plugins.module_utils._kernel_log.state import empty_state

PLUGIN = os.path.join(REPO_ROOT, "extensions", "eda", "plugins", "event_source", "kernel_log.py")
FIXTURE_LOG = os.path.join(REPO_ROOT, "tests", "fixtures", "logs", "rhel7-messages-with-spoofs.log")
XFS = "XFS: possible memory allocation deadlock size 65536 in kmem_alloc (mode:0x250)"
PAF = "kworker/u8:1: page allocation failure: order:4, mode:0x40cc0(GFP_KERNEL|__GFP_COMP), nodemask=(null)"
HUNG = "INFO: task qemu-kvm:6902 blocked for more than 120 seconds."


def _load():
    spec = importlib.util.spec_from_file_location("memfrag_eda_kernel_log", PLUGIN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


kl = _load()


class ListQueue(object):
    def __init__(self):
        self.events = []

    async def put(self, event):
        self.events.append(event)


def emitter(**args):
    args.setdefault("host", "this-host")
    return kl.Emitter(kl.Options(args), ListQueue())


def kernel_events(events):
    return [e["kernel_log"] for e in events if "kernel_log" in e]


def follow(path, content, **args):
    """Follow ``path`` (empty or absent at the start), append ``content``, read it all; the events."""
    args.setdefault("sources", ["files"])
    args.setdefault("paths", [str(path)])
    em = emitter(**args)
    follower = kl.FileFollower(em)

    async def run():
        with open(str(path), "ab"):
            pass
        follower.rescan()
        with open(str(path), "ab") as handle:
            handle.write(content)
        follower.rescan()
        await follower.check_all(0.0)
        await follower.flush()
        follower.close()

    asyncio.run(run())
    return em.queue.events


# ---- recognition is kernel_log_scan's --------------------------------------------------------------------------

def _scanned(path):
    result, _state = scan(["files"], [path], None, empty_state(), None, 100000, False, lambda _m: None)
    return result


def _key(event):
    fields = dict((k, event.get(k)) for k in ("comm", "pid", "order", "mode", "size", "function", "killed_pid",
                                              "seconds", "invoked_by", "byte_exact"))
    return (event["kind"], event["form"], event["message"], json.dumps(fields, sort_keys=True))


def _assert_parity(path, tmp_path):
    with open(path, "rb") as handle:
        content = handle.read()
    expected = sorted(_key(e) for e in _scanned(path)["events"])
    # host_from local: the corpus masks host fields ("<host>"), which no inventory would accept as a host.
    got = sorted(_key(e) for e in kernel_events(follow(tmp_path / "followed.log", content, dedup_window=0,
                                                       host_from="local")))
    assert got == expected


def test_fixture_log_gives_the_scanners_events(tmp_path):
    _assert_parity(FIXTURE_LOG, tmp_path)
    events = kernel_events(follow(tmp_path / "again.log", open(FIXTURE_LOG, "rb").read(), dedup_window=0))
    # The lines of root, sshd and logger quoting the kernel's text are no events; the kernel's are.
    assert [e["kind"] for e in events] == ["xfs_alloc_deadlock", "xfs_alloc_deadlock", "hung_task", "oom_kill",
                                           "page_alloc_failure"]
    assert all(e["line"].split()[4] == "kernel:" for e in events)
    assert {e["host"] for e in events} == {"node06"}


CORPUS = corpus_dir()
CORPUS_LOGS = sorted(os.listdir(os.path.join(CORPUS, "logs"))) if CORPUS else []


@pytest.mark.parametrize("name", CORPUS_LOGS or [pytest.param("-", marks=pytest.mark.skip(reason=CORPUS_SKIP_REASON))])
def test_corpus_log_gives_the_scanners_events(name, tmp_path):
    _assert_parity(os.path.join(CORPUS, "logs", name), tmp_path)


# ---- the event -------------------------------------------------------------------------------------------------

def test_event_carries_the_decoded_fields_host_origin_and_time(tmp_path):
    line = "Mar  5 22:42:57 node06 kernel: [ 12.5] " + PAF + "\n"
    (event,) = follow(tmp_path / "messages", line.encode(), kernel_release="4.18.0-80.el8.x86_64")
    assert event["meta"] == {"hosts": "node06"}
    data = event["kernel_log"]
    assert data["kind"] == data["form"] == "page_alloc_failure"
    assert (data["comm"], data["order"], data["mode"], data["gfp_flags"]) == ("kworker/u8:1", 4, 0x40cc0,
                                                                              ["GFP_KERNEL", "__GFP_COMP"])
    assert (data["host"], data["source"], data["origin"], data["uptime"]) == ("node06", "files", "syslog", 12.5)
    # The line's own time (local time, the year from now), as the scanner reads it.
    assert data["timestamp"] == kl.patterns.iso(kl.patterns.parse_prefix(line, time.time()).timestamp)
    assert data["timestamp"][5:10] == "03-05" or data["timestamp"][5:10] in ("03-04", "03-06")
    assert data["message"] == PAF and data["line"] == line.rstrip("\n")
    assert data["path"] == str(tmp_path / "messages")
    assert data["rate"] == {"events": 1, "window": 600.0, "threshold": 5, "exceeded": False}


def test_xfs_mode_is_decoded_for_this_hosts_kernel_or_the_given_release(tmp_path):
    local = follow(tmp_path / "a", ("Mar  5 22:42:57 this-host kernel: " + XFS + "\n").encode())
    assert local[0]["kernel_log"]["gfp_flags"]  # the running kernel decodes it
    other = follow(tmp_path / "b", ("Mar  5 22:42:57 node06 kernel: " + XFS + "\n").encode())
    assert other[0]["kernel_log"]["mode"] == 0x250 and "gfp_flags" not in other[0]["kernel_log"]
    given = follow(tmp_path / "c", ("Mar  5 22:42:57 node06 kernel: " + XFS + "\n").encode(),
                   kernel_release="3.10.0-1160.el7.x86_64")
    assert given[0]["kernel_log"]["gfp_flags"] == ["GFP_NOFS", "__GFP_NOWARN"]


def test_a_hosts_own_kernel_banner_decodes_its_gfp_modes_a_programs_does_not(tmp_path):
    lines = ("Mar  5 22:40:00 node06 kernel: Linux version 3.10.0-1160.el7.x86_64 (mockbuild@x) #1 SMP\n"
             "Mar  5 22:40:01 node07 sshd[1]: Linux version 3.10.0-1160.el7.x86_64 (spoof)\n"
             "Mar  5 22:42:57 node06 kernel: " + XFS + "\n"
             "Mar  5 22:42:57 node07 kernel: " + XFS + "\n")
    node06, node07 = [e["kernel_log"] for e in follow(tmp_path / "m", lines.encode())]
    assert node06["gfp_flags"] == ["GFP_NOFS", "__GFP_NOWARN"] and node06["gfp_release"] == "3.10.0-1160.el7.x86_64"
    assert "node06's log" in node06["gfp_release_source"]
    assert "gfp_flags" not in node07 and node07["mode"] == 0x250


def test_text_that_is_not_byte_exact_and_numbers_no_kernel_prints_are_marked(tmp_path):
    lines = ("Mar  5 22:42:57 n1 kernel: XFS: possible\u00a0memory allocation deadlock in kmem_alloc (mode:0x250)\n"
             "Mar  5 22:42:58 n1 kernel: INFO: task x:99999999999 blocked for more than 120 seconds.\n")
    spaced, overlong = [e["kernel_log"] for e in follow(tmp_path / "m", lines.encode("utf-8"))]
    assert spaced["kind"] == "xfs_alloc_deadlock" and spaced["byte_exact"] is False
    assert overlong["kind"] == "hung_task" and "pid" not in overlong and overlong["problems"]


def test_oom_kill_carries_the_allocation_that_invoked_the_killer(tmp_path):
    # Two hosts' reports interleaved in one file (a central server's shared log): each kill gets its own host's.
    lines = ("Mar  5 22:44:10 n1 kernel: java invoked oom-killer: gfp_mask=0x201da, order=0, oom_score_adj=0\n"
             "Mar  5 22:44:10 n2 kernel: qemu invoked oom-killer: gfp_mask=0x201da, order=3, oom_score_adj=0\n"
             "Mar  5 22:44:10 n1 kernel: Killed process 4242 (java), UID 1000, total-vm:8123456kB\n"
             "Mar  5 22:44:11 n2 kernel: Killed process 77 (qemu), UID 0, total-vm:1kB\n")
    killed = [e["kernel_log"] for e in follow(tmp_path / "m", lines.encode())]
    assert [(e["host"], e["kind"], e["killed_pid"], e["order"], e["invoked_by"]) for e in killed] == [
        ("n1", "oom_kill", 4242, 0, "java"), ("n2", "oom_kill", 77, 3, "qemu")]


def test_wrapped_line_is_joined_with_its_continuation(tmp_path):
    lines = ("Mar  5 22:42:57 n1 kernel: XFS: possible memory allocation deadlock size 65536 in kmem_alloc\n"
             "(mode:0x250)\n")
    (event,) = follow(tmp_path / "m", lines.encode())
    assert event["kernel_log"]["mode"] == 0x250


# ---- hosts -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["all", "ALL", "ungrouped", "web*", "a:b", "!x", "~node.*", "a,b", "a&b", "", "-x",
                                  "x y", "[a]", "n" * 254, "fe80::1"])
def test_a_host_that_would_be_an_inventory_pattern_is_refused(name):
    assert kl.check_host(name) is None


@pytest.mark.parametrize("name", ["node06", "db-1.example.com", "10.0.0.7", "localhost", "n_1"])
def test_plain_host_names_pass(name):
    assert kl.check_host(name) == name


def test_host_from_line_directory_and_local(tmp_path):
    remote = tmp_path / "remote" / "from-dir"
    remote.mkdir(parents=True)
    pattern = str(tmp_path / "remote" / "*" / "messages")
    with_host = ("Mar  5 22:42:57 from-line kernel: " + XFS + "\n").encode()
    without_host = ("Mar  5 22:42:57 kernel: " + XFS + "\n").encode()

    def host(content, name, **args):
        return follow(remote / name, content, paths=[pattern], **args)[0]["kernel_log"]["host"]

    assert host(with_host, "messages") == "from-line"
    assert host(without_host, "messages") == "from-dir"  # no host field: the per-host directory of the glob
    assert host(with_host, "messages", host_from="directory") == "from-dir"
    assert host(with_host, "messages", host_from="local") == "this-host"
    # Not a glob in the directory part: a line without host field is this host's.
    assert follow(tmp_path / "plain.log", without_host)[0]["kernel_log"]["host"] == "this-host"


def test_line_naming_a_pattern_as_its_host_gives_no_event(tmp_path):
    lines = ("Mar  5 22:42:57 all kernel: " + XFS + "\nMar  5 22:42:58 web* kernel: " + XFS + "\n"
             "Mar  5 22:42:59 ok-host kernel: " + XFS + "\n")
    events = follow(tmp_path / "m", lines.encode())
    assert [e["meta"]["hosts"] for e in events] == ["ok-host"]


# ---- kmsg and journal records ----------------------------------------------------------------------------------

def test_kmsg_records_count_only_with_facility_0():
    em = emitter()
    kernel = kl.kmsg_event(em, b"3,101,2000000,-;" + XFS.encode() + b"\n SUBSYSTEM=xfs\n", 1000.0)
    assert [e["kernel_log"]["kind"] for e in kernel] == ["xfs_alloc_deadlock"]
    assert kernel[0]["kernel_log"]["timestamp"] == "1970-01-01T00:16:42+00:00"  # boot + 2 s
    assert kernel[0]["kernel_log"]["uptime"] == 2.0 and kernel[0]["meta"]["hosts"] == "this-host"
    # What `echo ... > /dev/kmsg` writes: facility 1 (user), whatever level it asks for.
    assert kl.kmsg_event(em, b"11,103,4000000,-;" + XFS.encode() + b"\n", 1000.0) == []
    assert kl.kmsg_event(em, b"14,104,4000000,-;" + PAF.encode() + b"\n", 1000.0) == []
    assert kl.kmsg_event(em, b"6,105,4000000,-;Linux version 6.1.0\n", 1000.0) == []
    assert kl.kmsg_event(em, b"garbage without a header\n", 1000.0) == []


def _journal(message, **fields):
    entry = {"MESSAGE": message, "__REALTIME_TIMESTAMP": "1700000000000000", "_TRANSPORT": "kernel"}
    entry.update(fields)
    return json.dumps(entry).encode()


def test_journal_entries_count_only_with_the_kernels_facility():
    em = emitter()
    (event,) = kl.journal_event(em, _journal(HUNG, SYSLOG_FACILITY="0"))
    assert event["kernel_log"]["kind"] == "hung_task" and event["kernel_log"]["timestamp"] == "2023-11-14T22:13:20+00:00"
    assert kl.journal_event(em, _journal(XFS, SYSLOG_FACILITY="1")) == []  # written into /dev/kmsg by a process
    assert len(kl.journal_event(em, _journal([ord(c) for c in XFS]))) == 1  # non-UTF-8 messages are byte arrays
    assert kl.journal_event(em, b"not json allocation") == []


def test_journal_directory_takes_the_host_from_the_entry():
    em = emitter(journal_directory="/var/log/journal/remote")
    (event,) = kl.journal_event(em, _journal(XFS, _HOSTNAME="node07"))
    assert event["meta"]["hosts"] == "node07"
    assert kl.journal_argv(em.options)[-2:] == ["--directory=/var/log/journal/remote", "_TRANSPORT=kernel"]
    assert kl.journal_argv(emitter().options)[-1] == "--dmesg"


# ---- following files like tail -F ------------------------------------------------------------------------------

def _line(host, message=XFS):
    return ("Mar  5 22:42:57 %s kernel: %s\n" % (host, message)).encode()


def test_follows_from_the_end_through_rotation_truncation_and_new_files(tmp_path):
    log = tmp_path / "remote" / "n1" / "messages"
    log.parent.mkdir(parents=True)
    log.write_bytes(_line("n1", "old: " + XFS))  # before the start: not reported
    em = emitter(sources=["files"], paths=[str(tmp_path / "remote" / "*" / "messages")])
    follower = kl.FileFollower(em)

    def hosts():
        found = [e["host"] + ":" + e["message"][:3] for e in kernel_events(em.queue.events)]
        del em.queue.events[:]
        return found

    async def run():
        follower.rescan()
        await follower.check_all(0.0)
        assert hosts() == []
        with open(str(log), "ab") as handle:
            handle.write(_line("n1") + _line("n1")[:20])  # a line and the start of the next
        await follower.check_all(1.0)
        assert hosts() == ["n1:XFS"]
        with open(str(log), "ab") as handle:
            handle.write(_line("n1")[20:])
            handle.write(_line("n1", "last: " + XFS))
        os.rename(str(log), str(log) + ".1")  # rotation: written before, read after the rename
        log.write_bytes(_line("n1", "new: " + XFS))
        await follower.check_all(2.0)
        assert hosts() == ["n1:XFS", "n1:las", "n1:new"]
        log.write_bytes(b"")  # copytruncate
        await follower.check_all(3.0)
        with open(str(log), "ab") as handle:
            handle.write(_line("n1", "trunc: " + XFS))
        await follower.check_all(4.0)
        assert hosts() == ["n1:tru"]
        other = tmp_path / "remote" / "n2" / "messages"  # a host that appears later: read from its first line
        other.parent.mkdir()
        other.write_bytes(_line("n2"))
        follower.rescan()
        await follower.check_all(5.0)
        assert hosts() == ["n2:XFS"]
        os.unlink(str(other))
        await follower.check_all(6.0)
        assert str(other) not in follower.files
        follower.close()

    asyncio.run(run())


def test_overlong_lines_fifos_and_links_out_of_the_directory_are_skipped(tmp_path):
    log = tmp_path / "messages"
    content = b"x" * (kl.patterns.MAX_LINE + 10) + XFS.encode() + b"\n" + _line("n1")
    assert [e["kernel_log"]["host"] for e in follow(log, content)] == ["n1"]
    os.mkfifo(str(tmp_path / "fifo"))
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(_line("n1"))
    (tmp_path / "logs").mkdir()
    os.symlink(str(outside / "secret"), str(tmp_path / "logs" / "link"))
    assert kl.expand([str(tmp_path / "fifo"), str(tmp_path / "logs" / "*")]) == {}


# ---- the reclaim rate and copies across sources ----------------------------------------------------------------

def test_rate_event_after_the_threshold_of_allocation_events_in_the_window():
    em = emitter(reclaim_rate_events=3, reclaim_rate_window=60)
    match = kl.patterns.classify_message(XFS)
    hung = kl.patterns.classify_message(HUNG)

    def build(m, now, host="n1", message=XFS):
        return em.build(m, "s", host, "files", "syslog", None, message + str(now), now=now)

    assert [len(build(match, t)) for t in (0, 1)] == [1, 1]
    assert len(build(hung, 2, message=HUNG)) == 1  # hung tasks are reported, not counted for reclaim
    events = build(match, 3)
    assert events[1]["kernel_log_rate"] == {"events": 3, "window": 60.0, "threshold": 3, "exceeded": True,
                                            "host": "n1", "kind": "xfs_alloc_deadlock", "timestamp": None}
    assert events[1]["meta"] == {"hosts": "n1"}
    assert len(build(match, 3, host="n2")) == 1  # counted per host
    assert len(build(match, 62)) == 1  # 0 and 1 left the window: 3 and 62 are two


def test_a_copy_in_a_second_source_is_dropped_a_burst_in_one_is_not():
    em = emitter()
    match = kl.patterns.classify_message(XFS)
    assert len(em.build(match, "k", "n1", "kmsg", "kmsg", None, XFS, now=0.0)) == 1
    assert em.build(match, "j", "n1", "journal", "journal", None, XFS, now=0.5) == []
    assert len(em.build(match, "k", "n1", "kmsg", "kmsg", None, XFS, now=0.6)) == 1
    assert len(em.build(match, "j", "n1", "journal", "journal", None, XFS, now=10.0)) == 1  # outside the window


@pytest.mark.parametrize("args, message", [
    ({"sources": ["ring"]}, "sources: 'ring' is not one of"),
    ({"host_from": "dns"}, "host_from: 'dns'"),
    ({"host": "all"}, "host: 'all' is not a plain inventory host name"),
    ({"poll_interval": "soon"}, "poll_interval must be a number"),
    ({"reclaim_rate_events": 0}, "reclaim_rate_events must be between"),
    ({"paths": [1]}, "paths must be a list of strings"),
    ({"colour": "red"}, "unknown argument(s) colour"),
    ({"kernel_release": "banana"}, "kernel_release: 'banana' is not a kernel release"),
])
def test_bad_arguments_are_named(args, message):
    with pytest.raises(ValueError) as caught:
        kl.Options(args)
    assert message in str(caught.value)


def test_main_follows_until_cancelled_and_closes_its_files(tmp_path):
    log = tmp_path / "messages"
    log.write_bytes(b"")
    queue = ListQueue()

    async def run():
        task = asyncio.ensure_future(kl.main(queue, {"sources": ["files"], "paths": [str(log)], "poll_interval": 0.01,
                                                     "eda_feedback_queue": None}))
        await asyncio.sleep(0.2)
        with open(str(log), "ab") as handle:
            handle.write(_line("n1"))
        for _attempt in range(200):
            if queue.events:
                break
            await asyncio.sleep(0.01)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(run())
    assert [e["meta"]["hosts"] for e in queue.events] == ["n1"]
    opened = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            opened.append(os.readlink("/proc/self/fd/" + fd))
        except OSError:
            pass  # the listing's own descriptor
    assert str(log) not in opened


def test_main_stops_with_the_error_of_a_failing_source():
    with pytest.raises(ValueError, match="is not the kernel's ring buffer device"):
        asyncio.run(kl.main(ListQueue(), {"sources": ["kmsg"], "kmsg_path": FIXTURE_LOG}))


# ---- the journalctl process ------------------------------------------------------------------------------------
# No journald runs on the test machine, so a stand-in program prints what `journalctl --output=json` prints (the
# parsing of real entries is tested above); these tests are about starting, reading and stopping the process.

def _stand_in(tmp_path, body):
    script = tmp_path / "journalctl"
    script.write_text("#!%s\nimport json, os, sys, time\nopen(%r, 'w').write(str(os.getpid()))\n%s\n"
                      % (sys.executable, str(tmp_path / "pid"), body))
    script.chmod(0o755)
    return str(script)


def test_journalctl_lines_become_events_and_a_stopped_journalctl_stops_the_source(tmp_path):
    body = ("print(json.dumps({'MESSAGE': %r, 'SYSLOG_FACILITY': '0', '__REALTIME_TIMESTAMP': '1'}), flush=True)\n"
            "print(json.dumps({'MESSAGE': %r, 'SYSLOG_FACILITY': '1'}), flush=True)\n"
            "sys.stderr.write('Failed to open journal')\nsys.exit(1)" % (XFS, XFS))
    queue = ListQueue()
    with pytest.raises(RuntimeError, match="stopped \\(rc=1\\): Failed to open journal"):
        asyncio.run(kl.main(queue, {"sources": ["journal"], "journalctl": _stand_in(tmp_path, body), "host": "n1"}))
    assert [(e["kernel_log"]["kind"], e["kernel_log"]["source"]) for e in queue.events] == [("xfs_alloc_deadlock", "journal")]


def test_cancelling_the_source_ends_journalctl(tmp_path):
    journalctl = _stand_in(tmp_path, "sys.stdout.write(' '.join(sys.argv[1:]) + '\\n'); sys.stdout.flush()\n"
                                     "time.sleep(600)")
    queue = ListQueue()

    async def run():
        task = asyncio.ensure_future(kl.main(queue, {"sources": ["journal"], "journalctl": journalctl}))
        for _attempt in range(500):
            if (tmp_path / "pid").exists() and (tmp_path / "pid").read_text():
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(run())
    pid = int((tmp_path / "pid").read_text())
    with pytest.raises(OSError):
        os.kill(pid, 0)  # terminated and reaped
