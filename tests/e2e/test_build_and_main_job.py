# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection as users get it: the built tarball, ansible-doc on every plugin, and scripts/diagnose."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile

import pytest

from conftest import REPO_ROOT, ansible_env, _bin


@pytest.fixture(scope="module")
def tarball(tmp_path_factory):
    out = tmp_path_factory.mktemp("build")
    # Junk that a working checkout accumulates must not reach the tarball.
    junk = os.path.join(REPO_ROOT, "tests", "output", "junk-for-build-test.txt")
    os.makedirs(os.path.dirname(junk), exist_ok=True)
    with open(junk, "w") as handle:
        handle.write("x")
    try:
        subprocess.run([_bin("ansible-galaxy"), "collection", "build", REPO_ROOT, "--output-path", str(out)],
                       check=True, capture_output=True, env=ansible_env())
    finally:
        os.unlink(junk)
    (path,) = out.glob("memfrag-linux-*.tar.gz")
    return path


def test_tarball_contents(tarball):
    with tarfile.open(str(tarball)) as archive:
        names = archive.getnames()
    assert "galaxy.yml" not in names and "MANIFEST.json" in names
    for required in ("plugins/modules/buddyinfo_facts.py", "plugins/modules/meminfo_facts.py",
                     "roles/diagnose/meta/argument_specs.yml", "playbooks/diagnose.yml", "LICENSE", "README.md"):
        assert required in names
    for name in names:
        assert not name.startswith(("tests/output", ".venv", ".git/", ".ci")), name
        assert "__pycache__" not in name and not name.endswith(".pyc"), name


def _plugins(kind):
    folder = os.path.join(REPO_ROOT, "plugins", kind)
    if kind == "filter":
        return sorted(f[:-4] for f in os.listdir(folder) if f.endswith(".yml"))
    return sorted(f[:-3] for f in os.listdir(folder) if f.endswith(".py") and not f.startswith("_"))


@pytest.mark.parametrize("kind, name", [("module", n) for n in _plugins("modules")] + [("filter", n) for n in _plugins("filter")])
def test_ansible_doc(kind, name):
    proc = subprocess.run([_bin("ansible-doc"), "-t", kind, "--json", "memfrag.linux." + name],
                          capture_output=True, text=True, env=ansible_env(), check=False)
    assert proc.returncode == 0, proc.stderr
    assert "memfrag.linux." + name in proc.stdout
    assert "short_description" in proc.stdout


def test_main_job_command(tmp_path):
    """scripts/diagnose, the README's main command, in the current virtual environment."""
    env = dict(os.environ, MEMFRAG_VENV=sys.prefix, ANSIBLE_NOCOLOR="1")
    proc = subprocess.run([os.path.join(REPO_ROOT, "scripts", "diagnose")], capture_output=True, text=True,
                          env=env, timeout=900, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Show the verdict and findings of every host" in proc.stdout
    assert "Normal zone node 0" in proc.stdout
    assert "failed=0" in proc.stdout
    # No warning on a good run (ansible-galaxy once warned, falsely, that the installed collection would not be used).
    assert "[WARNING]" not in proc.stdout + proc.stderr, proc.stderr[-3000:]
