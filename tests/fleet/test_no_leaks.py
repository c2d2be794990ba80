# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Nothing the fleet tests start outlives them: the session's end check (conftest: nothing_survives_the_session)
finds leaked processes, and stopping a fleet ends its sshd, the sshd's per-connection children and the ssh masters."""

from __future__ import annotations

import subprocess

import process_tree
from conftest import new_fleet

PING = """
- name: Open a connection to every host
  hosts: all
  gather_facts: false
  tasks:
    - name: Ping
      ansible.builtin.ping:
"""


def test_the_end_check_finds_an_orphan():
    """An orphan (its parent exited) is still found, through the session being the subreaper."""
    before = set(pid for pid, _cmd in process_tree.descendants())
    subprocess.run(["sh", "-c", "sleep 321 >/dev/null 2>&1 &"], check=True)
    left = process_tree.survivors(grace=0.5, ignore=before)
    try:
        assert [cmd for _pid, cmd in left] == ["sleep 321"], left
    finally:
        process_tree.kill(left)
    assert process_tree.survivors(grace=0.5, ignore=before) == []


def test_stopping_a_fleet_ends_every_process_it_started(request, netns_base, tmp_path, fleet_playbook):
    before = set(pid for pid, _cmd in process_tree.descendants())
    fleet = new_fleet(request, netns_base, tmp_path)
    fleet.add("leak1")
    fleet.add("leak2")
    run = fleet_playbook(PING, fleet.inventory())
    assert run.rc == 0, run
    started = [cmd for pid, cmd in process_tree.descendants() if pid not in before]
    # What leaked before: the per-connection sshd children and the ControlPersist masters on this side.
    assert len([cmd for cmd in started if cmd.startswith("sshd") and "-D" not in cmd]) >= 2, started
    assert len([cmd for cmd in started if cmd.startswith("ssh:") and "[mux]" in cmd]) >= 2, started
    fleet.stop()
    assert process_tree.survivors(ignore=before) == []
