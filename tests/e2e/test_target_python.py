# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The managed host's Python: a host that has only Python 2.7 fails with one message saying what to install, and a
host with python3 is found by interpreter discovery without any variable.

"Hosts" here are localhost seen through a mount namespace in which /usr/bin has no python3 (an overlay with
whiteouts) and PATH is a server's PATH, plus, where a test says so, a folder holding only python2.7.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess

import pytest

from conftest import REPO_ROOT

PYENV = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
PYTHON27 = sorted(glob.glob(os.path.join(PYENV, "versions", "2.7*", "bin", "python2.7")))
DIAGNOSE = os.path.join(REPO_ROOT, "playbooks", "diagnose.yml")
JUDGE = "Gather memory facts, scan kernel logs and judge the host"
NEED = "memfrag.linux modules need Python 3.6 or newer on the managed host"
INSTALL = "Install python3 (3.6 or newer) on it"
SERVER_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"

# Modules whose action plugin does all the work on the controller: no module runs on a host.
CONTROLLER_ONLY = ("write_fleet_report",)

needs_python27 = pytest.mark.skipif(not PYTHON27, reason="no Python 2.7 under %s/versions" % PYENV)


def every_module_play(tree):
    """One task per module, each allowed to fail, on fixture roots and in check mode (nothing live is touched)."""
    proc_root = os.path.join(tree, "proc")
    tasks = [
        ("memfrag.linux.buddyinfo_facts", {"proc_root": proc_root}),
        ("memfrag.linux.meminfo_facts", {"proc_root": proc_root}),
        ("memfrag.linux.memory_facts", {"proc_root": proc_root}),
        ("memfrag.linux.kernel_log_scan", {"sources": ["files"], "paths": [os.path.join(tree, "messages")]}),
        ("memfrag.linux.vm_sysctl", {"settings": {"vm.swappiness": 10}, "proc_root": proc_root,
                                     "config_root": os.path.join(tree, "config")}),
        ("memfrag.linux.drop_caches", {"proc_root": proc_root, "lock_dir": tree, "state_dir": tree,
                                       "audit_log": os.path.join(tree, "audit.log")}),
        ("memfrag.linux.compact_memory", {"proc_root": proc_root, "sys_root": os.path.join(tree, "sys"),
                                          "lock_dir": tree, "state_dir": tree, "audit_log": os.path.join(tree, "audit.log")}),
        ("memfrag.linux.reclaim_memory", {"proc_root": proc_root, "sys_root": os.path.join(tree, "sys"),
                                          "lock_dir": tree, "state_dir": tree, "audit_log": os.path.join(tree, "audit.log")}),
        ("memfrag.linux.xfs_extent_scan", {"paths": [tree]}),
        ("memfrag.linux.xfs_defrag", {"files": [os.path.join(tree, "messages")]}),
        ("memfrag.linux.capture_extract", {"archive_paths": [tree]}),
    ]
    play = [{"name": "Every module", "hosts": "all", "gather_facts": False, "check_mode": True,
             "tasks": [{"name": module, module: args, "ignore_errors": True} for module, args in tasks]}]
    return json.dumps(play) + "\n", [module for module, _args in tasks]


def test_every_module_has_the_interpreter_action_plugin():
    modules = sorted(name[:-3] for name in os.listdir(os.path.join(REPO_ROOT, "plugins", "modules")) if not name.startswith("_"))
    for name in modules:
        with open(os.path.join(REPO_ROOT, "plugins", "action", name + ".py")) as f:
            text = f.read()
        assert ("TargetPythonAction" in text) != (name in CONTROLLER_ONLY), name


def assert_one_clear_message(run, tasks, *words):
    """Each task failed with our message alone: no module traceback, no module_stderr."""
    for task in tasks:
        result = run.task_result(task)
        assert result.get("failed"), result
        assert result["msg"].startswith(NEED), result
        for word in words:
            assert word in result["msg"], result
        # (ansible-core 2.19 adds "exception: (traceback unavailable)" to every failure without one.)
        assert "module_stderr" not in result and "Traceback" not in str(result.get("exception", "")), result
    for stream in (run.stdout, run.stderr):
        assert "Traceback" not in stream and "SyntaxError" not in stream, stream[-3000:]


@needs_python27
def test_every_module_on_python27_fails_with_one_message(run_playbook, tmp_path):
    play, modules = every_module_play(str(tmp_path))
    assert sorted(m.split(".")[-1] for m in modules) == sorted(
        name[:-3] for name in os.listdir(os.path.join(REPO_ROOT, "plugins", "modules"))
        if not name.startswith("_") and name[:-3] not in CONTROLLER_ONLY)
    run = run_playbook(play, extra_vars={"ansible_python_interpreter": PYTHON27[0]})
    assert_one_clear_message(run, modules, "%s, which is Python 2.7" % PYTHON27[0])
    assert run.stats["localhost"]["failures"] == 0 and run.stats["localhost"]["ignored"] == len(modules), run.stats


def test_every_module_on_a_python_that_does_not_run_fails_with_one_message(run_playbook, tmp_path):
    """A python3 that is there but cannot run (a broken installation, a pyenv shim with no version selected)."""
    broken = tmp_path / "bin" / "python3"
    broken.parent.mkdir()
    broken.write_text("#!/bin/sh\necho 'python3: command not found' >&2\nexit 127\n")
    broken.chmod(0o755)
    play, modules = every_module_play(str(tmp_path))
    run = run_playbook(play, extra_vars={"ansible_python_interpreter": str(broken)})
    assert_one_clear_message(run, modules, "%s, which is there but does not run" % broken,
                             "set ansible_python_interpreter=")
    assert run.stats["localhost"]["failures"] == 0 and run.stats["localhost"]["ignored"] == len(modules), run.stats


@needs_python27
def test_diagnose_playbook_on_python27_fails_with_one_message(run_playbook, fixtures_dir):
    run = run_playbook(DIAGNOSE, extra_vars={"ansible_python_interpreter": PYTHON27[0],
                                             "diagnose_proc_root": os.path.join(fixtures_dir, "proc", "diagnose-fragmented")})
    assert run.rc != 0
    assert_one_clear_message(run, [JUDGE], "which is Python 2.7")
    assert run.stats["localhost"]["failures"] == 1, run.stats


@pytest.fixture
def without_python3(tmp_path):
    """A command prefix running ansible-playbook where /usr/bin has no python3 (and PATH is a server's)."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare(1) for a mount namespace")
    whiteouts = tmp_path / "whiteouts"
    whiteouts.mkdir()
    for path in glob.glob("/usr/bin/python3*"):
        os.mknod(str(whiteouts / os.path.basename(path)), 0o600 | 0o020000, os.makedev(0, 0))
    script = ('mount -t overlay memfrag-no-python3 -o lowerdir=%s:/usr/bin /usr/bin && '
              '! ls /usr/bin/python3* >/dev/null 2>&1 && exec "$@"' % whiteouts)
    prefix = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh"]
    probe = subprocess.run(prefix + ["true"], capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        pytest.skip("cannot hide /usr/bin/python3 in a mount namespace here: %s" % probe.stderr.strip())
    return prefix


@needs_python27
def test_host_with_only_python27_found_by_discovery(run_playbook, fixtures_dir, tmp_path, without_python3):
    """No interpreter variable: ansible-core 2.16 discovers python2.7, 2.17+ finds no Python; either way one message."""
    only27 = tmp_path / "bin"
    only27.mkdir()
    os.symlink(PYTHON27[0], str(only27 / "python2.7"))
    run = run_playbook(DIAGNOSE, prefix=without_python3,
                       extra_vars={"diagnose_proc_root": os.path.join(fixtures_dir, "proc", "diagnose-fragmented")},
                       env={"ANSIBLE_PYTHON_INTERPRETER": None, "PATH": "%s:%s" % (only27, SERVER_PATH)})
    assert run.rc != 0
    assert_one_clear_message(run, [JUDGE], INSTALL)
    assert run.stats["localhost"]["failures"] == 1, run.stats


def test_python3_found_by_discovery_without_variables(run_playbook, fixtures_dir):
    run = run_playbook(DIAGNOSE, extra_vars={"diagnose_proc_root": os.path.join(fixtures_dir, "proc", "diagnose-fragmented")},
                       env={"ANSIBLE_PYTHON_INTERPRETER": None, "PATH": SERVER_PATH})
    assert run.rc == 0, run.stdout[-3000:] + run.stderr[-3000:]
    result = run.task_result(JUDGE)
    assert result["ansible_facts"]["discovered_interpreter_python"].startswith("/usr/bin/python3"), result["ansible_facts"]
    assert result["ansible_facts"]["memfrag_verdict"]["severity"] == "critical"
