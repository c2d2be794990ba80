# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The memfrag.linux.memfrag rulebook under the real ansible-rulebook (PyPI; Java 17 from Debian when missing).

One ansible-rulebook runs for the module: its kernel_log source follows a central syslog server's per-host files
(``remote/*/messages``) and this host's ring buffer. The actions are the real memfrag.linux.diagnose and
memfrag.linux.reclaim playbooks on inventory hosts that are localhost with fixture trees as their /proc and /sys
(nothing live is written), with the reclaim modules' own cooldown set to 0 so that only the rulebook's throttle
holds reclaim back. Every playbook run writes a JUnit file (ansible-core's junit callback), and reclaim its audit
log: the tests count those. ansible-rulebook (and Java, ansible-runner, ansible-playbook) runs in its own PID
namespace, so everything it started dies with it, also when a test fails.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from xml.etree import ElementTree

import pytest
import yaml

from collection_tree import REPO_ROOT, collections_root
from helpers.debian import ensure_command
from helpers.reclaim_tree import FIXTURE as RECLAIM_TREE

DIAGNOSE_PROC = os.path.join(REPO_ROOT, "tests", "fixtures", "proc", "diagnose-fragmented")
XFS = "XFS: possible memory allocation deadlock size 65536 in kmem_alloc (mode:0x250)"
PAF = "kworker/u8:1: page allocation failure: order:4, mode:0x40cc0(GFP_KERNEL|__GFP_COMP), nodemask=(null)"
HUNG = "INFO: task dockerd:1234 blocked for more than 120 seconds."
# node-a, node-b, node-c: per-host directories of the syslog server; node-k: this host (its ring buffer).
HOSTS = ("node-a", "node-b", "node-c", "node-k", "sentinel-1", "sentinel-2")
DIRECTORIES = ("node-a", "node-b", "node-c")
RATE_EVENTS = 5


def _line(host, tag, message):
    return "%s %s %s: %s\n" % (time.strftime("%b %e %H:%M:%S"), host, tag, message)


def _set_parent_death_signal():
    # If the test process dies, unshare gets SIGKILL, and --kill-child takes the whole namespace with it.
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _pid_namespace(pid):
    try:
        return os.readlink("/proc/%d/ns/pid" % pid)
    except OSError:
        return None


def _processes_in(namespace):
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit() and _pid_namespace(int(name)) == namespace:
            found.append(int(name))
    return found


class Rulebook(object):
    def __init__(self, base):
        self.base = base
        self.remote = os.path.join(base, "remote")
        self.junit = os.path.join(base, "junit")
        self.output = os.path.join(base, "ansible-rulebook.log")
        self.proc = None
        self.namespace = None

    # ---- set-up ----
    def write_inputs(self):
        hosts = {}
        for host in HOSTS:
            tree = os.path.join(self.base, "hosts", host)
            shutil.copytree(RECLAIM_TREE, tree)
            hosts[host] = {
                "ansible_connection": "local", "ansible_python_interpreter": sys.executable,
                "diagnose_proc_root": DIAGNOSE_PROC,
                "reclaim_proc_root": os.path.join(tree, "proc"), "reclaim_sys_root": os.path.join(tree, "sys"),
                "reclaim_lock_dir": os.path.join(tree, "run"), "reclaim_state_dir": os.path.join(tree, "state"),
                "reclaim_audit_log": os.path.join(tree, "audit.log"), "reclaim_cooldown": 0,
            }
        with open(os.path.join(self.base, "inventory.yml"), "w") as handle:
            yaml.safe_dump({"all": {"hosts": hosts}}, handle)
        with open(os.path.join(self.base, "vars.yml"), "w") as handle:
            yaml.safe_dump({"memfrag_eda_sources": ["files", "kmsg"],
                            "memfrag_eda_paths": [os.path.join(self.remote, "*", "messages")],
                            "memfrag_eda_host": "node-k", "memfrag_eda_reclaim_events": RATE_EVENTS}, handle)
        for directory in DIRECTORIES:
            os.makedirs(os.path.join(self.remote, directory))
            open(os.path.join(self.remote, directory, "messages"), "w").close()
        os.makedirs(self.junit)
        os.makedirs(os.path.join(self.base, "tmp"))

    def start(self, rulebook_bin):
        bin_dir = os.path.dirname(sys.executable)
        env = dict(os.environ)
        env.update({
            "PATH": bin_dir + os.pathsep + env.get("PATH", ""),
            "ANSIBLE_COLLECTIONS_PATH": collections_root(),
            "ANSIBLE_CALLBACKS_ENABLED": "ansible.builtin.junit",
            "JUNIT_OUTPUT_DIR": self.junit,
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_LOCALHOST_WARNING": "false",
            "PYTHONUNBUFFERED": "1",
            "TMPDIR": os.path.join(self.base, "tmp"),  # ansible-runner's private data dirs
        })
        cmd = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child", "--",
               rulebook_bin, "-r", "memfrag.linux.memfrag", "-i", os.path.join(self.base, "inventory.yml"),
               "--vars", os.path.join(self.base, "vars.yml"), "-v"]
        with open(self.output, "wb") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         cwd=self.base, env=env, preexec_fn=_set_parent_death_signal)
        # The namespace's first process (ansible-rulebook) is unshare's child.
        self.wait_for(lambda: self._init_pid() is not None, 30, "ansible-rulebook to start")
        self.namespace = _pid_namespace(self._init_pid())
        followed = ["kernel_log: following /dev/kmsg"] + [
            "kernel_log: following %s" % os.path.join(self.remote, d, "messages") for d in DIRECTORIES]
        self.wait_for(lambda: all(text in self.log() for text in followed + ["Waiting for events, ruleset"]),
                      300, "the rulebook to follow its sources")

    def _init_pid(self):
        try:
            with open("/proc/%d/task/%d/children" % (self.proc.pid, self.proc.pid)) as handle:
                children = handle.read().split()
        except OSError:
            return None
        return int(children[0]) if children else None

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            init = self._init_pid()
            if init is not None:
                os.kill(init, signal.SIGTERM)  # ansible-rulebook's own graceful shutdown
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()  # unshare gone: --kill-child kills the namespace, and every process in it
                self.proc.wait(30)
        deadline = time.monotonic() + 30
        while self.namespace and _processes_in(self.namespace) and time.monotonic() < deadline:
            time.sleep(0.2)
        left = _processes_in(self.namespace) if self.namespace else []
        assert not left, "processes left behind by ansible-rulebook: %s" % left

    # ---- during the tests ----
    def log(self):
        with open(self.output, "rb") as handle:
            return handle.read().decode("utf-8", "replace")

    def wait_for(self, predicate, timeout, what):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            if self.proc.poll() is not None:
                pytest.fail("ansible-rulebook exited (rc %s) while waiting for %s:\n%s"
                            % (self.proc.returncode, what, self.log()[-6000:]))
            time.sleep(0.2)
        pytest.fail("timed out after %d s waiting for %s:\n%s" % (timeout, what, self.log()[-6000:]))

    def append(self, directory, text):
        with open(os.path.join(self.remote, directory, "messages"), "a") as handle:
            handle.write(text)

    def runs(self, playbook):
        """[(hosts, the memory_facts or reclaim_memory result per host)] of every finished run of ``playbook``."""
        found = []
        for name in sorted(os.listdir(self.junit)):
            if not (name.startswith(playbook + "-") and name.endswith(".xml")):
                continue
            tree = ElementTree.parse(os.path.join(self.junit, name))
            results = {}
            for case in tree.iter("testcase"):
                host = case.get("name").split("]", 1)[0].lstrip("[")
                out = case.find("system-out")
                if out is not None and out.text and out.text.lstrip().startswith("{"):
                    result = json.loads(out.text)
                    if "ansible_facts" in result:
                        results[host] = result
                results.setdefault(host, None)
            found.append((sorted(results), results))
        return found

    def runs_on(self, playbook, host):
        return [results[host] for hosts, results in self.runs(playbook) if host in hosts]

    def audit_runs(self, host):
        """Finished reclaim ladders in the host's audit log (one "end" record each)."""
        path = os.path.join(self.base, "hosts", host, "audit.log")
        if not os.path.exists(path):
            return 0
        with open(path) as handle:
            return sum(1 for line in handle if json.loads(line).get("step") == "end")


@pytest.fixture(scope="module")
def rulebook(tmp_path_factory):
    try:
        ensure_command("java", "openjdk-17-jre-headless")
    except RuntimeError as exc:
        pytest.fail(str(exc))
    rulebook_bin = os.path.join(os.path.dirname(sys.executable), "ansible-rulebook")
    if not os.path.exists(rulebook_bin):
        rulebook_bin = shutil.which("ansible-rulebook")
    if not rulebook_bin:
        pytest.fail("ansible-rulebook is not installed: pip install -r requirements-test.txt")
    running = Rulebook(str(tmp_path_factory.mktemp("eda")))
    running.write_inputs()
    try:
        started = time.monotonic()
        running.start(rulebook_bin)
        print("ansible-rulebook following its sources after %.1f s" % (time.monotonic() - started))
        yield running
    finally:
        running.stop()


def test_kernel_line_in_a_followed_file_runs_diagnose_on_that_host_within_seconds(rulebook):
    started = time.monotonic()
    rulebook.append("node-a", _line("node-a", "kernel", XFS))
    rulebook.wait_for(lambda: rulebook.runs_on("diagnose", "node-a"), 180, "diagnose on node-a")
    print("diagnose on node-a finished %.1f s after the kernel line was written" % (time.monotonic() - started))
    (hosts, results), = [run for run in rulebook.runs("diagnose") if "node-a" in run[0]]
    assert hosts == ["node-a"]  # limited to the event's host
    verdict = results["node-a"]["ansible_facts"]["memfrag_verdict"]
    assert verdict["lines"][0].startswith("CRITICAL: ")  # the fixture tree's zones, judged by the real role
    assert rulebook.runs_on("reclaim", "node-a") == []  # one event is below the reclaim rate


def test_user_space_lines_quoting_the_kernel_are_no_event(rulebook):
    # A process writing the kernel's text into /dev/kmsg: the record gets facility 1 (user), never 0.
    with open("/dev/kmsg", "w") as kmsg:
        kmsg.write("XFS: memfrag-eda-test(1) possible memory allocation deadlock size 65536 in kmem_alloc (mode:0x250)\n")
    rulebook.append("node-b", _line("node-b", "sshd[123]", "Invalid user " + XFS + " from 203.0.113.7")
                    + _line("node-b", "root", PAF) + _line("node-b", "logger[99]", HUNG)
                    # A kernel line from another host after them: once its diagnose has run (actions run in
                    # order), every line before it has been judged.
                    + _line("sentinel-1", "kernel", XFS))
    rulebook.wait_for(lambda: rulebook.runs_on("diagnose", "sentinel-1"), 180, "diagnose on sentinel-1")
    for host in ("node-b", "node-k"):
        assert rulebook.runs_on("diagnose", host) == [] and rulebook.runs_on("reclaim", host) == []
    # The ring buffer was followed: the record was read and refused for its facility.
    assert "xfs_alloc_deadlock record in /dev/kmsg with facility 1 was written by a process" in rulebook.log()


def test_burst_of_1000_events_runs_reclaim_once_per_cooldown(rulebook):
    started = time.monotonic()
    rulebook.append("node-c", _line("node-c", "kernel", XFS) * 1000 + _line("sentinel-2", "kernel", XFS))
    rulebook.wait_for(lambda: rulebook.runs_on("diagnose", "sentinel-2"), 300, "diagnose on sentinel-2")
    print("1,000 events and the sentinel's diagnose took %.1f s" % (time.monotonic() - started))
    # Above the rate (5 allocation events in 600 s) reclaim ran, once in its 15-minute window; diagnose once in 5.
    assert len(rulebook.runs_on("reclaim", "node-c")) == 1
    assert rulebook.audit_runs("node-c") == 1  # the whole ladder ran once: the module's cooldown is 0 here
    assert len(rulebook.runs_on("diagnose", "node-c")) == 1
    assert all(hosts == ["node-c"] for hosts, _results in rulebook.runs("reclaim"))
    assert [rulebook.audit_runs(host) for host in HOSTS if host != "node-c"] == [0] * (len(HOSTS) - 1)
