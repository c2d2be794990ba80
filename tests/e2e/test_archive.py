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

from conftest import REPO_ROOT

PLAYBOOK = os.path.join(REPO_ROOT, "playbooks", "archive.yml")
DIAGNOSE = os.path.join(REPO_ROOT, "playbooks", "diagnose.yml")
JUDGE = "Gather memory facts, scan kernel logs and judge the host"
FRAGMENTED = os.path.join(REPO_ROOT, "tests", "fixtures", "proc", "diagnose-fragmented")
# 2023-03-05 10:11:12 UTC: in the past, in another year than today.
CAPTURE = 1678011072
XFS = "XFS: possible memory allocation deadlock in kmem_alloc (mode:0x250)"
RELEASE = "4.18.0-513.el8.x86_64"


def _syslog_stamp(stamp):
    return time.strftime("%b %e %H:%M:%S", time.localtime(stamp))


def build_sos_tree(base, host, capture=CAPTURE, proc=FRAGMENTED, running_min_free="90112"):
    """A sosreport directory as sos 4.x lays it out; every file's time is the capture's."""
    top = os.path.join(str(base), "sosreport-%s-2023-03-05-abcdefg" % host.split(".")[0])
    files = {
        "sos_commands/host/hostname": host + "\n",
        "sos_commands/date/date": time.strftime("%a %b %e %H:%M:%S UTC %Y", time.gmtime(capture)) + "\n",
        "sos_commands/date/date_--utc": time.strftime("%a %b %e %H:%M:%S UTC %Y", time.gmtime(capture)) + "\n",
        "sos_commands/kernel/uname_-a": "Linux %s %s #1 SMP Thu Nov 2 2023 x86_64 x86_64 x86_64 GNU/Linux\n" % (host, RELEASE),
        "sos_commands/kernel/sysctl_-a": "kernel.pid_max = 4194304\nvm.min_free_kbytes = %s\nvm.swappiness = 30\n"
                                         "vm.vfs_cache_pressure = 100\n" % running_min_free,
        "sos_commands/kernel/dmesg": "[    0.000000] Linux version %s\n[ 5.0] %s\n" % (RELEASE, XFS),
        "sos_commands/logs/journalctl_--disk-usage": "Archived and active journals take up 8.0M in the file system.\n",
        "proc/version": "Linux version %s (mockbuild@example) #1 SMP\n" % RELEASE,
        "proc/sys/vm/min_free_kbytes": running_min_free + "\n",
        "etc/sysctl.conf": "# System default settings live in /usr/lib/sysctl.d/00-system.conf.\n",
        "usr/lib/sysctl.d/50-default.conf": "vm.swappiness = 60\nvm.min_free_kbytes = 45056\n",
        "etc/sysctl.d/60-memfrag.conf": "vm.min_free_kbytes = 131072\n",
        "etc/sysctl.d/70-app.conf": "vm.swappiness = 30\n",
        # Ten days before the capture (outside its 7-day window), then a day before it, and a program's spoof.
        "var/log/messages": "".join([
            "%s %s kernel: %s\n" % (_syslog_stamp(capture - 10 * 86400), host.split(".")[0], XFS),
            "%s %s kernel: %s\n" % (_syslog_stamp(capture - 86400), host.split(".")[0], XFS),
            "%s %s myapp[42]: kernel: %s\n" % (_syslog_stamp(capture - 3600), host.split(".")[0], XFS),
        ]),
        "var/log/cron": "not a kernel log\n",
        "etc/passwd": "root:x:0:0::/root:/bin/bash\n",
    }
    for name in os.listdir(proc):
        if name != "README":
            with open(os.path.join(proc, name)) as handle:
                files["proc/" + name] = handle.read()
    for name, text in files.items():
        path = os.path.join(top, *name.split("/"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as handle:
            handle.write(text)
        os.utime(path, (capture, capture))
    # The links sos makes at the top, and the one RHEL ships in /etc/sysctl.d.
    os.symlink("sos_commands/host/hostname", os.path.join(top, "hostname"))
    os.symlink("sos_commands/kernel/uname_-a", os.path.join(top, "uname"))
    os.symlink("sos_commands/date/date", os.path.join(top, "date"))
    os.symlink("../sysctl.conf", os.path.join(top, "etc", "sysctl.d", "99-sysctl.conf"))
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
    assert first["log_files"] == ["var/log/messages"]
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
    assert scan["ignored"]["before_since"] == 1
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
    # A compression bomb: 256 MiB of zeros in a log member compress to about 250 KiB.
    bomb = str(tmp_path / "bomb.tar.gz")
    size = 256 * 1024 * 1024
    with gzip.open(bomb, "wb", compresslevel=1) as raw:
        with tarfile.open(fileobj=raw, mode="w") as tar:
            info = tarfile.TarInfo("sosreport-h/proc/buddyinfo")
            info.size = len(buddyinfo)
            tar.addfile(info, io.BytesIO(buddyinfo))
            info = tarfile.TarInfo("sosreport-h/var/log/messages")
            info.size = size

            class Zeros(object):
                left = size

                def read(self, count):
                    count = min(count, self.left)
                    self.left -= count
                    return b"\0" * count

            tar.addfile(info, Zeros())
    paths["bomb.tar.gz"] = bomb
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
