# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The report playbook through real ansible-playbook on local-connection hosts with hostile inventory names.

Every host runs the real diagnose role on a fixture capture; one host fails (no Python), one is unreachable. The
report must come out whole, inside report_output_dir, one file per host under a safe name, and each diagnosed
host's textfile written by its own task.
"""

from __future__ import annotations

import json
import os
import sys

import pytest
import yaml

from conftest import FIXTURES, REPO_ROOT
from ansible_collections.memfrag.linux.plugins.plugin_utils._fleet_files import MARKER, safe_file_stem

PLAYBOOK = os.path.join(REPO_ROOT, "playbooks", "report.yml")
WRITE = "Write the fleet report on the controller"
TEXTFILE = "Write each host's node_exporter textfile"
HOSTILE = ("../../x", "a/b", ".hidden", "<b>web</b>", "x" * 240)


def _tree(root):
    out = {}
    for base, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(base, name)
            out[os.path.relpath(path, root)] = None if os.path.isdir(path) else open(path, "rb").read()
    return out


def _inventory(path, hosts):
    with open(path, "w") as f:
        yaml.safe_dump({"all": {"hosts": hosts}}, f, default_flow_style=False)
    return path


def _host(proc, **extra):
    hv = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
          "diagnose_proc_root": os.path.join(FIXTURES, "proc", proc)}
    hv.update(extra)
    return hv


def _results(run, name):
    """{host: result} of every run of the task ``name``."""
    found = {}
    for play in run.data.get("plays", []):
        for task in play.get("tasks", []):
            if task["task"]["name"].split(" : ")[-1] == name:
                found.update(task["hosts"])
    return found


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    return tmp_path_factory.mktemp("report")


@pytest.fixture
def fleet(sandbox):
    """Diagnosable hosts with hostile names (each its own textfile dir), a failing and an unreachable host."""
    hosts = {}
    textfiles = {}
    for i, name in enumerate(("web1",) + HOSTILE):
        textfiles[name] = str(sandbox / "node" / str(i))
        os.makedirs(textfiles[name], exist_ok=True)
        hosts[name] = _host("diagnose-fragmented" if i % 2 else "buddyinfo-x86-3zone-el8", report_textfile_dir=textfiles[name])
    hosts["no-python"] = _host("buddyinfo-x86-3zone-el8", ansible_python_interpreter="/nonexistent/python3",
                               report_textfile_dir=str(sandbox / "node" / "no-python"))
    hosts["down"] = {"ansible_connection": "ssh", "ansible_host": "127.0.0.1", "ansible_port": 1,
                     "report_textfile_dir": str(sandbox / "node" / "down")}
    return hosts, textfiles


def test_report_of_hostile_names_stays_inside_and_every_host_gets_its_textfile(run_playbook, sandbox, fleet):
    hosts, textfiles = fleet
    site = sandbox / "site"
    out = site / "memfrag"
    inventory = _inventory(str(sandbox / "inventory.yml"), hosts)
    before = set(_tree(str(sandbox)))
    run = run_playbook(PLAYBOOK, inventory=inventory, extra_vars={"report_output_dir": str(out)},
                       env={"ANSIBLE_TIMEOUT": "5", "ANSIBLE_FORKS": "4"})
    assert run.stats["down"]["unreachable"] == 1 and run.stats["no-python"]["failures"] == 1, run.stdout[-3000:]
    for name in textfiles:
        assert run.stats[name]["failures"] == 0 and run.stats[name]["unreachable"] == 0, (name, run.stderr[-3000:])

    # One execution of the controller task, whatever the number of hosts.
    written = _results(run, WRITE)
    assert len(written) == 1
    result = list(written.values())[0]
    assert result["changed"] and "results" not in result and result["dest"] == str(out)

    # Everything new under the sandbox is the report, the node_exporter files and ansible's own: nothing escaped.
    new = set(_tree(str(sandbox))) - before
    assert all(p.startswith(("site/memfrag", "node/")) or p in ("site",) for p in new), sorted(new)
    assert not (sandbox / "x.prom").exists() and not os.path.exists(os.path.join(str(sandbox), "..", "x.prom"))
    assert sorted(os.listdir(str(site))) == ["memfrag"]
    assert sorted(os.listdir(str(out))) == sorted([MARKER, "index.html", "metrics", "report.json"])

    with open(str(out / "report.json")) as f:
        report = json.load(f)
    by_host = dict((r["host"], r) for r in report["hosts"])
    assert set(by_host) == set(hosts)
    assert by_host["down"]["severity"] == "no_data" and by_host["no-python"]["severity"] == "no_data"
    assert by_host["../../x"]["severity"] in ("warning", "critical")
    files = report["prometheus_files"]
    assert set(files) == set(hosts)
    assert sorted(os.listdir(str(out / "metrics"))) == sorted(safe_file_stem(h) + ".prom" for h in hosts)
    assert files["../../x"] == "metrics/%2E.%2F..%2Fx.prom" and files["a/b"] == "metrics/a%2Fb.prom"

    # Each diagnosed host wrote its own textfile (its own task result), equal to its metrics file; the failed and
    # the unreachable host got none, and the report did not fail because of them.
    copies = _results(run, TEXTFILE)
    assert set(h for h, r in copies.items() if r.get("changed")) == set(textfiles)
    for name, directory in textfiles.items():
        with open(os.path.join(directory, "memfrag.prom")) as f:
            text = f.read()
        with open(os.path.join(str(out), files[name])) as f:
            assert f.read() == text
        assert "memfrag_up 1" in text
        assert os.listdir(directory) == ["memfrag.prom"]  # the temp file was renamed, not left
    assert not os.path.exists(str(sandbox / "node" / "no-python" / "memfrag.prom"))
    assert not os.path.exists(str(sandbox / "node" / "down" / "memfrag.prom"))

    page = (out / "index.html").read_text()
    assert page.count('class="row host ') == len(hosts) and "&lt;b&gt;web&lt;/b&gt;" in page and "<b>web</b>" not in page


def test_second_run_swaps_the_report_whole_and_skips_textfiles_once(run_playbook, sandbox, fleet):
    hosts, _textfiles = fleet
    out = sandbox / "site" / "memfrag"
    for hv in hosts.values():
        hv.pop("report_textfile_dir", None)
    hosts = dict((h, hv) for h, hv in hosts.items() if h in ("web1", "a/b", "down"))
    # An inventory variable may be a template: read in the host's own context.
    hosts["web1"]["memfrag_baseline"] = {"vm.min_free_kbytes": "{{ 1000 + 24 }}"}
    inventory = _inventory(str(sandbox / "inventory-2.yml"), hosts)
    run = run_playbook(PLAYBOOK, inventory=inventory, extra_vars={"report_output_dir": str(out)},
                       env={"ANSIBLE_TIMEOUT": "5"})
    assert run.stats["web1"]["failures"] == 0 and run.stats["down"]["unreachable"] == 1, run.stdout[-3000:]
    # The previous report's hosts are gone: the directory was replaced, not added to.
    assert sorted(os.listdir(str(out / "metrics"))) == sorted(safe_file_stem(h) + ".prom" for h in hosts)
    assert sorted(os.listdir(str(sandbox / "site"))) == ["memfrag"]  # no .new-/.old- directory left
    with open(str(out / "report.json")) as f:
        rows = dict((r["host"], r) for r in json.load(f)["hosts"])
    baselines = dict((t["name"], (t["baseline"], t["differs"])) for t in rows["web1"]["tunables"] if t["baseline"] is not None)
    assert baselines == {"min_free_kbytes": ("1024", True)}
    # No host has a textfile directory: the per-host task ran once (skipped), not once per host.
    copies = _results(run, TEXTFILE)
    assert len(copies) == 1 and list(copies.values())[0].get("skipped"), copies


REPORT_ONLY = """
- name: Report only
  hosts: all
  gather_facts: false
  roles:
    - role: memfrag.linux.report
"""


def test_check_mode_writes_nothing(run_playbook, sandbox):
    inventory = _inventory(str(sandbox / "inventory-check.yml"), {"h1": _host("buddyinfo-x86-3zone-el8")})
    out = sandbox / "check" / "memfrag"
    run = run_playbook(REPORT_ONLY, inventory=inventory, check=True,
                       extra_vars={"report_output_dir": str(out), "report_textfile_dir": str(sandbox / "tf")})
    assert run.rc == 0, run.stdout[-3000:]
    result = _results(run, WRITE)["h1"]
    assert result["changed"] and "would be written" in result["msg"] and result["textfiles"] == {}
    assert not (sandbox / "check").exists() and not (sandbox / "tf").exists()


def test_a_directory_that_is_not_a_report_is_refused(run_playbook, sandbox):
    inventory = _inventory(str(sandbox / "inventory-www.yml"), {"h1": _host("buddyinfo-x86-3zone-el8")})
    www = sandbox / "www"
    www.mkdir()
    (www / "index.php").write_text("<?php ?>")
    run = run_playbook(REPORT_ONLY, inventory=inventory, extra_vars={"report_output_dir": str(www)})
    assert run.rc != 0
    result = _results(run, WRITE)["h1"]
    assert result["failed"] and "not a memfrag report" in result["msg"] and "Traceback" not in result["msg"]
    assert sorted(os.listdir(str(www))) == ["index.php"]
    assert sorted(p for p in os.listdir(str(sandbox)) if p.startswith(".www")) == []


ODD_FACTS = """
- name: Facts of odd shapes
  hosts: odd
  gather_facts: false
  tasks:
    - name: A verdict with buddyinfo that is not numbers
      ansible.builtin.set_fact:
        memfrag_verdict: {severity: critical, summary: odd}
        memfrag_buddyinfo: {zones: [{node: 0, zone: Normal, free_blocks: [x, y]}]}
""" + REPORT_ONLY


def test_odd_facts_and_broken_templates_cost_one_host_not_the_report(run_playbook, sandbox):
    hosts = {"good": _host("buddyinfo-x86-3zone-el8"), "odd": _host("buddyinfo-x86-3zone-el8"),
             "broken": _host("buddyinfo-x86-3zone-el8", memfrag_baseline={"vm.min_free_kbytes": "{{ no_such_var }}"})}
    inventory = _inventory(str(sandbox / "inventory-odd.yml"), hosts)
    out = sandbox / "odd-report"
    run = run_playbook(ODD_FACTS, inventory=inventory, extra_vars={"report_output_dir": str(out)})
    assert run.rc == 0, run.stdout[-3000:]
    result = list(_results(run, WRITE).values())[0]
    warnings = " ".join(result.get("warnings", []))
    assert "'odd': facts not in the shape" in warnings and "'broken': memfrag_baseline cannot be templated" in warnings
    with open(str(out / "report.json")) as f:
        rows = dict((r["host"], r) for r in json.load(f)["hosts"])
    assert set(rows) == {"good", "odd", "broken"}
    assert rows["odd"]["severity"] == "no_data" and rows["odd"]["summary"].startswith("facts not in the shape")
