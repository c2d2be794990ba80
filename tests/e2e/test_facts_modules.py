# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The facts modules in a play's own gather_facts: ANSIBLE_FACTS_MODULES next to ansible.builtin.setup, their options
through module_defaults, and the facts kept by the jsonfile fact cache for later runs."""

from __future__ import annotations

import json
import os

import pytest

GATHER = """
- hosts: localhost
  gather_facts: true
  module_defaults:
    memfrag.linux.memory_facts:
      proc_root: {proc_root}
      buddyinfo_subset: ['all', '!pagetypeinfo']
      meminfo_subset: ['!processes']
  tasks:
    - name: Show what gather_facts set
      ansible.builtin.debug:
        msg:
          distribution: "{{{{ ansible_facts['distribution'] }}}}"
          zones: "{{{{ ansible_facts['memfrag_buddyinfo']['zones'] | map(attribute='zone') | list }}}}"
          sources: "{{{{ ansible_facts['memfrag_buddyinfo']['sources'] }}}}"
          meminfo_sources: "{{{{ ansible_facts['memfrag_meminfo']['sources'] }}}}"
"""

FROM_CACHE = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Read the cached facts
      ansible.builtin.debug:
        msg: "{{ ansible_facts['memfrag_buddyinfo']['zones'] | length }}"
"""


@pytest.fixture
def fact_cache_env(tmp_path):
    cache = tmp_path / "facts"
    return cache, {
        "ANSIBLE_FACTS_MODULES": "ansible.builtin.setup,memfrag.linux.memory_facts",
        "ANSIBLE_CACHE_PLUGIN": "jsonfile",
        "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(cache),
        "ANSIBLE_CACHE_PLUGIN_TIMEOUT": "3600",
    }


def test_memory_facts_fill_ansible_facts_during_gather_facts(run_playbook, fixtures_dir, fact_cache_env):
    cache, env = fact_cache_env
    proc_root = os.path.join(fixtures_dir, "proc", "diagnose-fragmented")
    run = run_playbook(GATHER.format(proc_root=proc_root), env=env)
    assert run.rc == 0, run.stdout[-3000:] + run.stderr[-3000:]
    shown = run.task_result("Show what gather_facts set")["msg"]
    assert shown["distribution"]  # ansible.builtin.setup ran too
    assert shown["zones"] and "Normal" in shown["zones"]  # the fixture's zones, not this host's
    assert shown["sources"]["pagetypeinfo"] == "skipped"  # module_defaults reached memory_facts
    assert shown["meminfo_sources"]["pid/statm"] == "skipped"
    # The jsonfile cache holds the collection's facts next to setup's (one file per host; its name carries a
    # prefix in newer ansible-core).
    (cached_file,) = [name for name in os.listdir(str(cache)) if name.endswith("localhost")]
    with open(str(cache / cached_file)) as handle:
        cached = json.load(handle)
    if "__payload__" in cached:  # ansible-core 2.19 keeps the facts as one serialised payload
        cached = json.loads(cached["__payload__"])
    assert "ansible_distribution" in cached
    facts = cached.get("ansible_memfrag_buddyinfo") or cached["memfrag_buddyinfo"]
    assert [z["zone"] for z in facts["zones"]] == shown["zones"]

    again = run_playbook(FROM_CACHE, env=env)
    assert again.rc == 0, again.stdout[-3000:]
    assert int(again.task_result("Read the cached facts")["msg"]) == len(shown["zones"])
