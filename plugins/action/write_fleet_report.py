# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action ``write_fleet_report``: the whole fleet report written on the controller in one task execution.

Runs once (``run_once``) in one worker on the controller, never on a host: it reads every host's variables from
``hostvars``, shapes the report (plugin_utils/_fleet_report.py) and writes index.html, report.json and one
Prometheus file per host into a new directory that is swapped in for the old one (plugin_utils/_fleet_files.py).
Documentation: plugins/modules/write_fleet_report.py.
"""

from __future__ import annotations

import datetime
import os
import time
import typing as t
from collections.abc import Mapping

from ansible.errors import AnsibleError
from ansible.plugins.action import ActionBase

from ansible_collections.memfrag.linux.plugins.plugin_utils._fleet_files import (
    FORMATS,
    ReportDirError,
    check_dest,
    write_report,
)
from ansible_collections.memfrag.linux.plugins.plugin_utils._fleet_report import fleet_report, plain

ARGUMENT_SPEC = {
    "dest": {"type": "path", "required": True},
    "hosts": {"type": "list", "elements": "str", "required": True},
    "order": {"type": "int", "default": 4},
    "baseline": {"type": "dict", "default": {}},
    "formats": {"type": "list", "elements": "str", "choices": list(FORMATS), "default": list(FORMATS)},
    "title": {"type": "str", "default": "memfrag fleet report"},
    "textfile_dir": {"type": "str", "default": ""},
    "textfile_dir_var": {"type": "str", "default": "report_textfile_dir"},
}
# The host variables the report reads. Facts and set_fact results are data: read as stored, never templated
# (templating a host's whole ansible_facts took 140 ms per host on ansible-core 2.19; 10,000 hosts: 20 minutes).
_FACTS = ("memfrag_buddyinfo", "memfrag_verdict", "memfrag_findings", "memfrag_log_counts", "memfrag_reclaim")
_DATA_VARS = _FACTS + ("sysctl_tuning_baseline", "ansible_kernel")
_MARKERS = ("{{", "{%", "{#")


def _has_template(value: t.Any, depth: int = 0) -> bool:
    if isinstance(value, str):
        return any(m in value for m in _MARKERS)
    if depth > 8:
        return True
    if isinstance(value, Mapping):
        return any(_has_template(v, depth + 1) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_has_template(v, depth + 1) for v in value)
    return False


def _host_vars(hostvars: t.Any, name: str, textfile_var: str,
               warnings: t.List[str]) -> t.Tuple[t.Dict[str, t.Any], t.Any]:
    """The variables of one host the report needs, and its own textfile directory (None when it has none)."""
    # Asked first: on ansible-core 2.19, raw_get of a host not in the inventory builds an undefined marker that
    # raises ReferenceError ("A required TemplateContext context is not active") outside a template, which failed
    # the whole report instead of listing that host as no_data.
    try:
        if name not in hostvars:
            return {}, None
        raw = hostvars.raw_get(name)
    except (KeyError, TypeError, AttributeError):
        return {}, None
    if not isinstance(raw, Mapping):  # a host not in the inventory: an undefined marker, not a mapping
        return {}, None
    out = {}  # type: t.Dict[str, t.Any]
    facts = raw.get("ansible_facts")
    if isinstance(facts, Mapping):
        out["ansible_facts"] = dict((k, facts[k]) for k in _FACTS if k in facts)
    for key in _DATA_VARS:
        if key in raw:
            out[key] = raw[key]
    # What an inventory states may be a template ("{{ ... }}"): templated in the host's own context.
    own = {}  # type: t.Dict[str, t.Any]
    for key in ("memfrag_baseline", textfile_var):
        if key and key in raw:
            own[key] = raw[key]
    if any(_has_template(v) for v in own.values()):
        templated = hostvars[name]
        try:
            own = dict((k, templated[k]) for k in own)
        except AnsibleError as exc:  # one host's broken template must not cost the whole report
            warnings.append("host %r: %s cannot be templated (%s); left out" % (name, " and ".join(sorted(own)), exc))
            own = {}
    if "memfrag_baseline" in own:
        out["memfrag_baseline"] = own["memfrag_baseline"]
    textfile_dir = plain(own[textfile_var]) if textfile_var in own else None
    return out, textfile_dir


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False  # everything happens on the controller
    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp: t.Any = None, task_vars: t.Optional[t.Dict[str, t.Any]] = None) -> t.Dict[str, t.Any]:
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        task_vars = task_vars or {}
        validation, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        del validation
        hostvars = task_vars.get("hostvars")
        if hostvars is None:
            result.update(failed=True, msg="write_fleet_report: no hostvars in this task's variables")
            return result
        started = time.monotonic()
        textfile_default = args["textfile_dir"]
        warnings = []  # type: t.List[str]

        all_vars = {}  # type: t.Dict[str, t.Dict[str, t.Any]]
        textfile_of = {}  # type: t.Dict[str, t.Any]
        for name in args["hosts"]:
            all_vars[name], own = _host_vars(hostvars, name, args["textfile_dir_var"], warnings)
            textfile_of[name] = textfile_default if own is None else own
        read = time.monotonic()
        generated = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        bad_hosts = []  # type: t.List[t.Tuple[str, str]]
        report = fleet_report(all_vars, args["hosts"], args["order"], plain(args["baseline"]) or None, generated,
                              bad_hosts=bad_hosts)
        for name, reason in bad_hosts[:10]:
            warnings.append("host %r: facts not in the shape memfrag.linux roles set (%s); reported as no data"
                            % (name, reason))
        if len(bad_hosts) > 10:
            warnings.append("%d more hosts with facts not in that shape" % (len(bad_hosts) - 10))
        shaped = time.monotonic()

        # Hosts that get their Prometheus file in their node_exporter textfile directory: judged hosts only.
        directories = {}  # type: t.Dict[str, str]
        for row in report["hosts"]:
            directory = textfile_of.get(row["host"])
            if row["severity"] == "no_data" or not directory:
                continue
            if not isinstance(directory, str) or not os.path.isabs(directory) or "\0" in directory:
                warnings.append("host %r: textfile directory %r is not an absolute path; no textfile written there"
                                % (row["host"], directory))
                continue
            directories[row["host"]] = directory
        formats = list(args["formats"])
        if directories and "prometheus" not in formats:
            formats.append("prometheus")  # each host's textfile is a copy of its metrics/<host>.prom

        result.update(generated=generated, counts=report["counts"], hosts=len(report["hosts"]), textfiles={},
                      worst=report["overview"]["worst"])
        try:
            if self._task.check_mode:
                result.update(changed=True, dest=check_dest(args["dest"]), files={},
                              msg="check mode: a report of %d hosts would be written to %s (and %d textfiles)"
                              % (len(report["hosts"]), args["dest"], len(directories)))
                return self._finish(result, warnings)
            written = write_report(args["dest"], report, formats, args["title"])
        except ReportDirError as exc:
            result.update(failed=True, msg="write_fleet_report: %s" % exc)
            return result
        except OSError as exc:
            result.update(failed=True, msg="write_fleet_report: cannot write the report to %s: %s" % (args["dest"], exc))
            return result
        except (TypeError, ValueError, KeyError) as exc:  # a report the renderers cannot take: nothing was swapped in
            result.update(failed=True, msg="write_fleet_report: the report could not be rendered: %s" % exc)
            return result
        prometheus = written.pop("prometheus_files")
        result.update(written, changed=True,
                      textfiles=dict((host, {"src": os.path.join(written["dest"], prometheus[host]), "dir": directory})
                                     for host, directory in directories.items()),
                      seconds={"read": round(read - started, 3), "shape": round(shaped - read, 3),
                               "write": round(time.monotonic() - shaped, 3)},
                      msg="fleet report of %d hosts written to %s" % (len(report["hosts"]), written["dest"]))
        return self._finish(result, warnings)

    @staticmethod
    def _finish(result: t.Dict[str, t.Any], warnings: t.List[str]) -> t.Dict[str, t.Any]:
        if warnings:
            result.setdefault("warnings", []).extend(warnings)
        return result
