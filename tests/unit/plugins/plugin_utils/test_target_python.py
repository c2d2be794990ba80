# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The interpreter diagnosis of the modules' action plugin: the probe (run by a real /bin/sh) and the message."""

from __future__ import annotations

import os
import stat
import subprocess

import pytest

from ansible_collections.memfrag.linux.plugins.plugin_utils import _target_python as tp

NEED = "memfrag.linux modules need Python 3.6 or newer on the managed host"


def fake_python(folder, name, version):
    """An executable that answers the probe's version question like that Python would (or fails: version None)."""
    path = os.path.join(str(folder), name)
    with open(path, "w") as f:
        f.write("#!/bin/sh\n" + ("echo %s\n" % version if version else "exit 1\n"))
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR)
    return path


def probe(folder, interpreter):
    proc = subprocess.run(["/bin/sh", "-c", tp.probe_command(interpreter)], capture_output=True, text=True,
                          env={"PATH": str(folder)}, check=True)
    return tp.parse_probe(proc.stdout)


def test_probe_reports_each_candidate_found_or_absent(tmp_path):
    py27 = fake_python(tmp_path, "python2.7", "2.7")
    python3 = fake_python(tmp_path, "python3", "3.9")
    found = probe(tmp_path, py27)
    assert found[0] == (py27, True, (2, 7))
    assert (python3, True, (3, 9)) in found
    assert ("python3.6", False, None) in found  # not in this PATH
    assert len(found) == 1 + len(tp.CANDIDATES)


def test_probe_quotes_the_interpreter(tmp_path):
    marker = tmp_path / "pwned"
    found = probe(tmp_path, "/nonexistent/python; touch %s" % marker)
    assert found[0] == ("/nonexistent/python; touch %s" % marker, False, None)
    assert not marker.exists()


def test_probe_of_an_interpreter_that_does_not_answer(tmp_path):
    broken = fake_python(tmp_path, "python3", None)
    assert probe(tmp_path, broken)[0] == (broken, True, None)


@pytest.mark.parametrize("core", [(2, 16), (2, 17), (2, 19)])
def test_python27_only_host_is_told_to_install_python3(core):
    message = tp.explain("web1", "/usr/bin/python", [("/usr/bin/python", True, (2, 7)), ("python3", False, None)], core)
    assert message.startswith(NEED)
    assert "web1 runs the modules with /usr/bin/python, which is Python 2.7" in message
    assert "Install python3 (3.6 or newer) on it: 'yum install python3' on CentOS/RHEL 7" in message
    assert ("ansible-core 2.%d runs modules only on Python" % core[1] in message) == (core != (2, 16))


def test_missing_discovered_interpreter_on_2_17_and_later():
    message = tp.explain("web1", "/usr/bin/python3", [("/usr/bin/python3", False, None), ("python3", False, None)], (2, 19))
    assert "web1 runs the modules with /usr/bin/python3, which does not exist there" in message
    assert "Install python3" in message


def test_a_python3_that_exists_is_named():
    message = tp.explain("db1", "/usr/bin/python2", [("/usr/bin/python2", True, (2, 7)), ("/usr/bin/python3", True, (3, 9))],
                         (2, 19))
    assert "It has Python 3.9 at /usr/bin/python3: set ansible_python_interpreter=/usr/bin/python3" in message


@pytest.mark.parametrize("core, expected", [((2, 16), None), ((2, 17), "ansible-core 2.16"), ((2, 19), "ansible-core 2.16")])
def test_python36_host(core, expected):
    """RHEL 8's platform-python: fine under 2.16, and under 2.17+ the message says which ansible-core manages it."""
    probed = [("/usr/libexec/platform-python", True, (3, 6)), ("python3", False, None)]
    message = tp.explain("rhel8", "/usr/libexec/platform-python", probed, core)
    if expected is None:
        assert message is None
    else:
        assert "which is Python 3.6" in message and "Its Python 3.6 is supported with %s" % expected in message


@pytest.mark.parametrize("interpreter, probed", [
    ("/usr/bin/python3", [("/usr/bin/python3", True, (3, 11))]),  # a good interpreter: the failure is not ours to explain
    ("/usr/bin/python3", []),  # the probe printed nothing
])
def test_failures_not_caused_by_the_interpreter_keep_ansibles_report(interpreter, probed):
    assert tp.explain("web1", interpreter, probed, (2, 19)) is None


def test_an_interpreter_that_is_there_but_does_not_run_is_named():
    # A pyenv shim with no version selected, or a broken installation: the module failed and so does "-c".
    probed = [("/root/.pyenv/shims/python3.13", True, None), ("python3", True, (3, 11)), ("/usr/bin/python3", True, (3, 11))]
    message = tp.explain("web1", "/root/.pyenv/shims/python3.13", probed, (2, 19))
    assert "web1 runs the modules with /root/.pyenv/shims/python3.13, which is there but does not run" in message
    assert "It has Python 3.11 at python3: set ansible_python_interpreter=python3" in message


def test_no_interpreter_known():
    message = tp.explain("web1", None, [("python3", False, None)], (2, 19))
    assert "Ansible found no Python interpreter on web1" in message


@pytest.mark.parametrize("version, expected", [("2.16.19", (2, 16)), ("2.19.0rc1", (2, 19)), ("devel", (0, 0))])
def test_core_version(version, expected):
    assert tp.core_version(version) == expected


def test_target_minimum():
    assert tp.target_minimum((2, 16)) == (3, 6)
    assert tp.target_minimum((2, 17)) == (3, 7)
    assert tp.target_minimum((2, 19)) == (3, 8)
    assert tp.target_minimum((2, 99)) == (3, 8)


@pytest.mark.parametrize("result, expected", [
    ({"failed": True, "module_stderr": "SyntaxError", "module_stdout": ""}, True),
    ({"failed": True, "msg": "a clean fail_json"}, False),
    ({"failed": False, "module_stdout": ""}, False),
])
def test_only_runs_without_a_module_result_are_diagnosed(result, expected):
    assert tp._no_module_result(result) is expected
