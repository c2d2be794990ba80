# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fleet tests: real ansible-playbook runs against an inventory of real hosts over SSH.

* ``netns_fleet`` (session): hosts in network namespaces, each with its own sshd and address,
  sharing this kernel; each host gets its own fixture ``proc_root`` and ``config_root`` (a snapshot
  of this machine's /proc files), so values can differ per host and writes land in the host's tree.
* ``vm_lab`` (session, tests marked ``lab``): QEMU guests with their own kernels (tests/lab/lab.py).

``fleet_playbook`` runs ansible-playbook with an inventory built from a dict and the json callback,
and returns a ``FleetRun`` that answers per host and per task.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import typing as t

import pytest
import yaml

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
from collection_tree import CALLBACK_PLUGINS, collections_root, REPO_ROOT
from lab import lab
import process_tree

PLAYBOOKS = os.path.join(REPO_ROOT, "playbooks")
OUTPUT = os.path.join(REPO_ROOT, "tests", "output")

# Files of /proc the collection's modules read; copied per host into its fixture proc_root.
PROC_FILES = ("buddyinfo", "zoneinfo", "pagetypeinfo", "vmstat", "meminfo", "slabinfo", "version", "uptime")


def pytest_configure(config):
    config.addinivalue_line("markers", "lab: needs the QEMU VM lab (tests/lab); select with -m lab")


@pytest.fixture(scope="session", autouse=True)
def nothing_survives_the_session():
    """Set up first, torn down last: after every fixture has stopped its hosts, no process the fleet tests started
    (sshd and its per-connection children, ssh ControlPersist masters, QEMU, ansible) may be alive."""
    process_tree.become_subreaper()
    yield
    left = process_tree.check_nothing_survives("the fleet tests")
    if left:
        pytest.fail(left, pytrace=False)


def _bin(name: str) -> str:
    candidate = os.path.join(os.path.dirname(sys.executable), name)
    return candidate if os.path.exists(candidate) else name


class FleetRun(object):
    def __init__(self, proc: subprocess.CompletedProcess, data: t.Dict[str, t.Any], cmd: t.List[str]) -> None:
        self.rc = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.data = data
        self.cmd = cmd

    def __repr__(self) -> str:
        return "FleetRun(rc=%d, stats=%r)\nstderr tail: %s" % (self.rc, self.stats, self.stderr[-3000:])

    @property
    def stats(self) -> t.Dict[str, t.Dict[str, int]]:
        return self.data.get("stats", {})

    @property
    def plays(self) -> t.List[t.Dict[str, t.Any]]:
        return self.data.get("plays", [])

    def results(self, name: str, host: str) -> t.List[t.Dict[str, t.Any]]:
        """Every result of the task called ``name`` (exact, or the tail after 'role : ') on ``host``."""
        found = []
        for play in self.plays:
            for task in play.get("tasks", []):
                tname = task["task"]["name"]
                if (tname == name or tname.split(" : ", 1)[-1] == name) and host in task["hosts"]:
                    found.append(task["hosts"][host])
        return found

    def host_results(self, host: str) -> t.List[t.Tuple[str, t.Dict[str, t.Any]]]:
        out = []
        for play in self.plays:
            for task in play.get("tasks", []):
                if host in task["hosts"]:
                    out.append((task["task"]["name"], task["hosts"][host]))
        return out

    def batches(self) -> t.List[t.List[str]]:
        """Hosts of each play run in order: with ``serial`` every batch is its own play entry."""
        out = []
        for play in self.plays:
            hosts = set()
            for task in play.get("tasks", []):
                hosts.update(task["hosts"])
            if hosts:
                out.append(sorted(hosts))
        return out

    def failures(self, host: str) -> t.List[str]:
        return [r.get("msg", "") for _name, r in self.host_results(host) if r.get("failed") or r.get("unreachable")]


def write_inventory(path: str, hosts: t.Dict[str, t.Dict[str, t.Any]], groups: t.Optional[t.Dict[str, t.List[str]]] = None) -> str:
    children = dict((g, {"hosts": dict((h, None) for h in members)}) for g, members in (groups or {}).items())
    inv = {"all": {"hosts": hosts, "children": children}}
    with open(path, "w") as f:
        yaml.safe_dump(inv, f, default_flow_style=False, sort_keys=False)
    return path


def ansible_env(extra: t.Optional[t.Dict[str, str]] = None) -> t.Dict[str, str]:
    env = dict(os.environ)
    env.update({
        "ANSIBLE_COLLECTIONS_PATH": collections_root(),
        "ANSIBLE_STDOUT_CALLBACK": "memfrag_test_json",
        "ANSIBLE_CALLBACK_PLUGINS": CALLBACK_PLUGINS,
        "ANSIBLE_LOCALHOST_WARNING": "false",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false",
        "ANSIBLE_RETRY_FILES_ENABLED": "false",
        "ANSIBLE_HOST_KEY_CHECKING": "false",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_SSH_RETRIES": "0",
        "ANSIBLE_TIMEOUT": "10",
        "ANSIBLE_PIPELINING": "true",
        "ANSIBLE_FORKS": "10",
    })
    env.update(extra or {})
    return env


def playbook_runner(tmp_path):
    """A function running ansible-playbook with files kept in ``tmp_path`` (see ``fleet_playbook``)."""
    tmp_path = pathlib.Path(str(tmp_path))

    def _run(playbook: str, hosts: t.Dict[str, t.Dict[str, t.Any]], extra_vars: t.Optional[t.Dict[str, t.Any]] = None,
             check: bool = False, groups: t.Optional[t.Dict[str, t.List[str]]] = None, args: t.Sequence[str] = (),
             env: t.Optional[t.Dict[str, str]] = None, timeout: float = 900) -> FleetRun:
        if "\n" in playbook:
            path = tmp_path / ("playbook-%d.yml" % len(list(tmp_path.glob("playbook-*.yml"))))
            path.write_text(playbook)
            playbook = str(path)
        elif not os.path.isabs(playbook):
            playbook = os.path.join(PLAYBOOKS, playbook)
        inventory = write_inventory(str(tmp_path / "inventory.yml"), hosts, groups)
        cmd = [_bin("ansible-playbook"), playbook, "-i", inventory]
        if extra_vars:
            cmd += ["-e", json.dumps(extra_vars)]
        if check:
            cmd.append("--check")
        cmd += list(args)
        proc = subprocess.run(cmd, capture_output=True, text=True, env=ansible_env(env), timeout=timeout, check=False)
        try:
            data = json.loads(proc.stdout[proc.stdout.index("{"):]) if "{" in proc.stdout else {}
        except ValueError:
            data = {}
        return FleetRun(proc, data, cmd)

    return _run


@pytest.fixture
def fleet_playbook(tmp_path):
    """fleet_playbook(playbook, hosts, extra_vars=None, check=False, groups=None, args=(), env=None) -> FleetRun."""
    return playbook_runner(tmp_path)


# ------------------------------------------------------------------ fixture host trees

def snapshot_proc(dest: str) -> str:
    """A fixture proc_root made from this machine's /proc: the files the modules read and sys/vm."""
    os.makedirs(os.path.join(dest, "sys", "vm"), exist_ok=True)
    for name in PROC_FILES:
        try:
            with open(os.path.join("/proc", name), "rb") as src:
                data = src.read()
        except OSError:
            continue
        with open(os.path.join(dest, name), "wb") as out:
            out.write(data)
    os.makedirs(os.path.join(dest, "sys", "kernel"), exist_ok=True)
    with open("/proc/sys/kernel/osrelease", "rb") as src, open(os.path.join(dest, "sys", "kernel", "osrelease"), "wb") as out:
        out.write(src.read())
    for name in sorted(os.listdir("/proc/sys/vm")):
        path = os.path.join("/proc/sys/vm", name)
        mode = os.stat(path).st_mode & 0o777
        try:
            with open(path, "rb") as src:
                data = src.read()
        except OSError:
            data = b""  # write-only triggers (drop_caches, compact_memory): present, unreadable
        with open(os.path.join(dest, "sys", "vm", name), "wb") as out:
            out.write(data)
        os.chmod(os.path.join(dest, "sys", "vm", name), mode)
    return dest


def read_tree(root: str) -> t.Dict[str, bytes]:
    """Every regular file under ``root`` (relative path -> content), to prove what changed and what did not."""
    out = {}
    for base, _dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(base, name)
            try:
                with open(path, "rb") as f:
                    out[os.path.relpath(path, root)] = f.read()
            except OSError:
                out[os.path.relpath(path, root)] = b"<unreadable>"
    return out


class NetnsFleet(object):
    """The netns hosts and their fixture trees: ``hosts[name] = {"proc_root", "config_root"}``."""

    def __init__(self, lab_: lab.NetnsLab, base: str) -> None:
        self.lab = lab_
        self.base = base
        self.trees = {}  # type: t.Dict[str, t.Dict[str, str]]
        self.unreachable = []  # type: t.List[str]
        # This fleet's own ssh ControlPersist sockets (short path: a socket path has at most 107 bytes), so that
        # stop() can end exactly its masters.
        self.control_path_dir = tempfile.mkdtemp(prefix="mfcp-")

    def add(self, name: str, readonly_sys: bool = False, missing: t.Sequence[str] = (), reachable: bool = True) -> None:
        root = os.path.join(self.base, "trees", name)
        proc_root = snapshot_proc(os.path.join(root, "proc"))
        config_root = os.path.join(root, "config")
        for d in ("etc/sysctl.d", "run/sysctl.d", "usr/lib/sysctl.d", "var/lib/memfrag", "var/lib/node_exporter"):
            os.makedirs(os.path.join(config_root, d), exist_ok=True)
        for name_ in missing:
            path = os.path.join(proc_root, "sys", "vm", name_)
            if os.path.exists(path):
                os.unlink(path)
        self.trees[name] = {"proc_root": proc_root, "config_root": config_root}
        if not reachable:
            self.unreachable.append(name)
        # Read-only: the host's own proc/sys and the real /proc/sys, inside that sshd's mount namespace only.
        readonly = [os.path.join(proc_root, "sys"), "/proc/sys"] if readonly_sys else []
        self.lab.add(name, readonly=readonly, start_sshd=reachable)

    def inventory(self, names: t.Optional[t.Iterable[str]] = None) -> t.Dict[str, t.Dict[str, t.Any]]:
        inv = self.lab.inventory()
        names = list(names) if names is not None else list(inv)
        out = {}
        for name in names:
            hv = dict(inv[name])
            hv.update({"memfrag_proc_root": self.trees[name]["proc_root"],
                       "memfrag_config_root": self.trees[name]["config_root"],
                       "ansible_control_path_dir": self.control_path_dir})
            if os.environ.get("MEMFRAG_TARGET_PYTHON"):
                hv["ansible_python_interpreter"] = os.environ["MEMFRAG_TARGET_PYTHON"]
            out[name] = hv
        return out

    def stop(self) -> None:
        # The ssh masters first (they would otherwise wait ControlPersist seconds), then every process in each
        # host's network namespace (lab.stop), then the trees.
        names = os.listdir(self.control_path_dir) if os.path.isdir(self.control_path_dir) else []
        for name in sorted(names):
            subprocess.run(["ssh", "-o", "ControlPath=" + os.path.join(self.control_path_dir, name), "-O", "exit", "x"],
                           capture_output=True, timeout=30, check=False)
        self.lab.stop()
        shutil.rmtree(self.control_path_dir, ignore_errors=True)
        shutil.rmtree(os.path.join(self.base, "trees"), ignore_errors=True)


@pytest.fixture(scope="session")
def netns_base(request):
    """Checks once that network namespaces and sshd work here (installing openssh-server if missing)."""
    if os.geteuid() != 0:
        pytest.skip("netns fleet needs root (ip netns, sshd)")
    base = tempfile.mkdtemp(prefix="memfrag-netns-")
    request.addfinalizer(lambda: shutil.rmtree(base, ignore_errors=True))
    probe = lab.NetnsLab(os.path.join(base, "keys"))
    try:
        probe.prepare()
    except lab.LabUnavailable as exc:
        pytest.skip("netns fleet cannot run here: %s" % exc)
    return base


def new_fleet(request, netns_base, directory) -> NetnsFleet:
    """An empty fleet: ``add()`` hosts; all are stopped and removed by the finalizer of ``request``."""
    netns = lab.NetnsLab(os.path.join(netns_base, "keys"))
    netns.prepare()
    fleet = NetnsFleet(netns, str(directory))
    request.addfinalizer(fleet.stop)
    return fleet


@pytest.fixture
def netns_fleet(request, netns_base, tmp_path):
    """An empty fleet for one test."""
    return new_fleet(request, netns_base, tmp_path)


@pytest.fixture(scope="session")
def vm_lab(request):
    """Two VMs (bookworm 6.1, bullseye 5.10) over SSH; skipped only when QEMU truly cannot run here."""
    if os.geteuid() != 0:
        pytest.skip("the VM lab needs root (apt-get, debootstrap)")
    workdir = tempfile.mkdtemp(prefix="memfrag-lab-")
    vms = lab.VmLab(workdir)
    request.addfinalizer(lambda: (vms.stop(), shutil.rmtree(workdir, ignore_errors=True)))
    try:
        vms.start()
    except lab.LabUnavailable as exc:
        pytest.skip("VM lab cannot run on this machine: %s" % exc)
    return vms


@pytest.fixture(scope="session")
def output_dir():
    os.makedirs(OUTPUT, exist_ok=True)
    return OUTPUT
