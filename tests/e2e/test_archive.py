# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The archive playbook and capture_extract on sosreports built here in the real sos layout.

The archives are made by the tests from tests/fixtures/proc/diagnose-fragmented, with a syslog whose year-less
lines were written a few years ago, so a log window anchored at today's date would find nothing.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
import time

import pytest

from collection_tree import corpus_dir
from conftest import REPO_ROOT

PLAYBOOK = os.path.join(REPO_ROOT, "playbooks", "archive.yml")
DIAGNOSE = os.path.join(REPO_ROOT, "playbooks", "diagnose.yml")
JUDGE = "Gather memory facts, scan kernel logs and judge the host"
FRAGMENTED = os.path.join(REPO_ROOT, "tests", "fixtures", "proc", "diagnose-fragmented")
# 2023-03-05 10:11:12 UTC: in the past, in another year than today.
CAPTURE = 1678011072
XFS = "XFS: possible memory allocation deadlock in kmem_alloc (mode:0x250)"
RELEASE = "4.18.0-513.el8.x86_64"


def compression_bomb(path, first, log_member, size=256 * 1024 * 1024):
    """A .tar.gz whose ``log_member`` holds ``size`` zeros (256 MiB compress to about 250 KiB), after one real
    member ``first`` = (name, bytes)."""
    class Zeros(object):
        left = size

        def read(self, count):
            count = min(count, self.left)
            self.left -= count
            return b"\0" * count

    with gzip.open(path, "wb", compresslevel=1) as raw:
        with tarfile.open(fileobj=raw, mode="w") as tar:
            info = tarfile.TarInfo(first[0])
            info.size = len(first[1])
            tar.addfile(info, io.BytesIO(first[1]))
            info = tarfile.TarInfo(log_member)
            info.size = size
            tar.addfile(info, Zeros())
    return path


def _syslog_stamp(stamp):  # syslog writes local time
    return time.strftime("%b %e %H:%M:%S", time.localtime(stamp))


def _utc_date(stamp):
    return time.strftime("%a %b %e %H:%M:%S UTC %Y", time.gmtime(stamp))


def proc_files(directory, names=None):
    """{name: text} of the /proc files in ``directory`` (a fixture, or one real host's files in the corpus)."""
    found = {}
    for name in sorted(os.listdir(directory)):
        if name != "README" and (names is None or name in names):
            with open(os.path.join(directory, name)) as handle:
                found[name] = handle.read()
    return found


def corpus_host(corpus, case="rhel8.0-4.18.0-80-sosreport.txt"):
    """The six /proc files of one real host (a RHEL 8.0 sosreport) from the shared corpus."""
    found = {}
    for name in ("buddyinfo", "zoneinfo", "pagetypeinfo", "meminfo", "slabinfo", "vmstat"):
        with open(os.path.join(corpus, name, case)) as handle:
            found[name] = handle.read()
    return found


def host_state(host, capture=CAPTURE, proc=None, running_min_free="90112", proc_sys_vm=True):
    """What one host holds at the capture, by host path or command: both capture layouts are built from it."""
    short = host.split(".")[0]
    return {
        "host": host,
        "capture": capture,
        "uname -a": "Linux %s %s #1 SMP Thu Nov 2 2023 x86_64 x86_64 x86_64 GNU/Linux" % (host, RELEASE),
        "sysctl -a": "kernel.pid_max = 4194304\nvm.lowmem_reserve_ratio = 256\t256\t32\t0\t0\n"
                     "vm.min_free_kbytes = %s\nvm.swappiness = 30\nvm.vfs_cache_pressure = 100\n" % running_min_free,
        "proc": dict(proc if proc is not None else proc_files(FRAGMENTED)),
        # Every vm file sysctl -a lists, as a live /proc/sys/vm holds them (or none: sos seldom copies them).
        "proc/sys/vm": {"min_free_kbytes": running_min_free + "\n", "swappiness": "30\n", "vfs_cache_pressure": "100\n",
                        "lowmem_reserve_ratio": "256\t256\t32\t0\t0\n"} if proc_sys_vm else {},
        "sysctl.conf": {
            "/etc/sysctl.conf": "# System default settings live in /usr/lib/sysctl.d/00-system.conf.\n",
            "/usr/lib/sysctl.d/50-default.conf": "# vendor defaults\n\nvm.swappiness = 60\nvm.min_free_kbytes = 45056\n",
            "/etc/sysctl.d/60-memfrag.conf": "vm.min_free_kbytes = 131072\n",
            "/etc/sysctl.d/70-app.conf": "vm.swappiness = 30\n",
            # RHEL and SLES link /etc/sysctl.conf into /etc/sysctl.d.
            "/etc/sysctl.d/99-sysctl.conf": "# System default settings live in /usr/lib/sysctl.d/00-system.conf.\n",
        },
        # Ten days before the capture (outside its 7-day window), then a day before it, and a program's spoof.
        "messages": "".join([
            "%s %s kernel: %s\n" % (_syslog_stamp(capture - 10 * 86400), short, XFS),
            "%s %s kernel: %s\n" % (_syslog_stamp(capture - 86400), short, XFS),
            "%s %s myapp[42]: kernel: %s\n" % (_syslog_stamp(capture - 3600), short, XFS),
        ]),
        # The same kernel events as journalctl --output=short-iso prints them.
        "journal": "".join([
            "%s %s kernel: %s\n" % (time.strftime("%Y-%m-%dT%H:%M:%S+0000", time.gmtime(capture - 10 * 86400)), short, XFS),
            "%s %s kernel: %s\n" % (time.strftime("%Y-%m-%dT%H:%M:%S+0000", time.gmtime(capture - 86400)), short, XFS),
            "%s %s myapp[42]: kernel: %s\n" % (time.strftime("%Y-%m-%dT%H:%M:%S+0000", time.gmtime(capture - 3600)), short, XFS),
        ]),
        "journal short": "".join([
            "%s %s kernel: %s\n" % (time.strftime("%b %d %H:%M:%S", time.localtime(capture - 10 * 86400)), short, XFS),
            "%s %s kernel: %s\n" % (time.strftime("%b %d %H:%M:%S", time.localtime(capture - 86400)), short, XFS),
            "%s %s myapp[42]: kernel: %s\n" % (time.strftime("%b %d %H:%M:%S", time.localtime(capture - 3600)), short, XFS),
        ]),
        "dmesg": "[    0.000000] Linux version %s\n[ 5.0] %s\n" % (RELEASE, XFS),
    }


def _write_tree(top, files, stamp):
    for name, text in files.items():
        path = os.path.join(top, *name.split("/"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as handle:
            handle.write(text)
        os.utime(path, (stamp, stamp))


def build_sos_tree(base, host, capture=CAPTURE, proc=None, running_min_free="90112", proc_sys_vm=True, state=None):
    """A sosreport directory as sos 4.x lays it out; every file's time is the capture's."""
    state = state or host_state(host, capture, proc, running_min_free, proc_sys_vm)
    capture = state["capture"]
    top = os.path.join(str(base), "sosreport-%s-2023-03-05-abcdefg" % state["host"].split(".")[0])
    files = {
        "sos_commands/host/hostname": state["host"] + "\n",
        "sos_commands/date/date": _utc_date(capture) + "\n",
        "sos_commands/date/date_--utc": _utc_date(capture) + "\n",
        "sos_commands/kernel/uname_-a": state["uname -a"] + "\n",
        "sos_commands/kernel/sysctl_-a": state["sysctl -a"],
        "sos_commands/kernel/dmesg": state["dmesg"],
        "sos_commands/kernel/dmesg_-T": "[Sat Mar  4 10:11:12 2023] %s\n" % XFS,
        # sos' logs plugin: the whole journal, this boot's and the last boot's (journalctl's short output),
        # holding the kernel lines /var/log/messages holds too: each event must count once.
        "sos_commands/logs/journalctl_--no-pager": state["journal short"],
        "sos_commands/logs/journalctl_--no-pager_--boot": "".join(state["journal short"].splitlines(True)[1:]),
        "sos_commands/logs/journalctl_--no-pager_--boot_-1": state["journal short"].splitlines(True)[0],
        "sos_commands/logs/journalctl_--disk-usage": "Archived and active journals take up 8.0M in the file system.\n",
        "proc/version": "Linux version %s (mockbuild@example) #1 SMP\n" % RELEASE,
        "var/log/messages": state["messages"],
        "var/log/cron": "not a kernel log\n",
        "etc/passwd": "root:x:0:0::/root:/bin/bash\n",
    }
    files.update(("proc/" + name, text) for name, text in state["proc"].items())
    files.update(("proc/sys/vm/" + name, text) for name, text in state["proc/sys/vm"].items())
    files.update((path[1:], text) for path, text in state["sysctl.conf"].items() if path != "/etc/sysctl.d/99-sysctl.conf")
    _write_tree(top, files, capture)
    # The links sos makes at the top, and the one RHEL ships in /etc/sysctl.d.
    os.symlink("sos_commands/host/hostname", os.path.join(top, "hostname"))
    os.symlink("sos_commands/kernel/uname_-a", os.path.join(top, "uname"))
    os.symlink("sos_commands/date/date", os.path.join(top, "date"))
    os.symlink("../sysctl.conf", os.path.join(top, "etc", "sysctl.d", "99-sysctl.conf"))
    return top


# supportutils' section headers (supportconfig.rc: _log_cmd, conf_files, log_files).
COMMAND = "#==[ Command ]======================================#\n"
CONF = "#==[ Configuration File ]===========================#\n"
LOG = "#==[ Log File ]=====================================#\n"


def _command(line, output):
    """log_cmd: the command with its full path, its output, a blank line."""
    return COMMAND + "# %s\n" % line + output + ("" if output.endswith("\n") or not output else "\n") + "\n"


def _conf(path, text):
    """conf_files: the file without its comment and blank lines, then two blank lines; or "File not found"."""
    if text is None:
        return CONF + "# %s - File not found\n\n" % path
    kept = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith(("#", ";", "//"))]
    return CONF + "# %s\n" % path + "".join(line + "\n" for line in kept) + "\n\n"


def _log(path, text):
    return LOG + "# %s\n" % path + text + "\n\n"


def build_supportconfig_tree(base, host=None, state=None, syslog=True):
    """A supportconfig directory (``scc_<host>_<yymmdd>_<hhmm>``) as supportutils' supportconfig writes it, from
    the same host state as build_sos_tree. ``syslog=False`` is a host without /var/log/messages (SLES 15 and
    later): messages.txt then holds journalctl output."""
    state = state or host_state(host)
    capture = state["capture"]
    short = state["host"].split(".")[0]
    top = os.path.join(str(base), "scc_%s_%s" % (short, time.strftime("%y%m%d_%H%M", time.gmtime(capture))))
    proc = state["proc"]
    files = {
        "supportconfig.txt": "Script Version: 3.2.8\nLibrary Version: 3.2.8\nScript Date: 2024 06 10\n",
        "basic-environment.txt": _command("/usr/bin/date", _utc_date(capture)) + _command("/usr/bin/uname -a", state["uname -a"])
        + _conf("/etc/os-release", 'NAME="SLES"\nVERSION="15-SP5"\n'),
        "memory.txt": _command("/usr/bin/vmstat 1 4", "procs -----------memory----------\n r  b   swpd   free\n")
        + _command("/usr/bin/free -k", "               total        used        free\n")
        + "".join(_conf("/proc/" + name, proc.get(name)) for name in ("meminfo", "pagetypeinfo", "vmstat"))
        + _command("/usr/sbin/sysctl -a 2>/dev/null | grep ^vm",
                   "".join(line + "\n" for line in state["sysctl -a"].splitlines() if line.startswith("vm")))
        + "".join(_conf("/proc/" + name, proc.get(name)) for name in ("buddyinfo", "slabinfo", "zoneinfo"))
        + _conf("/sys/kernel/mm/transparent_hugepage/enabled", "always [madvise] never\n"),
        "proc.txt": _conf("/proc/mounts", "proc /proc proc rw 0 0\n") + _conf("/proc/zoneinfo", proc.get("zoneinfo"))
        + _conf("/proc/sys/kernel/osrelease", RELEASE + "\n")
        + "".join(_conf("/proc/sys/vm/" + name, text) for name, text in sorted(state["proc/sys/vm"].items())),
        "env.txt": _command("/usr/bin/systemctl status systemd-sysctl.service", "  Active: active (exited)\n")
        + _conf("/etc/sysctl.conf", state["sysctl.conf"]["/etc/sysctl.conf"])
        + _conf("/boot/sysctl.conf-*", None) + _conf("/lib/sysctl.d/*.conf", None)
        + "".join(_conf(path, text) for path, text in sorted(state["sysctl.conf"].items())
                  if path.startswith("/usr/lib/sysctl.d/"))
        + _conf("/usr/local/lib/sysctl.d/*.conf", None)
        + "".join(_conf(path, text) for path, text in sorted(state["sysctl.conf"].items())
                  if path.startswith("/etc/sysctl.d/"))
        + _conf("/run/sysctl.d/*.conf", None)
        + _command("/usr/sbin/sysctl -a", state["sysctl -a"]),
        "messages.txt": (_log("/var/log/messages", state["messages"]) if syslog else
                         _command("/usr/bin/journalctl --no-pager --output=short-iso --lines 50000", state["journal"])),
        # boot.txt's journal repeats the kernel events of messages.txt: they must not count twice.
        "boot.txt": _command("/usr/bin/uname -a", state["uname -a"])
        + _command("/usr/bin/journalctl --boot=0 --no-pager --disk-usage", "Archived and active journals take up 8.0M.\n")
        + _command("/usr/bin/journalctl --boot=0 --no-pager --output=short-iso | tail -n 50000", state["journal"])
        + _command("/usr/bin/dmesg -T", "[Sat Mar  4 10:11:12 2023] %s\n" % XFS),
        "rpm.txt": "NAME  VERSION\nkernel-default  5.14.21\n",
    }
    _write_tree(top, files, capture)
    return top


def pack(tree, dest, mode):
    """``tree`` as an archive at ``dest`` (mode w:xz, w:gz, w:bz2, w), or the directory itself (mode None)."""
    if mode is None:
        return tree
    with tarfile.open(dest, mode) as tar:
        tar.add(tree, arcname=os.path.basename(tree))
    return dest


def _verdict(run, host):
    facts = run.task_result(JUDGE, host)["ansible_facts"]
    return facts


def _same_judgement(left, right, left_host, right_host):
    """Severity, counts, finding codes and messages, and the verdict lines with the host names put aside."""
    assert left["memfrag_verdict"]["severity"] == right["memfrag_verdict"]["severity"]
    assert left["memfrag_verdict"]["counts"] == right["memfrag_verdict"]["counts"]
    assert [(f["code"], f["message"]) for f in left["memfrag_findings"]] == [
        (f["code"], f["message"]) for f in right["memfrag_findings"]]
    assert [line.replace(left_host, "HOST") for line in left["memfrag_verdict"]["lines"]] == [
        line.replace(right_host, "HOST") for line in right["memfrag_verdict"]["lines"]]
    assert left["memfrag_log_counts"] == right["memfrag_log_counts"]


@pytest.fixture
def sos_web1(tmp_path):
    return build_sos_tree(tmp_path / "trees", "web1.example.com")


def test_archive_verdict_equals_live_tree_verdict_in_every_format(run_playbook, tmp_path, sos_web1):
    work = tmp_path / "work"
    work.mkdir()
    paths = [pack(sos_web1, str(tmp_path / ("web1" + ext)), mode)
             for ext, mode in ((".tar.xz", "w:xz"), (".tar.gz", "w:gz"), (".tar.bz2", "w:bz2"), (".tar", "w"),
                               ("", None))]
    run = run_playbook(PLAYBOOK, extra_vars={"archive_paths": paths, "archive_work_dir": str(work),
                                             "report_output_dir": str(tmp_path / "report")})
    assert run.rc == 0, run.stdout[-3000:] + run.stderr[-3000:]
    extracted = run.task_result("Take what a diagnosis needs out of each archive")
    captures = extracted["captures"]
    assert [c["host"] for c in captures] == ["web1.example.com", "web1.example.com-2", "web1.example.com-3",
                                             "web1.example.com-4", "web1.example.com-5"]
    assert [c["format"] for c in captures] == ["tar"] * 4 + ["directory"]
    first = captures[0]
    assert first["layout"] == "sos" and first["kernel_release"] == RELEASE
    assert first["capture_time"] == "2023-03-05T10:11:12Z" and first["since"] == "2023-02-26T10:11:12Z"
    # Only the needed members: not etc/passwd, not var/log/cron; journalctl_--disk-usage is no log; dmesg is left
    # out when syslog text exists (its uptime stamps would count the same event twice).
    assert first["log_files"] == ["var/log/messages", "sos_commands/logs/journalctl_--no-pager",
                                  "sos_commands/logs/journalctl_--no-pager_--boot",
                                  "sos_commands/logs/journalctl_--no-pager_--boot_-1"]
    assert not os.path.exists(os.path.join(first["root"], "etc", "passwd"))
    # The work dir is gone after the run.
    assert os.listdir(str(work)) == []

    # The same files judged by the diagnose playbook under diagnose_proc_root, the log scanned with the same window.
    reference = run_playbook(DIAGNOSE, extra_vars={
        "diagnose_proc_root": os.path.join(sos_web1, "proc"), "diagnose_scan_logs": True,
        "diagnose_log_sources": ["files"], "diagnose_log_paths": [os.path.join(sos_web1, "var", "log", "messages")],
        "diagnose_log_window": first["since"], "diagnose_log_kernel_release": RELEASE})
    assert reference.rc == 0, reference.stdout[-3000:]
    expected = _verdict(reference, "localhost")
    assert expected["memfrag_verdict"]["severity"] == "critical"
    for capture in captures:
        _same_judgement(_verdict(run, capture["host"]), expected, capture["host"], "localhost")
    # The event a day before the capture counts; the one ten days before and the program's spoof do not. A window
    # anchored at today would hold neither.
    scan = run.task_result(JUDGE, "web1.example.com")["kernel_log_scan"]
    assert scan["counts"]["xfs_alloc_deadlock"] == 1
    assert scan["last_seen"]["xfs_alloc_deadlock"].startswith("2023-03-04")
    # The old event in messages, the whole journal and the last boot's; the day-old one twice more in the journals.
    assert scan["ignored"]["before_since"] == 3 and scan["ignored"]["duplicates"] == 2
    # The log event is part of the verdict (the scan ran on the capture's file, in the capture's window).
    assert "kernel log" in " ".join(expected["memfrag_verdict"]["lines"])


def test_report_of_three_archives_has_a_row_per_captured_host_and_sysctl_precedence(run_playbook, tmp_path):
    hosts = ["web1.example.com", "db2.example.com", "app3"]
    trees = [build_sos_tree(tmp_path / ("t%d" % n), host) for n, host in enumerate(hosts)]
    paths = [pack(trees[0], str(tmp_path / "a0.tar.xz"), "w:xz"), pack(trees[1], str(tmp_path / "a1.tar.gz"), "w:gz"),
             trees[2]]
    report = tmp_path / "report"
    run = run_playbook(PLAYBOOK, extra_vars={"archive_paths": paths, "archive_work_dir": str(tmp_path),
                                             "report_output_dir": str(report)})
    assert run.rc == 0, run.stdout[-3000:]
    with open(str(report / "report.json")) as handle:
        data = json.load(handle)
    assert sorted(row["host"] for row in data["hosts"]) == sorted(hosts)
    assert all(row["severity"] == "critical" for row in data["hosts"])
    assert sorted(os.listdir(str(report / "metrics"))) == sorted(h + ".prom" for h in hosts)
    with open(str(report / "index.html")) as handle:
        html = handle.read()
    assert all(host in html for host in hosts)
    assert not [name for name in os.listdir(str(tmp_path)) if name.startswith("memfrag-archive-")]

    # The sysctl.d precedence model over the first capture's own tree, read only.
    sysctl = run.task_result("Take what a diagnosis needs out of each archive")["captures"][0]["sysctl"]
    keys = sysctl["keys"]
    # 60-memfrag.conf sorts after 50-default.conf: it wins; the running 90112 is not what boot applies.
    assert keys["vm.min_free_kbytes"]["systemd"]["file"] == "/etc/sysctl.d/60-memfrag.conf"
    assert keys["vm.min_free_kbytes"]["procps"]["file"] == "/etc/sysctl.d/60-memfrag.conf"
    assert keys["vm.min_free_kbytes"]["running"] == "90112"
    assert keys["vm.min_free_kbytes"]["running_matches_boot"] is False
    assert keys["vm.swappiness"]["systemd"]["file"] == "/etc/sysctl.d/70-app.conf"
    assert keys["vm.swappiness"]["running_matches_boot"] is True
    assert sysctl["running_differs"] == [
        "vm.min_free_kbytes is 90112 in the capture, but /etc/sysctl.d/60-memfrag.conf line 1 sets 131072 at boot"]
    shown = run.task_result("Show what each archive holds, and its sysctl boot configuration against its running values")
    assert any(line.startswith("vm.min_free_kbytes: boot sets 131072 from /etc/sysctl.d/60-memfrag.conf")
               and line.endswith("running 90112: different") for line in shown["msg"]["web1.example.com"])
    # Read only: the directory given as a capture is untouched.
    with open(os.path.join(trees[2], "etc", "sysctl.d", "60-memfrag.conf")) as handle:
        assert handle.read() == "vm.min_free_kbytes = 131072\n"


def _hostile(tmp_path):
    """One archive per hostile member kind, each also holding a good proc/buddyinfo and proc/meminfo."""
    outside = tmp_path / "outside"
    outside.mkdir()
    with open(os.path.join(FRAGMENTED, "buddyinfo"), "rb") as handle:
        buddyinfo = handle.read()
    with open(os.path.join(FRAGMENTED, "meminfo"), "rb") as handle:
        meminfo = handle.read()

    def archive(name, members, mode="w:gz"):
        path = str(tmp_path / name)
        with tarfile.open(path, mode) as tar:
            for info, data in [(tarfile.TarInfo("sosreport-h/proc/buddyinfo"), buddyinfo),
                               (tarfile.TarInfo("sosreport-h/proc/meminfo"), meminfo),
                               (tarfile.TarInfo("sosreport-h/sos_commands/host/hostname"), b"h%s\n" % name[:3].encode())] + members:
                info.mtime = CAPTURE
                if data is not None:
                    info.size = len(data)
                tar.addfile(info, io.BytesIO(data) if data is not None else None)
        return path

    def link(name, kind, target):
        info = tarfile.TarInfo(name)
        info.type = kind
        info.linkname = target
        return info, None

    def special(name, kind):
        info = tarfile.TarInfo(name)
        info.type = kind
        info.devmajor, info.devminor = 1, 3
        return info, None

    absolute = str(outside / "absolute")
    cases = {
        "abs.tar.gz": [(tarfile.TarInfo(absolute), b"x\n")],
        "dotdot.tar.gz": [(tarfile.TarInfo("sosreport-h/proc/../../../outside/dotdot"), b"x\n")],
        "symlink.tar.gz": [link("sosreport-h/proc/zoneinfo", tarfile.SYMTYPE, "/etc/shadow"),
                           link("sosreport-h/proc/slabinfo", tarfile.SYMTYPE, "../../../outside/slabinfo")],
        "hardlink.tar.gz": [link("sosreport-h/proc/slabinfo", tarfile.LNKTYPE, "../outside/slabinfo"),
                            link("sosreport-h/proc/vmstat", tarfile.LNKTYPE, "/etc/passwd")],
        "device.tar.gz": [special("sosreport-h/proc/pagetypeinfo", tarfile.CHRTYPE),
                          special("sosreport-h/var/log/messages", tarfile.BLKTYPE)],
        "fifo.tar.gz": [special("sosreport-h/var/log/syslog", tarfile.FIFOTYPE)],
    }
    paths = dict((name, archive(name, members)) for name, members in cases.items())
    paths["bomb.tar.gz"] = compression_bomb(str(tmp_path / "bomb.tar.gz"), ("sosreport-h/proc/buddyinfo", buddyinfo),
                                            "sosreport-h/var/log/messages")
    return outside, paths


def test_hostile_archives_are_refused_or_skipped_and_nothing_leaves_the_work_dir(run_playbook, tmp_path):
    outside, paths = _hostile(tmp_path)
    # A directory capture with a symlink out and a FIFO (reading a FIFO would hang).
    tree = tmp_path / "dir" / "sosreport-d"
    os.makedirs(str(tree / "proc"))
    for name in ("buddyinfo", "meminfo"):
        with open(os.path.join(FRAGMENTED, name)) as src, open(str(tree / "proc" / name), "w") as dst:
            dst.write(src.read())
    os.mkdir(str(tree / "sos_commands"))
    os.symlink("/etc/passwd", str(tree / "proc" / "zoneinfo"))
    os.mkfifo(str(tree / "proc" / "slabinfo"))
    work = tmp_path / "work"
    work.mkdir()
    order = sorted(paths)
    run = run_playbook(PLAYBOOK, extra_vars={"archive_paths": [paths[name] for name in order] + [str(tree)],
                                             "archive_work_dir": str(work), "report_output_dir": str(tmp_path / "report")})
    # The bomb is refused as a whole: the run says so and fails, after the other archives were diagnosed.
    assert run.rc != 0
    extracted = run.task_result("Take what a diagnosis needs out of each archive")
    refused = extracted["refused"]
    assert [entry["source"] for entry in refused] == [paths["bomb.tar.gz"]]
    assert "compression bomb" in refused[0]["msg"]
    final = run.task_result("Fail when an archive was refused or a capture could not be diagnosed")
    assert "compression bomb" in " ".join(final["msg"])
    notes = dict((os.path.basename(c["source"]), " | ".join(c["notes"])) for c in extracted["captures"])
    assert "refused member %s: absolute name" % (outside / "absolute") in notes["abs.tar.gz"]
    assert "refused member sosreport-h/proc/../../../outside/dotdot: name has a '..' component" in notes["dotdot.tar.gz"]
    assert "refused sosreport-h/proc/zoneinfo: symlink to an absolute path /etc/shadow points out of the archive" in notes["symlink.tar.gz"]
    assert "refused sosreport-h/proc/slabinfo: symlink to ../../../outside/slabinfo points out of the archive" in notes["symlink.tar.gz"]
    assert "refused sosreport-h/proc/slabinfo: hardlink to ../outside/slabinfo points out of the archive" in notes["hardlink.tar.gz"]
    assert "refused sosreport-h/proc/vmstat: hardlink to /etc/passwd points out of the archive" in notes["hardlink.tar.gz"]
    assert "skipped sosreport-h/proc/pagetypeinfo: a device member is never extracted" in notes["device.tar.gz"]
    assert "skipped sosreport-h/var/log/syslog: a fifo member is never extracted" in notes["fifo.tar.gz"]
    assert "refused proc/zoneinfo: symlink to an absolute path /etc/passwd" in notes["sosreport-d"]
    assert "skipped proc/slabinfo: a fifo member is never extracted" in notes["sosreport-d"]
    # Every other capture was still judged from its good buddyinfo; nothing was written outside the work dir,
    # and the work dir is gone.
    assert len(extracted["captures"]) == 7
    for capture in extracted["captures"]:
        assert _verdict(run, capture["host"])["memfrag_verdict"]["severity"] == "critical"
    assert os.listdir(str(outside)) == []
    assert os.listdir(str(work)) == []


def test_member_size_cap_and_work_dir_removed_when_a_play_fails(run_playbook, tmp_path, sos_web1):
    work = tmp_path / "work"
    work.mkdir()
    # fail_on=critical makes the diagnosis of the capture fail: the report and the clean-up still run.
    run = run_playbook(PLAYBOOK, extra_vars={"archive_paths": [pack(sos_web1, str(tmp_path / "w.tar.xz"), "w:xz")],
                                             "archive_work_dir": str(work), "diagnose_fail_on": "critical",
                                             "report_output_dir": str(tmp_path / "report")})
    assert run.rc != 0
    final = run.task_result("Fail when an archive was refused or a capture could not be diagnosed")
    assert final["msg"][0].startswith("CRITICAL: ")
    assert os.listdir(str(work)) == []
    assert os.path.exists(str(tmp_path / "report" / "report.json"))


def test_capture_extract_limits_and_removal(run_playbook, tmp_path, sos_web1):
    archive = pack(sos_web1, str(tmp_path / "w.tar.bz2"), "w:bz2")
    run = run_playbook("""
- hosts: localhost
  gather_facts: false
  tasks:
    - name: extract with a small member cap
      memfrag.linux.capture_extract:
        archive_paths: ["{{ archive }}", "{{ not_an_archive }}"]
        work_dir: "{{ work }}"
        max_member_bytes: 1000
      register: extracted
    - name: remove a directory it did not make
      memfrag.linux.capture_extract:
        state: absent
        run_dir: "{{ work }}"
      ignore_errors: true
    - name: remove
      memfrag.linux.capture_extract:
        state: absent
        run_dir: "{{ extracted.run_dir }}"
""", extra_vars={"archive": archive, "not_an_archive": os.path.join(FRAGMENTED, "meminfo"), "work": str(tmp_path)})
    assert run.rc == 0, run.stdout[-3000:]
    extracted = run.task_result("extract with a small member cap")
    capture = extracted["captures"][0]
    # buddyinfo is small; meminfo is over 1000 bytes and skipped, with a message.
    assert capture["has_buddyinfo"]
    assert any(note.startswith("skipped sosreport-web1-2023-03-05-abcdefg/proc/meminfo: ") and "over the 1000-byte limit" in note
               for note in capture["notes"])
    assert "is not a readable tar archive" in extracted["refused"][0]["msg"]
    assert "was not made by capture_extract" in run.task_result("remove a directory it did not make")["msg"]
    assert run.task_result("remove")["changed"]
    assert not os.path.exists(extracted["run_dir"])
    assert os.path.exists(archive)


def _facts_without_host(facts, host):
    """The judged facts as JSON text with the host's name put aside (verdict lines name it)."""
    return json.loads(json.dumps(facts).replace(host, "HOST"))


def test_supportconfig_gives_the_facts_and_verdict_of_a_sosreport_of_the_same_host(run_playbook, tmp_path):
    """The same host state captured by sos and by supportconfig (both real layouts) is judged alike: the
    fragmented fixture with syslog (messages.txt) and with journal text only (SLES 15: no /var/log/messages),
    and, when the shared corpus is there, the six /proc files of one real RHEL 8 host, whose supportconfig copies
    lose slabinfo's ``# name`` header and pagetypeinfo's blank lines as conf_files drops them."""
    trees = tmp_path / "trees"
    pairs = []  # (sos archive, supportconfig archive)
    # sos seldom copies proc/sys/vm: the running values must come from sysctl -a.
    web = host_state("web1.example.com", proc_sys_vm=False)
    pairs.append((pack(build_sos_tree(trees / "a", None, state=web), str(tmp_path / "sos-web1.tar.xz"), "w:xz"),
                  pack(build_supportconfig_tree(trees / "b", state=web), str(tmp_path / "scc_web1_230305_1011.txz"), "w:xz")))
    sles = host_state("sles15.example.com")
    pairs.append((pack(build_sos_tree(trees / "c", None, state=sles), str(tmp_path / "sos-sles15.tar.gz"), "w:gz"),
                  pack(build_supportconfig_tree(trees / "d", state=sles, syslog=False),
                       str(tmp_path / "scc_sles15_230305_1011.tbz"), "w:bz2")))
    corpus = corpus_dir()
    if corpus is not None:
        real = host_state("rhel8.example.com", proc=corpus_host(corpus))
        pairs.append((build_sos_tree(trees / "e", None, state=real), build_supportconfig_tree(trees / "f", state=real)))
    paths = [path for pair in pairs for path in pair]
    work = tmp_path / "work"
    work.mkdir()
    report = tmp_path / "report"
    run = run_playbook(PLAYBOOK, extra_vars={"archive_paths": paths, "archive_work_dir": str(work),
                                             "report_output_dir": str(report)})
    assert run.rc == 0, run.stdout[-3000:] + run.stderr[-3000:]
    captures = run.task_result("Take what a diagnosis needs out of each archive")["captures"]
    assert len(captures) == len(paths) == 2 * len(pairs)
    by_source = dict((c["source"], c) for c in captures)
    hosts = []
    for sos_path, scc_path in pairs:
        sos, scc = by_source[sos_path], by_source[scc_path]
        assert (sos["layout"], scc["layout"]) == ("sos", "supportconfig")
        # Named by the captured host, not by the archive: -2 for the second archive of the same host.
        assert scc["host"] == sos["host"] + "-2"
        hosts.append(sos["host"])
        for field in ("kernel_release", "capture_time", "since", "has_buddyinfo"):
            assert scc[field] == sos[field], field
        assert scc["capture_time"] == "2023-03-05T10:11:12Z"
        assert scc["capture_time_source"] == "basic-environment.txt: /usr/bin/date"
        # The sysctl precedence model over the supportconfig's env.txt copy of the tree: same winners, and the
        # running values from its sysctl -a.
        assert scc["sysctl"]["keys"] == sos["sysctl"]["keys"]
        assert scc["sysctl"]["files"] == sos["sysctl"]["files"] and scc["sysctl"]["masked"] == sos["sysctl"]["masked"] == []
        assert scc["sysctl"]["keys"]["vm.min_free_kbytes"]["running"] == "90112"
        assert scc["sysctl"]["running_differs"] == sos["sysctl"]["running_differs"] != []
        # Facts, findings, verdict, log counts: all the same.
        left = _facts_without_host(_verdict(run, sos["host"]), sos["host"])
        right = _facts_without_host(_verdict(run, scc["host"]), scc["host"])
        assert left == right
        # boot.txt repeats the kernel events in its journal: counted once, from messages.txt.
        scan = run.task_result(JUDGE, scc["host"])["kernel_log_scan"]
        assert scan["counts"]["xfs_alloc_deadlock"] == 1
    web_sos, web_scc = by_source[pairs[0][0]], by_source[pairs[0][1]]
    assert web_sos["sysctl"]["running_source"] == "sysctl -a"
    # Without proc/sys/vm in the sosreport, the facts take the vm tunables from its sysctl -a, as a live host's.
    tunables = _verdict(run, web_sos["host"])["memfrag_buddyinfo"]["tunables"]
    assert tunables["min_free_kbytes"] == 90112 and tunables["vfs_cache_pressure"] == 100
    assert web_scc["log_files"] == ["var/log/messages"]
    sles_scc = by_source[pairs[1][1]]
    assert sles_scc["log_files"] == ["sos_commands/logs/journalctl_--no-pager"]
    assert sles_scc["notes"] == ["another archive has the host name sles15.example.com: this one is sles15.example.com-2"]
    if corpus is not None:
        # The real host's files as a live /proc would show them (with sys/kernel/osrelease), judged by the diagnose
        # playbook under proc_root with the same log and window: the same facts as from either archive.
        live = tmp_path / "live"
        files = dict(("proc/" + name, text) for name, text in real["proc"].items())
        # A live host has every vm file sysctl -a lists.
        files.update(("proc/sys/vm/" + key.strip()[3:], value.strip() + "\n") for key, _eq, value in (
            line.partition("=") for line in real["sysctl -a"].splitlines()) if key.startswith("vm."))
        files["proc/sys/kernel/osrelease"] = RELEASE + "\n"
        files["var/log/messages"] = real["messages"]
        _write_tree(str(live), files, CAPTURE)
        reference = run_playbook(DIAGNOSE, extra_vars={
            "diagnose_proc_root": str(live / "proc"), "diagnose_scan_logs": True, "diagnose_log_sources": ["files"],
            "diagnose_log_paths": [str(live / "var" / "log" / "messages")],
            "diagnose_log_window": by_source[pairs[2][0]]["since"], "diagnose_log_kernel_release": RELEASE})
        assert reference.rc == 0, reference.stdout[-3000:]
        expected = _facts_without_host(_verdict(reference, "localhost"), "localhost")
        assert expected["memfrag_buddyinfo"]["kernel_release"] == RELEASE
        for path in pairs[2]:
            host = by_source[path]["host"]
            assert _facts_without_host(_verdict(run, host), host) == expected
    with open(str(report / "report.json")) as handle:
        rows = json.load(handle)["hosts"]
    assert sorted(row["host"] for row in rows) == sorted(hosts + [h + "-2" for h in hosts])
    assert os.listdir(str(work)) == []


def _supportconfig_tar(path, top, members, mode="w:gz"):
    """A supportconfig tarball from (TarInfo or name, bytes or None) pairs under ``top``."""
    with tarfile.open(path, mode) as tar:
        for info, data in members:
            if isinstance(info, str):
                info = tarfile.TarInfo(top + "/" + info)
            info.mtime = CAPTURE
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def test_hostile_supportconfig_archives_are_refused_or_skipped(run_playbook, tmp_path):
    """Links out, devices, absolute and ``..`` names, sections that name paths they must not, a section a
    file may not supply (a fake /proc/buddyinfo in messages.txt), a hostile host name, and a compression bomb."""
    outside = tmp_path / "outside"
    outside.mkdir()
    state = host_state("good.example.com")
    tree = build_supportconfig_tree(tmp_path / "tree", state=state)
    top = os.path.basename(tree)

    def read(name):
        with open(os.path.join(tree, name), "rb") as handle:
            return handle.read()

    fake = b"Node 0, zone   Normal  99999 99999 99999 99999 99999 99999 99999 99999 99999 99999 99999\n"
    messages = (read("messages.txt") + CONF.encode() + b"# /proc/buddyinfo\n" + fake
                + CONF.encode() + b"# /etc/sysctl.d/00-evil.conf\nvm.min_free_kbytes = 1\n")
    memory = (read("memory.txt") + CONF.encode() + b"# /proc/../../../outside/x\nx\n" + CONF.encode()
              + b"# /proc/sys/vm/../../../../outside/y\ny\n" + LOG.encode() + b"# /var/log/../../outside/z\nz\n")
    basic = read("basic-environment.txt").replace(b"Linux good.example.com ", b"Linux ../../evil;rm$(id) ")

    def link(name, kind, target):
        info = tarfile.TarInfo(top + "/" + name)
        info.type = kind
        info.linkname = target
        return info, None

    def special(name, kind):
        info = tarfile.TarInfo(top + "/" + name)
        info.type = kind
        info.devmajor, info.devminor = 1, 3
        return info, None

    hostile = _supportconfig_tar(str(tmp_path / "scc_evil_230305_1011.tgz"), top, [
        ("basic-environment.txt", basic), ("supportconfig.txt", read("supportconfig.txt")),
        ("messages.txt", messages), ("memory.txt", memory),
        link("env.txt", tarfile.SYMTYPE, "/etc/shadow"),
        link("proc.txt", tarfile.LNKTYPE, "../outside/proc.txt"),
        special("boot.txt", tarfile.CHRTYPE),
        (tarfile.TarInfo(str(outside / "absolute.txt")), b"x\n"),
        (tarfile.TarInfo(top + "/../outside/messages-20230301.txt"), b"x\n"),
    ])
    bomb = compression_bomb(str(tmp_path / "scc_bomb_230305_1011.tgz"),
                            ("scc_bomb_230305_1011/basic-environment.txt", basic), "scc_bomb_230305_1011/messages.txt")
    work = tmp_path / "work"
    work.mkdir()
    run = run_playbook(PLAYBOOK, extra_vars={"archive_paths": [hostile, bomb], "archive_work_dir": str(work),
                                             "report_output_dir": str(tmp_path / "report")})
    assert run.rc != 0  # the bomb is refused: the run says so at the end
    extracted = run.task_result("Take what a diagnosis needs out of each archive")
    assert [entry["source"] for entry in extracted["refused"]] == [bomb]
    assert "compression bomb" in extracted["refused"][0]["msg"]
    capture, = extracted["captures"]
    assert capture["layout"] == "supportconfig"
    notes = " | ".join(capture["notes"])
    assert "refused member %s: absolute name" % (outside / "absolute.txt") in notes
    assert "refused member %s/../outside/messages-20230301.txt: name has a '..' component" % top in notes
    assert "refused %s/env.txt: symlink to an absolute path /etc/shadow points out of the archive" % top in notes
    assert "refused %s/proc.txt: hardlink to ../outside/proc.txt points out of the archive" % top in notes
    assert "skipped %s/boot.txt: a device member is never extracted" % top in notes
    assert "ignored /proc/buddyinfo in messages.txt: that file does not hold it" in notes
    assert "ignored /etc/sysctl.d/00-evil.conf in messages.txt: that file does not hold it" in notes
    # The host name is made safe; the buddyinfo judged is memory.txt's, not the fake; no evil sysctl file.
    assert capture["host"] == "evil_rm__id"
    facts = _verdict(run, capture["host"])
    zones = facts["memfrag_buddyinfo"]["zones"]
    assert [zone["free_blocks"] for zone in zones] == [
        [int(n) for n in line.split()[4:]] for line in state["proc"]["buddyinfo"].splitlines()]
    assert facts["memfrag_verdict"]["severity"] == "critical"
    assert capture["sysctl"]["keys"] == {}  # env.txt was refused: no sysctl tree at all
    assert os.listdir(str(outside)) == []
    assert os.listdir(str(work)) == []


def test_check_mode_reads_headers_and_writes_nothing(run_playbook, tmp_path, sos_web1):
    """--check: every archive's headers are read and checked, what would be extracted is listed, and nothing is
    written: no run directory, no extracted file, no report."""
    state = host_state("sles.example.com")
    scc = pack(build_supportconfig_tree(tmp_path / "t", state=state), str(tmp_path / "scc_sles_230305_1011.txz"), "w:xz")
    sos = pack(sos_web1, str(tmp_path / "sosreport-web1.tar.gz"), "w:gz")
    _outside, hostile = _hostile(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    report = tmp_path / "report"
    run = run_playbook(PLAYBOOK, check=True, extra_vars={
        # A relative path is the operator's, from where ansible-playbook runs.
        "archive_paths": [os.path.relpath(sos), scc, hostile["symlink.tar.gz"], hostile["bomb.tar.gz"]],
        "archive_work_dir": str(work), "report_output_dir": str(report)})
    assert run.rc != 0  # the bomb is refused in check mode too
    extracted = run.task_result("Take what a diagnosis needs out of each archive")
    assert extracted["run_dir"] is None
    assert [entry["source"] for entry in extracted["refused"]] == [hostile["bomb.tar.gz"]]
    by_name = dict((os.path.basename(c["source"]), c) for c in extracted["captures"])
    assert extracted["captures"][0]["source"] == os.path.realpath(sos)
    assert by_name["sosreport-web1.tar.gz"]["layout"] == "sos"
    assert "proc/buddyinfo" in by_name["sosreport-web1.tar.gz"]["would_extract"]
    assert "etc/passwd" not in by_name["sosreport-web1.tar.gz"]["would_extract"]
    assert by_name["scc_sles_230305_1011.txz"]["layout"] == "supportconfig"
    assert by_name["scc_sles_230305_1011.txz"]["host"] == "sles"
    assert by_name["scc_sles_230305_1011.txz"]["would_extract"] == [
        "basic-environment.txt", "boot.txt", "env.txt", "memory.txt", "messages.txt", "proc.txt"]
    assert any("symlink to an absolute path /etc/shadow" in note for note in by_name["symlink.tar.gz"]["notes"])
    # Nothing diagnosed, nothing written, nothing removed (there is nothing to remove).
    ran = [(task["task"]["name"], result) for play in run.data["plays"] for task in play["tasks"]
           for result in task["hosts"].values()]
    assert not [name for name, _result in ran if name.endswith(JUDGE)]
    assert [result.get("skipped") for name, result in ran if name == "Remove the run's directory"] == [True]
    assert os.listdir(str(work)) == []
    assert not os.path.exists(str(report))


def test_extra_vars_that_would_read_the_controller_are_refused(run_playbook, tmp_path, sos_web1):
    """-e beats the host variables the playbook sets per capture: the XFS file scan or the ring buffer would
    read this controller, so the capture is not diagnosed and the run says why."""
    work = tmp_path / "work"
    work.mkdir()
    run = run_playbook(PLAYBOOK, extra_vars={"archive_paths": [sos_web1], "archive_work_dir": str(work),
                                             "report_output_dir": str(tmp_path / "report"),
                                             "diagnose_xfs_scan": "auto", "diagnose_log_sources": ["kmsg", "files"]})
    assert run.rc != 0
    final = run.task_result("Fail when an archive was refused or a capture could not be diagnosed")
    assert "would read this controller" in " ".join(final["msg"])
    assert not run.task_results(JUDGE, "web1.example.com")
    assert os.listdir(str(work)) == []
