# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""vm_sysctl's boot model against the real appliers: systemd-sysctl and procps ``sysctl --system``.

Each tree of tests/fixtures/sysctl_oracle/trees.yml is run through both real programs (installed
by the session fixture when missing) inside a private mount namespace and a chroot whose /proc is
a plain directory of fake ``sys/vm`` files (helpers/sysctl_chroot.py refuses to run the tool if a
real procfs is reachable there). The value each program last wrote into a fake file is the truth;
vm_sysctl itself (check mode, run as a module process on the same tree) must name, per applier,
the file, line and value that produced it, or no file when the program wrote nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile

import pytest
import yaml
from hypothesis import HealthCheck, given, seed, settings

from collection_tree import REPO_ROOT, collections_root
from helpers import sysctl_fuzz as fuzz
from helpers import sysctl_oracle as oracle
from helpers.sysctl_chroot import REFUSED

TREES_FILE = os.path.join(REPO_ROOT, "tests", "fixtures", "sysctl_oracle", "trees.yml")
with open(TREES_FILE, encoding="utf-8") as _handle:
    TREES = yaml.safe_load(_handle)
KEYS = ["vm." + key for key in oracle.VM_KEYS]
APPLIER_NAMES = {"systemd": "systemd-sysctl", "procps": "sysctl --system"}
# Random trees per run of the suite (fixed seed); tests/benchmarks/fuzz_sysctl_oracle.py runs hundreds.
FUZZ_EXAMPLES = int(os.environ.get("MEMFRAG_SYSCTL_FUZZ_EXAMPLES", "30"))


@pytest.fixture(scope="session")
def toolbox(tmp_path_factory):
    """The real appliers, their libraries and loader, copied once for every chroot."""
    if os.geteuid() != 0:
        pytest.skip("needs root: mount namespaces and chroot")
    if shutil.which("unshare") is None or not oracle.namespaces_work():
        pytest.skip("unshare --mount is not permitted here; the real tools are only run in a private namespace")
    systemd, procps = oracle.ensure_tools()
    assert systemd and procps, "systemd-sysctl or procps sysctl missing and apt-get install -y failed"
    box = oracle.build_toolbox(str(tmp_path_factory.mktemp("oracle") / "toolbox"), systemd, procps)
    versions = oracle.tool_versions(systemd, procps)
    sys.stdout.write("\nsysctl oracle: %s; %s\n" % versions)
    return {"path": box, "versions": versions}


def test_tool_versions(toolbox):
    """The versions the model is proven against (README quotes them); printed with -s."""
    systemd, procps = toolbox["versions"]
    print("systemd-sysctl --version: %s\nsysctl --version: %s" % (systemd, procps))
    assert systemd.startswith("systemd ") and "procps-ng" in procps


def test_guard_refuses_a_real_procfs(toolbox, tmp_path):
    """With procfs mounted at the chroot's /proc (in the private namespace only), nothing runs."""
    root = oracle.build_tree(str(tmp_path / "root"), {"files": {"/etc/sysctl.d/60-a.conf": "vm.swappiness = 1\n"}})
    script = ("import subprocess, sysctl_chroot as c; "
              "subprocess.run(['mount', '-t', 'proc', 'proc', %r], check=True); c.guard_fake_proc(%r)"
              % (os.path.join(root, "proc"), os.path.join(root, "proc")))
    env = dict(os.environ, PYTHONPATH=os.path.dirname(oracle.CHROOT_RUNNER))
    proc = subprocess.run(["unshare", "--mount", "--propagation", "private", sys.executable, "-c", script],
                          capture_output=True, text=True, timeout=60, check=False, env=env)
    assert proc.returncode == REFUSED, proc.stderr
    assert "procfs" in proc.stderr
    # The tool itself also refuses a fake proc that is not plain files, and wrote nothing.
    os.remove(os.path.join(root, "proc", "sys", "vm", "swappiness"))
    os.symlink("/proc/sys/vm/swappiness", os.path.join(root, "proc", "sys", "vm", "swappiness"))
    proc = subprocess.run(["unshare", "--mount", "--propagation", "private", sys.executable, oracle.CHROOT_RUNNER,
                           root, toolbox["path"], "sysctl", "--system"], capture_output=True, text=True, timeout=60,
                          check=False, env=oracle.runner_env())
    assert proc.returncode == REFUSED and "not a regular file" in proc.stderr, proc.stderr
    # And it never runs outside a private mount namespace.
    proc = subprocess.run([sys.executable, oracle.CHROOT_RUNNER, root, toolbox["path"], "sysctl", "--system"],
                          capture_output=True, text=True, timeout=60, check=False, env=oracle.runner_env())
    assert proc.returncode == REFUSED and "private mount namespace" in proc.stderr, proc.stderr


def test_enough_trees_cover_the_classes():
    assert len(TREES) >= 40
    assert len(set(tree["name"] for tree in TREES)) == len(TREES)


@pytest.mark.parametrize("tree", TREES, ids=[tree["name"] for tree in TREES])
def test_module_names_the_winner_each_applier_wrote(toolbox, tmp_path, tree):
    root = oracle.build_tree(str(tmp_path / "root"), tree)
    result, proc = oracle.model_of(root, KEYS, collections_root())
    assert result is not None and not result.get("failed"), (proc.stdout, proc.stderr)
    model = result["boot"]
    truth = {}
    logs = {}
    for applier in ("systemd", "procps"):
        written, run = oracle.run_applier(root, toolbox["path"], applier)
        assert run.returncode != REFUSED, run.stderr
        assert run.returncode in (0, 1), (applier, run.returncode, run.stdout, run.stderr)
        truth[applier] = written
        logs[applier] = run.stdout + run.stderr
    problems = []
    for key in KEYS:
        for applier in ("systemd", "procps"):
            said = model[key] if applier == "systemd" else model[key]["procps"]
            wrote = truth[applier][key]
            where = "%s %s: %s wrote %r, vm_sysctl said %r" % (key, APPLIER_NAMES[applier], APPLIER_NAMES[applier],
                                                               wrote, {k: said[k] for k in ("file", "line", "value")})
            if wrote is None:
                if said["file"] is not None:
                    problems.append(where)
                continue
            if said["value"] != wrote or (said["file"], said["line"]) not in oracle.candidates(root, tree, wrote):
                problems.append(where)
    assert not problems, "\n".join(problems + ["", "systemd log:", logs["systemd"], "procps log:", logs["procps"]])
    for key in tree.get("differ") or []:
        assert truth["systemd"][key] != truth["procps"][key], (key, truth)
    for key in tree.get("unset") or []:
        assert truth["systemd"][key] is None and truth["procps"][key] is None, (key, truth)
    assert any(value is not None for applier in truth.values() for value in applier.values()), truth


def _warnings(result):
    # ansible-core 2.19 returns warnings as event summaries, older releases as strings.
    return [w if isinstance(w, str) else w.get("event", {}).get("msg", "") for w in result.get("warnings", [])]


def _baseline(root, settings, **options):
    args = {"settings": settings, "config_root": root, "proc_root": os.path.join(root, "proc"), "apply": False}
    args.update(options)
    return oracle.run_module(root, args, collections_root())


def test_later_exclusion_fails_or_warns_and_systemd_really_drops_the_key(toolbox, tmp_path):
    root = oracle.build_tree(str(tmp_path / "root"), {"files": {
        "/etc/sysctl.d/90-local.conf": "# leave it to the kernel\n-vm.swappiness\n"}})
    result, proc = _baseline(root, {"vm.swappiness": 17})
    assert result["failed"], proc.stdout
    assert "-vm.swappiness in /etc/sysctl.d/90-local.conf line 2" in result["msg"]
    assert not os.path.exists(os.path.join(root, "etc", "sysctl.d", "60-memfrag.conf"))

    result, proc = _baseline(root, {"vm.swappiness": 17}, on_override="warn")
    assert not result.get("failed") and result["file_changed"], proc.stdout
    assert any("excludes vm.swappiness" in w and "systemd-sysctl" in w for w in _warnings(result))
    assert result["precedence"]["vm.swappiness"]["excluded_by"] == {"file": "/etc/sysctl.d/90-local.conf", "line": 2}
    assert result["precedence"]["vm.swappiness"]["procps"]["file"] == "/etc/sysctl.d/60-memfrag.conf"
    # What the warning says is what the real programs do with the tree the module left.
    assert oracle.run_applier(root, toolbox["path"], "systemd")[0]["vm.swappiness"] is None
    assert oracle.run_applier(root, toolbox["path"], "procps")[0]["vm.swappiness"] == "17"


def test_exclusion_in_our_own_dropin_is_removed(toolbox, tmp_path):
    root = oracle.build_tree(str(tmp_path / "root"), {"files": {
        "/etc/sysctl.d/60-memfrag.conf": "vm.swappiness = 5\n-vm.swappiness\nvm.dirty_ratio = 12\n"}})
    written, _run = oracle.run_applier(root, toolbox["path"], "systemd")
    assert written["vm.swappiness"] is None  # the line really makes systemd-sysctl skip the key
    result, proc = _baseline(root, {"vm.swappiness": 17})
    assert not result.get("failed") and result["file_changed"], proc.stdout
    assert any("removed the exclusion line -vm.swappiness" in w for w in _warnings(result))
    with open(os.path.join(root, "etc", "sysctl.d", "60-memfrag.conf")) as handle:
        text = handle.read()
    assert "-vm.swappiness" not in text and "vm.dirty_ratio = 12" in text
    for applier in ("systemd", "procps"):
        written, _run = oracle.run_applier(root, toolbox["path"], applier)
        assert (written["vm.swappiness"], written["vm.dirty_ratio"]) == ("17", "12"), applier


@seed(20261130)
@settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                 HealthCheck.data_too_large])
@given(case=fuzz.trees())
def test_random_trees_agree_with_both_appliers(toolbox, case):
    """Random trees (shadowing, masks, links, spellings, globs, blanks, CRLF): the model names what each wrote."""
    work = tempfile.mkdtemp(prefix="sysctl-fuzz-")
    try:
        problems = fuzz.check_tree(os.path.join(work, "root"), case, toolbox["path"])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    assert not problems, "\n".join(problems + [repr(case)])
