# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters ``fleet_report``, ``fleet_report_html`` and ``fleet_report_prometheus``: the report's data shaping and
rendering, for playbooks of your own (the report role writes its files with the memfrag.linux.write_fleet_report
action, in one task). Documentation lives beside this file (one .yml per filter); the logic in
plugins/plugin_utils/_fleet_report.py, _fleet_html.py and _fleet_prometheus.py.
"""

from __future__ import annotations

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

from ansible_collections.memfrag.linux.plugins.plugin_utils._fleet_html import render_html
from ansible_collections.memfrag.linux.plugins.plugin_utils._fleet_prometheus import prometheus_text
from ansible_collections.memfrag.linux.plugins.plugin_utils._fleet_report import (
    fleet_report as _fleet_report,
    plain,
    timestamp,
)


def fleet_report(hostvars, hosts, order=4, baseline=None, generated=""):
    if not isinstance(hostvars, Mapping):
        raise AnsibleFilterError("fleet_report: expected hostvars (a mapping of host name to variables), got %s"
                                 % type(hostvars).__name__)
    if isinstance(hosts, str) or not hasattr(hosts, "__iter__"):
        raise AnsibleFilterError("fleet_report: hosts must be a list of host names, got %s" % type(hosts).__name__)
    if baseline is not None and not isinstance(baseline, Mapping):
        raise AnsibleFilterError("fleet_report: baseline must be a dict of sysctl name to value")
    try:
        order = int(order)
    except (TypeError, ValueError):
        raise AnsibleFilterError("fleet_report: order must be an integer, got %r" % (order,))
    try:
        return _fleet_report(hostvars, [str(h) for h in hosts], order, plain(baseline), str(generated or ""))
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise AnsibleFilterError("fleet_report: host facts are not in the shape memfrag.linux roles set: %s" % exc)


def _check_report(report, name):
    if not isinstance(report, Mapping) or "hosts" not in report or "counts" not in report:
        raise AnsibleFilterError("%s: expected the output of memfrag.linux.fleet_report" % name)


def fleet_report_html(report, title="memfrag fleet report"):
    _check_report(report, "fleet_report_html")
    try:
        return render_html(plain(report), str(title))
    except (TypeError, ValueError, KeyError) as exc:
        raise AnsibleFilterError("fleet_report_html: malformed report: %s" % exc)


def fleet_report_prometheus(row, generated=None):
    if not isinstance(row, Mapping) or "host" not in row or "zones" not in row:
        raise AnsibleFilterError("fleet_report_prometheus: expected one entry of fleet_report's hosts list")
    try:
        return prometheus_text(plain(row), timestamp(generated) if generated else None)
    except (TypeError, ValueError, KeyError) as exc:
        raise AnsibleFilterError("fleet_report_prometheus: malformed host entry: %s" % exc)


class FilterModule(object):
    def filters(self):
        return {
            "fleet_report": fleet_report,
            "fleet_report_html": fleet_report_html,
            "fleet_report_prometheus": fleet_report_prometheus,
        }
