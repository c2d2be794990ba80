# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Stdout callback for every test and benchmark that runs ansible-playbook: one JSON document like
ansible.posix.json's (plays -> tasks -> hosts, stats), with per-host start/end times. ansible-core ships
no JSON callback and ansible.posix cannot be installed from PyPI alone, so the tests carry this one
(ANSIBLE_CALLBACK_PLUGINS points here)."""

from __future__ import annotations

DOCUMENTATION = """
name: memfrag_test_json
type: stdout
short_description: JSON output for the memfrag.linux tests
description: Prints plays, tasks, per-host results and stats as one JSON document at the end.
"""

import datetime
import json

from ansible.plugins.callback import CallbackBase


def _now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat()


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "stdout"
    CALLBACK_NAME = "memfrag_test_json"

    def __init__(self, *args, **kwargs):
        super(CallbackModule, self).__init__(*args, **kwargs)
        self.results = []
        self.starts = {}

    def v2_playbook_on_play_start(self, play):
        self.results.append({"play": {"name": play.get_name(), "id": str(play._uuid)}, "tasks": []})

    def _task_entry(self, task):
        tasks = self.results[-1]["tasks"]
        if not tasks or tasks[-1]["task"]["id"] != str(task._uuid):
            tasks.append({"task": {"name": task.get_name(), "id": str(task._uuid), "start": _now()}, "hosts": {}})
        return tasks[-1]

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._task_entry(task)

    def v2_playbook_on_handler_task_start(self, task):
        self._task_entry(task)

    def v2_runner_on_start(self, host, task):
        self.starts[(host.get_name(), str(task._uuid))] = _now()

    def _record(self, result, **flags):
        host = result._host.get_name()
        entry = self._task_entry(result._task)
        data = self._convert_host_result(result) if hasattr(self, "_convert_host_result") else dict(result._result)
        data = json.loads(json.dumps(data, default=str))
        data.update(flags)
        data["_start"] = self.starts.get((host, str(result._task._uuid)))
        data["_end"] = _now()
        entry["hosts"][host] = data

    def v2_runner_on_ok(self, result):
        self._record(result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._record(result, failed=True)

    def v2_runner_on_unreachable(self, result):
        self._record(result, unreachable=True)

    def v2_runner_on_skipped(self, result):
        self._record(result, skipped=True)

    def v2_playbook_on_stats(self, stats):
        summary = {}
        for host in sorted(stats.processed.keys()):
            summary[host] = stats.summarize(host)
        self._display.display(json.dumps({"plays": self.results, "stats": summary}, indent=1, default=str))
