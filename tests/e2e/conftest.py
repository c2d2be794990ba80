# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""End-to-end tests: real ansible-playbook runs against localhost (live kernel or fixture trees).

``run_playbook`` writes a playbook (YAML text or a path), runs it with the json stdout callback
and returns the parsed result, so tests assert on what each task returned.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from collection_tree import CALLBACK_PLUGINS, CORPUS_SKIP_REASON, collections_root, corpus_dir as _corpus_dir, REPO_ROOT
import process_tree

# The one place the e2e suite makes the collection importable, for the few tests that also call its Python
# directly (a checkout need not sit in an ansible_collections/ tree); every other import comes from pytest.ini.
if collections_root() not in sys.path:
    sys.path.append(collections_root())

FIXTURES = os.path.join(REPO_ROOT, "tests", "fixtures")
# The Python the modules run on ("the target"): MEMFRAG_TARGET_PYTHON, else the tests' own. scripts/test's e2e-2.16
# stage sets it to Python 3.6, the oldest target the collection supports.
TARGET_PYTHON = os.environ.get("MEMFRAG_TARGET_PYTHON") or sys.executable


@pytest.fixture(scope="session", autouse=True)
def nothing_survives_the_session():
    """Set up first, torn down last: no process the e2e tests started (ansible, helpers, ssh) outlives them."""
    process_tree.become_subreaper()
    yield
    left = process_tree.check_nothing_survives("the e2e tests")
    if left:
        pytest.fail(left, pytrace=False)


class PlaybookRun(object):
    def __init__(self, proc, data):
        self.rc = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.data = data

    def task_results(self, name, host="localhost"):
        """The result dict of every run of the task called ``name`` on ``host``."""
        found = []
        for play in self.data.get("plays", []):
            for task in play.get("tasks", []):
                # Role tasks are named "role : task"; either form matches.
                full = task["task"]["name"]
                if (full == name or full.endswith(" : " + name)) and host in task["hosts"]:
                    found.append(task["hosts"][host])
        return found

    def task_result(self, name, host="localhost"):
        found = self.task_results(name, host)
        assert found, "task %r did not run on %s; output:\n%s\n%s" % (name, host, self.stdout[-4000:], self.stderr[-4000:])
        return found[-1]

    @property
    def stats(self):
        return self.data.get("stats", {})


def ansible_env(extra=None):
    env = dict(os.environ)
    env.update({
        "ANSIBLE_COLLECTIONS_PATH": collections_root(),
        "ANSIBLE_STDOUT_CALLBACK": "memfrag_test_json",
        "ANSIBLE_CALLBACK_PLUGINS": CALLBACK_PLUGINS,
        "ANSIBLE_LOCALHOST_WARNING": "false",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false",
        "ANSIBLE_PYTHON_INTERPRETER": TARGET_PYTHON,
        "ANSIBLE_RETRY_FILES_ENABLED": "false",
        "ANSIBLE_NOCOLOR": "1",
    })
    env.update(extra or {})
    return env


def _bin(name):
    candidate = os.path.join(os.path.dirname(sys.executable), name)
    return candidate if os.path.exists(candidate) else name


@pytest.fixture
def run_playbook(tmp_path):
    """run_playbook(playbook, extra_vars=None, check=False, diff=False, inventory=None, args=(), env=None, prefix=()).

    ``inventory=None`` is ``-i localhost, -c local``; ``inventory=False`` gives no inventory at all (and no
    ANSIBLE_INVENTORY), as a user who runs ``ansible-playbook memfrag.linux.diagnose`` alone. ``prefix`` is a
    command that runs ansible-playbook (``unshare ...``); ``env`` values of None remove that variable.
    """

    def _run(playbook, extra_vars=None, check=False, diff=False, inventory=None, args=(), env=None, timeout=900,
             prefix=()):
        if "\n" in playbook:
            path = tmp_path / "playbook.yml"
            path.write_text(playbook)
            playbook = str(path)
        cmd = list(prefix) + [_bin("ansible-playbook"), playbook]
        if inventory is None:
            cmd += ["-i", "localhost,", "-c", "local"]
        elif inventory is not False:
            cmd += ["-i", inventory]
        if extra_vars:
            cmd += ["-e", json.dumps(extra_vars)]
        if check:
            cmd.append("--check")
        if diff:
            cmd.append("--diff")
        cmd += list(args)
        run_env = ansible_env(env)
        if inventory is False:
            run_env.pop("ANSIBLE_INVENTORY", None)
        for name in [name for name, value in run_env.items() if value is None]:
            del run_env[name]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=run_env, timeout=timeout, check=False)
        try:
            data = json.loads(proc.stdout[proc.stdout.index("{"):]) if "{" in proc.stdout else {}
        except ValueError:
            data = {}
        return PlaybookRun(proc, data)

    return _run


@pytest.fixture
def corpus():
    path = _corpus_dir()
    if path is None:
        pytest.skip(CORPUS_SKIP_REASON)
    return path


@pytest.fixture
def fixtures_dir():
    return FIXTURES
