# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""An execution environment with memfrag.linux: ansible-builder (a test requirement) finds the collection's Python
requirements in meta/execution-environment.yml and writes a build context that installs them. No container engine
is needed for these steps; building the image itself is the user's `ansible-builder build`."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml

from collection_tree import REPO_ROOT


def _bin(name):
    candidate = os.path.join(os.path.dirname(sys.executable), name)
    return candidate if os.path.exists(candidate) else name


def _run(*args, cwd=None):
    proc = subprocess.run(list(args), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False,
                          universal_newlines=True, timeout=600)
    assert proc.returncode == 0, "%s failed:\n%s" % (" ".join(args), proc.stdout[-3000:])
    return proc.stdout


@pytest.fixture(scope="module")
def tarball(tmp_path_factory):
    out = tmp_path_factory.mktemp("build")
    _run(_bin("ansible-galaxy"), "collection", "build", REPO_ROOT, "--output-path", str(out), "-f")
    (path,) = [os.path.join(str(out), name) for name in os.listdir(str(out)) if name.endswith(".tar.gz")]
    return path


def test_introspection_finds_the_collection_requirements(tarball, tmp_path):
    collections = tmp_path / "collections"
    _run(_bin("ansible-galaxy"), "collection", "install", tarball, "-p", str(collections))
    data = yaml.safe_load(_run(_bin("ansible-builder"), "introspect", "--sanitize", str(collections)).split("---", 1)[1])
    with open(os.path.join(REPO_ROOT, "meta", "ee-requirements.txt")) as handle:
        wanted = [line.split()[0] for line in handle if line.strip() and not line.startswith("#")]
    assert wanted == ["jmespath>=1.0"]
    assert [entry.split("#")[0].strip() for entry in data["python"]] == wanted
    assert all("from collection memfrag.linux" in entry for entry in data["python"])


def test_create_writes_a_context_that_installs_the_collection_and_its_requirements(tarball, tmp_path):
    (tmp_path / "requirements.yml").write_text(yaml.safe_dump({"collections": [
        {"name": "/build/collections/" + os.path.basename(tarball), "type": "file"}]}))
    definition = {
        "version": 3,
        "images": {"base_image": {"name": "quay.io/ansible/awx-ee:latest"}},
        "dependencies": {"galaxy": "requirements.yml", "ansible_core": {"package_pip": "ansible-core>=2.16,<2.20"},
                         "ansible_runner": {"package_pip": "ansible-runner"}},
        "additional_build_files": [{"src": tarball, "dest": "collections"}],
        "additional_build_steps": {"prepend_galaxy": ["COPY _build/collections /build/collections"]},
    }
    (tmp_path / "execution-environment.yml").write_text(yaml.safe_dump(definition))
    _run(_bin("ansible-builder"), "create", "-f", "execution-environment.yml", "--context", "context",
         "--output-filename", "Containerfile", cwd=str(tmp_path))
    context = tmp_path / "context"
    containerfile = (context / "Containerfile").read_text()
    assert (context / "_build" / "collections" / os.path.basename(tarball)).is_file()
    assert "ansible-galaxy collection install" in containerfile and "requirements.yml" in containerfile
    # The build introspects the installed collections (our meta/execution-environment.yml) and pip-installs
    # what they need.
    assert "introspect" in containerfile and "assemble" in containerfile
