# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Test-only stdout callback: the whole run as one JSON document, so tests assert on task results.

ansible-core does not ship a JSON stdout callback (ansible.posix.json is in another collection, which
cannot be installed from PyPI alone); this is the small part of it the tests need.
"""

from __future__ import annotations

DOCUMENTATION = """
name: memfrag_test_json
type: stdout
short_description: one JSON document for the memfrag.linux test suite
description: Prints plays, tasks with per-host results, and stats as JSON at the end of the run.
"""

import json

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "stdout"
    CALLBACK_NAME = "memfrag_test_json"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.plays = []

    def v2_playbook_on_play_start(self, play):
        self.plays.append({"play": {"name": play.get_name()}, "tasks": []})

    def _task(self, task):
        self.plays[-1]["tasks"].append({"task": {"name": task.get_name()}, "hosts": {}})

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._task(task)

    def v2_playbook_on_handler_task_start(self, task):
        self._task(task)

    def _record(self, result, **flags):
        data = dict(result._result)
        data.update(flags)
        current = self.plays[-1]["tasks"][-1]
        if current["task"]["name"] != result._task.get_name():
            self._task(result._task)
            current = self.plays[-1]["tasks"][-1]
        host = result._host.get_name()
        if "results" in current["hosts"].get(host, {}) and "results" in data:
            return
        current["hosts"][host] = data

    def v2_runner_on_ok(self, result, **kwargs):
        self._record(result)

    def v2_runner_on_failed(self, result, ignore_errors=False, **kwargs):
        self._record(result, failed=True)

    def v2_runner_on_skipped(self, result, **kwargs):
        self._record(result, skipped=True)

    def v2_runner_on_unreachable(self, result, **kwargs):
        self._record(result, unreachable=True)

    def v2_playbook_on_stats(self, stats):
        summary = {host: stats.summarize(host) for host in sorted(stats.processed)}
        self._display.display(json.dumps({"plays": self.plays, "stats": summary}, default=str, indent=1))
