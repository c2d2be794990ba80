# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared by test_compact_memory.py and test_drop_caches.py: a writable copy of the fake host tree
tests/fixtures/reclaim/fragmented and a one-task playbook around a reclaim module."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

FIXTURE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures", "reclaim", "fragmented")


def make_tree(tmp_path):
    root = tmp_path / "host"
    shutil.copytree(FIXTURE, str(root))
    return root


def guard_args(root):
    return {"proc_root": str(root / "proc"), "sys_root": str(root / "sys"), "lock_dir": str(root / "run" / "memfrag"),
            "state_dir": str(root / "var" / "lib" / "memfrag"), "audit_log": str(root / "var" / "log" / "memfrag" / "reclaim.log")}


def one_task(module, args):
    return """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: run
      memfrag.linux.%s: %s
""" % (module, json.dumps(args))


def audit(root):
    path = root / "var" / "log" / "memfrag" / "reclaim.log"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


class Immutable(object):
    """chattr +i: even root gets EPERM on open for writing, like a read-only /proc/sys. Always undone."""

    def __init__(self, path):
        self.path = str(path)

    def __enter__(self):
        subprocess.run(["chattr", "+i", self.path], check=True)
        return self

    def __exit__(self, *exc):
        subprocess.run(["chattr", "-i", self.path], check=True)
