# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters ``findings`` and ``verdict``: the diagnose role's judgement, as plain Python.

The documentation lives beside this file (findings.yml, verdict.yml); the logic in
plugins/module_utils/_findings/judge.py.
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.memfrag.linux.plugins.module_utils._findings.judge import check_thresholds, host_findings, verdict


def findings(buddyinfo, meminfo=None, log_scan=None, thresholds=None, host=None):
    if buddyinfo is not None and not isinstance(buddyinfo, dict):
        raise AnsibleFilterError("findings: expected the memfrag_buddyinfo facts (a dict), got %s" % type(buddyinfo).__name__)
    if host is not None and not isinstance(host, str):
        raise AnsibleFilterError("findings: host must be a string (an inventory name), got %s" % type(host).__name__)
    for name, value in (("meminfo", meminfo), ("log_scan", log_scan), ("thresholds", thresholds)):
        if value is not None and not isinstance(value, dict):
            raise AnsibleFilterError("findings: %s must be a dict, got %s" % (name, type(value).__name__))
    try:
        check_thresholds(thresholds)
    except (TypeError, ValueError) as exc:
        raise AnsibleFilterError("findings: %s" % exc)
    try:
        return host_findings(buddyinfo, meminfo, log_scan, thresholds, host)
    except (TypeError, ValueError, KeyError, AttributeError, IndexError) as exc:
        raise AnsibleFilterError("findings: facts are not in the shape memfrag.linux modules return: %s" % exc)


def host_verdict(host_findings_list):
    if not isinstance(host_findings_list, list):
        raise AnsibleFilterError("verdict: expected a list of findings, got %s" % type(host_findings_list).__name__)
    try:
        return verdict(host_findings_list)
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise AnsibleFilterError("verdict: not a list of findings from memfrag.linux.findings: %s" % exc)


class FilterModule(object):
    def filters(self):
        return {"findings": findings, "verdict": host_verdict}
