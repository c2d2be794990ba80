# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The action plugin of every memfrag.linux module: the module as usual, and one clear message when the host's
Python cannot run it.

A host whose only Python is 2.7 (CentOS 7 without python3), or 3.6/3.7 under an ansible-core that no longer
manages them, fails before any of our code runs: ansible-core 2.17+ cannot even start its module wrapper there
(a SyntaxError in AnsiballZ), and 2.16 starts it but our modules need Python 3.6. So the check cannot live in the
module; it lives here, on the controller, and costs nothing on a healthy host: only when a module run ended without
a module result (a traceback or "not found" instead of JSON) does it ask the host, in one shell command without
Python, which interpreters it has, and replaces the traceback by what to install or set.
"""

from __future__ import annotations

import re
import shlex
import typing as t

from ansible.plugins.action.normal import ActionModule as NormalAction
from ansible.release import __version__ as ansible_core_version

# Module-side code of this collection runs on Python 3.6 and newer.
COLLECTION_MIN = (3, 6)
# The oldest target Python each ansible-core's module wrapper runs on (2.16 still runs 2.7 and 3.6).
CORE_MIN = {(2, 16): (3, 6), (2, 17): (3, 7), (2, 18): (3, 8), (2, 19): (3, 8)}
# Where a python3 usually is, in the order interpreter discovery tries them (RHEL 8: platform-python).
CANDIDATES = ("python3", "/usr/bin/python3", "/usr/libexec/platform-python", "python3.6")
_VERSION = re.compile(r"^(\d+)\.(\d+)$")


def core_version(version: str = ansible_core_version) -> t.Tuple[int, int]:
    match = re.match(r"(\d+)\.(\d+)", version)
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


def target_minimum(core: t.Tuple[int, int]) -> t.Tuple[int, int]:
    """The oldest Python the modules can run on under this ansible-core."""
    return max(COLLECTION_MIN, CORE_MIN.get(core, (3, 8)))


def probe_command(interpreter: t.Optional[str]) -> str:
    """One POSIX sh command printing ``PATH X.Y`` for each interpreter found (``NAME -`` when absent)."""
    names = ([interpreter] if interpreter else []) + [c for c in CANDIDATES if c != interpreter]
    quoted = " ".join(shlex.quote(name) for name in names)
    return ("for p in %s; do if command -v \"$p\" >/dev/null 2>&1; then "
            "printf '%%s %%s\\n' \"$(command -v \"$p\")\" "
            "\"$(\"$p\" -c 'import sys; print(\"%%d.%%d\" %% sys.version_info[:2])' 2>/dev/null || echo '?')\"; "
            "else printf '%%s -\\n' \"$p\"; fi; done" % quoted)


Probed = t.List[t.Tuple[str, bool, t.Optional[t.Tuple[int, int]]]]


def parse_probe(stdout: str) -> Probed:
    """``[(path or name, present, (major, minor) or None)]`` from the probe's output, in the probe's order."""
    found = []
    for line in stdout.splitlines():
        parts = line.strip().rsplit(" ", 1)
        if len(parts) != 2:
            continue
        path, version = parts
        match = _VERSION.match(version)
        found.append((path, version != "-", (int(match.group(1)), int(match.group(2))) if match else None))
    return found


def _dotted(version: t.Tuple[int, int]) -> str:
    return "%d.%d" % version


def explain(host: str, interpreter: t.Optional[str], probed: Probed, core: t.Tuple[int, int]) -> t.Optional[str]:
    """The message for a host whose interpreter cannot run the modules, or None when the interpreter is not why.

    ``probed`` is parse_probe's answer to probe_command(interpreter): the interpreter's own entry first.
    """
    minimum = target_minimum(core)
    used_version = None
    others = probed
    if interpreter is not None:
        if not probed:
            return None
        _path, present, used_version = probed[0]
        others = probed[1:]
        if used_version is not None and used_version >= minimum:
            return None  # the interpreter can run the modules: the failure has another cause, keep Ansible's report
        if present and used_version is None:
            # It is there but cannot run a one-line script: a broken installation, or a pyenv shim with no version
            # selected. Whatever the module printed, the interpreter is why.
            said = ("%s runs the modules with %s, which is there but does not run (asked for its version, it "
                    "printed none)" % (host, interpreter))
        elif present:
            said = "%s runs the modules with %s, which is Python %s" % (host, interpreter, _dotted(used_version))
        else:
            said = "%s runs the modules with %s, which does not exist there" % (host, interpreter)
    else:
        said = "Ansible found no Python interpreter on %s" % host
    usable = [(path, version) for path, _present, version in others if version is not None and version >= minimum]
    older = [version for _path, _present, version in probed if version is not None and COLLECTION_MIN <= version < minimum]
    need = "memfrag.linux modules need Python %s or newer on the managed host" % _dotted(COLLECTION_MIN)
    if minimum > COLLECTION_MIN:
        need += ", and ansible-core %s runs modules only on Python %s or newer" % (_dotted(core), _dotted(minimum))
    parts = ["%s: %s." % (need, said)]
    if usable:
        path, version = usable[0]
        parts.append("It has Python %s at %s: set ansible_python_interpreter=%s for it, or remove the setting so "
                     "that interpreter discovery finds it." % (_dotted(version), path, path))
    elif older:
        parts.append("Its Python %s is supported with ansible-core 2.16 on the controller (pip install "
                     "'ansible-core>=2.16,<2.17'; RHEL 8.10 and 9 ship it as the ansible-core package)."
                     % _dotted(older[0]))
    else:
        parts.append("Install python3 (3.6 or newer) on it: 'yum install python3' on CentOS/RHEL 7, 'dnf install "
                     "python3' on RHEL 8 and later, 'apt-get install python3' on Debian and Ubuntu. Interpreter "
                     "discovery then finds it without extra variables (if ansible_python_interpreter is set for the "
                     "host, point it at the new python3).")
    return " ".join(parts)


def _no_module_result(result: t.Dict[str, t.Any]) -> bool:
    """The module run ended without JSON from the module: a traceback, a crash or a missing interpreter."""
    return bool(result.get("failed")) and ("module_stderr" in result or "module_stdout" in result)


class TargetPythonAction(NormalAction):
    """``normal`` (the action every module without its own plugin uses), plus the interpreter diagnosis."""

    def run(self, tmp=None, task_vars=None):
        result = super(TargetPythonAction, self).run(tmp, task_vars)
        if not _no_module_result(result):
            return result
        try:
            interpreter = self._interpreter(task_vars or {}, result)
            probe = self._low_level_execute_command(probe_command(interpreter), sudoable=False)
            message = explain(self._host_name(task_vars or {}), interpreter,
                              parse_probe(probe.get("stdout", "")), core_version())
        except Exception:  # pylint: disable=broad-except  # never hide the module's own failure behind the probe's
            return result
        if message is None:
            return result
        return {"failed": True, "changed": False, "msg": message}

    def _host_name(self, task_vars: t.Dict[str, t.Any]) -> str:
        return str(task_vars.get("inventory_hostname") or "the host")

    def _interpreter(self, task_vars: t.Dict[str, t.Any], result: t.Dict[str, t.Any]) -> t.Optional[str]:
        """The Python this task ran the module with: configured, else the one discovery chose."""
        host_vars = task_vars
        if self._task.delegate_to:
            host_vars = (task_vars.get("ansible_delegated_vars") or {}).get(self._task.delegate_to) or task_vars
        configured = host_vars.get("ansible_python_interpreter")
        if configured is not None:
            configured = self._templar.template(configured)
        else:
            from ansible import constants as C  # pylint: disable=import-outside-toplevel
            configured = C.config.get_config_value("INTERPRETER_PYTHON", variables=host_vars)
        if configured and not str(configured).startswith("auto"):
            return str(configured).split()[0]
        for facts in (result.get("ansible_facts"), host_vars.get("ansible_facts")):
            discovered = (facts or {}).get("discovered_interpreter_python")
            if discovered:
                return str(discovered)
        discovered = getattr(self, "_discovered_interpreter", None)
        return str(discovered) if discovered else None
