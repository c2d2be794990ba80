# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which hosts each playbook plays on: a missing or unparsable inventory stops every playbook before any task;
localhost only when no inventory was given at all, and never for tune and reclaim unless named."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from conftest import REPO_ROOT

PLAYBOOKS = ("diagnose", "tune", "reclaim", "report")
READ_ONLY = ("diagnose", "report")
CHANGING = ("tune", "reclaim")
DEFAULT_INVENTORY = "/etc/ansible/hosts"
# The play that stops first: report.yml begins by importing diagnose.yml.
FIRST_PLAY = {"report": "diagnose"}


def playbook_path(name):
    return os.path.join(REPO_ROOT, "playbooks", name + ".yml")


def tasks_run(run):
    return [task["task"]["name"] for play in run.data.get("plays", []) for task in play.get("tasks", [])]


def listed_hosts(run):
    """--list-hosts output: the hosts of each play, in order."""
    plays, current = [], None
    for line in run.stdout.splitlines():
        if line.strip().startswith("hosts ("):
            current = []
            plays.append(current)
        elif current is not None and line.startswith("      ") and line.strip():
            current.append(line.strip())
        else:
            current = None
    return plays


def said(words, text):
    """``words`` appear in ``text``, however Ansible wrapped its lines (2.16 wraps warnings at 80 columns)."""
    return "".join(words.split()) in "".join(text.split())


def assert_stopped_before_any_task(run, words):
    assert run.rc != 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert tasks_run(run) == [], tasks_run(run)
    assert said(words, run.stderr), run.stderr[-3000:]


@pytest.fixture
def no_default_inventory():
    if os.path.exists(DEFAULT_INVENTORY):
        pytest.skip("%s exists on this machine: runs without -i use it" % DEFAULT_INVENTORY)


@pytest.mark.parametrize("playbook", PLAYBOOKS)
def test_missing_inventory_stops_before_any_task(run_playbook, tmp_path, playbook):
    missing = str(tmp_path / "nope.ini")
    run = run_playbook(playbook_path(playbook), inventory=missing, env={"ANSIBLE_INVENTORY_UNPARSED_WARNING": "true"})
    assert_stopped_before_any_task(run, "%s: the inventory %s does not exist, so nothing was run"
                                   % (FIRST_PLAY.get(playbook, playbook), missing))
    # Ansible's own warning is still shown.
    assert said("Unable to parse %s as an inventory source" % missing, run.stderr), run.stderr[-3000:]


@pytest.mark.parametrize("playbook, content", [(name, "[web\nweb1 ansible_host=\n") for name in PLAYBOOKS] + [
    ("tune", "[web]\n")], ids=["%s-unparsable" % name for name in PLAYBOOKS] + ["tune-no-hosts"])
def test_inventory_without_hosts_stops_before_any_task(run_playbook, tmp_path, playbook, content):
    inventory = tmp_path / "hosts.ini"
    inventory.write_text(content)
    run = run_playbook(playbook_path(playbook), inventory=str(inventory))
    assert_stopped_before_any_task(run, "%s: the inventory %s gave no hosts" % (FIRST_PLAY.get(playbook, playbook), inventory))


def test_one_missing_source_beside_a_good_one_stops_the_run(run_playbook, tmp_path):
    playbook = "tune"
    missing = str(tmp_path / "nope.ini")
    run = run_playbook(playbook_path(playbook), inventory="localhost,", args=("-c", "local", "-i", missing))
    assert_stopped_before_any_task(run, "the inventory %s does not exist" % missing)


def test_inventory_from_ansible_cfg_must_exist_too(run_playbook, tmp_path):
    """Users run the playbooks with their own ansible.cfg: a configured inventory is a given one."""
    playbook = "reclaim"
    missing = str(tmp_path / "inventory" / "hosts")
    config = tmp_path / "ansible.cfg"
    config.write_text("[defaults]\ninventory = %s\n" % missing)
    run = run_playbook(playbook_path(playbook), inventory=False, env={"ANSIBLE_CONFIG": str(config)})
    assert_stopped_before_any_task(run, "the inventory %s does not exist" % missing)


@pytest.mark.parametrize("playbook", CHANGING)
def test_changing_playbooks_never_play_on_the_implicit_localhost(run_playbook, no_default_inventory, playbook):
    run = run_playbook(playbook_path(playbook), inventory=False)
    assert_stopped_before_any_task(run, "%s changes the hosts it runs on, so it runs only on hosts you name" % playbook)


@pytest.mark.parametrize("playbook", CHANGING)
def test_changing_playbooks_play_on_localhost_when_named(run_playbook, no_default_inventory, playbook):
    run = run_playbook(playbook_path(playbook), inventory=False, extra_vars={"memfrag_hosts": "localhost"},
                       args=("--list-hosts",))
    assert run.rc == 0, run.stderr[-3000:]
    assert listed_hosts(run) == [["localhost"]]


@pytest.mark.parametrize("playbook", CHANGING)
def test_syntax_check_needs_no_inventory(run_playbook, no_default_inventory, playbook):
    run = run_playbook(playbook_path(playbook), inventory=False, args=("--syntax-check",))
    assert run.rc == 0, run.stderr[-3000:]


@pytest.mark.parametrize("playbook", READ_ONLY)
def test_read_only_playbooks_fall_back_to_localhost_without_inventory(run_playbook, no_default_inventory, playbook):
    run = run_playbook(playbook_path(playbook), inventory=False, args=("--list-hosts",))
    assert run.rc == 0, run.stderr[-3000:]
    assert listed_hosts(run) == [["localhost"]] * (2 if playbook == "report" else 1)


@pytest.mark.parametrize("playbook", PLAYBOOKS)
def test_inventory_hosts(run_playbook, tmp_path, playbook):
    inventory = tmp_path / "hosts.ini"
    inventory.write_text("[web]\nweb1\nweb2\n[db]\ndb1\n")
    run = run_playbook(playbook_path(playbook), inventory=str(inventory), args=("--list-hosts",))
    assert run.rc == 0, run.stderr[-3000:]
    assert [sorted(hosts) for hosts in listed_hosts(run)] == [["db1", "web1", "web2"]] * (2 if playbook == "report" else 1)


def test_memfrag_hosts_picks_from_the_inventory(run_playbook, tmp_path):
    inventory = tmp_path / "hosts.ini"
    inventory.write_text("[web]\nweb1\nweb2\n[db]\ndb1\n")
    run = run_playbook(playbook_path("report"), inventory=str(inventory), extra_vars={"memfrag_hosts": "db"},
                       args=("--list-hosts",))
    assert run.rc == 0, run.stderr[-3000:]
    assert listed_hosts(run) == [["db1"], ["db1"]], run.stdout


def test_report_playbook_on_a_capture(run_playbook, fixtures_dir, tmp_path):
    """report.yml end to end on localhost (the fleet tests run it over SSH): diagnose, then the three outputs."""
    out = tmp_path / "report"
    run = run_playbook(playbook_path("report"), extra_vars={
        "diagnose_proc_root": os.path.join(fixtures_dir, "proc", "diagnose-fragmented"), "report_output_dir": str(out)})
    assert run.rc == 0, run.stdout[-3000:] + run.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert [host["host"] for host in report["hosts"]] == ["localhost"]
    assert (out / "metrics" / "localhost.prom").read_text().count("memfrag_free_blocks{") > 0
    assert "<html" in (out / "index.html").read_text().lower()


def test_scripts_diagnose_shows_ansibles_inventory_warnings(tmp_path):
    """scripts/diagnose -i nope.ini: Ansible's warnings reach the user and nothing runs."""
    missing = str(tmp_path / "nope.ini")
    env = dict(os.environ, MEMFRAG_VENV=sys.prefix, ANSIBLE_NOCOLOR="1")
    for name in ("ANSIBLE_INVENTORY_UNPARSED_WARNING", "ANSIBLE_LOCALHOST_WARNING", "ANSIBLE_INVENTORY"):
        env.pop(name, None)
    proc = subprocess.run([os.path.join(REPO_ROOT, "scripts", "diagnose"), "-i", missing], capture_output=True,
                          text=True, env=env, timeout=900, check=False)
    output = " ".join((proc.stdout + proc.stderr).split())
    assert proc.returncode != 0, output[-3000:]
    # Ansible's own words: a warning by default, an error with the settings scripts/diagnose makes.
    assert re.search(r"(Unable|failed) to parse (inventory source )?%s" % re.escape(missing), output), output[-3000:]
    assert "Gather memory facts" not in output and "TASK [" not in output, output[-3000:]
