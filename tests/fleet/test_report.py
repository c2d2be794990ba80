# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet report end to end: diagnose + report over SSH on netns hosts, opened in headless Chromium."""

from __future__ import annotations

import json
import os
import re
import shutil

import pytest

from conftest import new_fleet, playbook_runner
from helpers import chromium


@pytest.fixture(scope="module")
def reported_fleet(request, netns_base, tmp_path_factory):
    """Three reachable hosts with different memory pictures, one unreachable; diagnose + report."""
    tmp_path = tmp_path_factory.mktemp("report")
    netns_fleet = new_fleet(request, netns_base, tmp_path)
    fleet_playbook = playbook_runner(tmp_path)
    netns_fleet.add("web1")
    netns_fleet.add("db1")
    netns_fleet.add("app1")
    netns_fleet.add("down1", reachable=False)
    # db1: shattered free memory (order 0-2 only) in its fixture buddyinfo.
    trees = netns_fleet.trees
    with open(os.path.join(trees["db1"]["proc_root"], "buddyinfo")) as f:
        text = f.read()
    shattered = []
    for line in text.splitlines():
        head, counts = line.split("zone", 1)
        name, *blocks = counts.split()
        blocks = [str(int(b) * (4 if i < 3 else 0) + (5000 if i == 0 else 0)) for i, b in enumerate(blocks)]
        shattered.append("%szone %8s %s" % (head, name, " ".join("%6s" % b for b in blocks)))
    with open(os.path.join(trees["db1"]["proc_root"], "buddyinfo"), "w") as f:
        f.write("\n".join(shattered) + "\n")
    hosts = netns_fleet.inventory()
    for name, hv in hosts.items():
        hv["diagnose_proc_root"] = trees[name]["proc_root"]
        hv["report_textfile_dir"] = os.path.join(trees[name]["config_root"], "var/lib/node_exporter")
    out = str(tmp_path / "report")
    run = fleet_playbook("report.yml", hosts, {"report_output_dir": out,
                                               "report_baseline": {"vm.min_free_kbytes": 67584}})
    return netns_fleet, run, out


def test_report_files_for_every_host(reported_fleet):
    fleet, run, out = reported_fleet
    assert run.stats["down1"]["unreachable"] == 1, run
    for name in ("web1", "db1", "app1"):
        assert run.stats[name]["failures"] == 0 and run.stats[name]["unreachable"] == 0, (name, run)
    with open(os.path.join(out, "report.json")) as f:
        report = json.load(f)
    by_host = dict((r["host"], r) for r in report["hosts"])
    assert set(by_host) == {"web1", "db1", "app1", "down1"}
    assert by_host["down1"]["severity"] == "no_data"
    assert by_host["db1"]["severity"] in ("warning", "critical")
    assert report["hosts"][0]["host"] == "db1" or report["hosts"][0]["severity"] == "critical"
    assert [r["severity"] for r in report["hosts"]] == sorted(
        [r["severity"] for r in report["hosts"]], key=["critical", "warning", "no_data", "ok"].index)
    # The controller files came from one task execution; each reachable host wrote its textfile in its own
    # node_exporter directory with its own task, over SSH; the unreachable one none.
    written = run.results("Write the fleet report on the controller", "web1") + \
        run.results("Write the fleet report on the controller", "db1") + run.results("Write the fleet report on the controller", "app1")
    assert len(written) == 1 and written[0]["changed"], written
    for name in ("web1", "db1", "app1"):
        copies = run.results("Write each host's node_exporter textfile", name)
        assert len(copies) == 1 and copies[0]["changed"], (name, copies)
        prom = os.path.join(fleet.trees[name]["config_root"], "var/lib/node_exporter/memfrag.prom")
        with open(prom) as f:
            text = f.read()
        assert "memfrag_up 1" in text and re.search(r'memfrag_free_blocks\{node="0",zone="\w+",order="0"\} \d+', text)
        assert report["prometheus_files"][name] == "metrics/%s.prom" % name
        with open(os.path.join(out, "metrics", name + ".prom")) as f:
            assert f.read() == text
    assert not os.path.exists(os.path.join(fleet.trees["down1"]["config_root"], "var/lib/node_exporter/memfrag.prom"))
    with open(os.path.join(out, "metrics", "down1.prom")) as f:
        assert "memfrag_up 0" in f.read()


MEASURE = """JSON.stringify({
  rows: Array.from(document.querySelectorAll('#hosts .host')).map(r => [r.dataset.severity, r.dataset.host]),
  charts: Array.from(document.querySelectorAll('#hosts .host svg')).map(s => s.querySelectorAll('path').length),
  titles: Array.from(document.querySelectorAll('#hosts .host svg title')).map(t => t.textContent),
  overviewBottom: document.getElementById('overview').getBoundingClientRect().bottom,
  scripts: document.scripts.length
})"""


def test_report_renders_in_headless_chromium(reported_fleet, output_dir):
    _fleet, run, out = reported_fleet
    page = os.path.join(out, "index.html")
    with open(os.path.join(out, "report.json")) as f:
        report = json.load(f)
    try:
        chromium.chromium()
    except chromium.ChromiumUnavailable as exc:
        pytest.skip("Debian's chromium cannot be installed here: %s" % exc)
    shot = os.path.join(output_dir, "fleet-report.png")
    if os.path.exists(shot):
        os.unlink(shot)
    seen = chromium.open_page(page, MEASURE, 1400, 900, screenshot=shot)
    dom = json.loads(seen["measure"])
    assert [h for _sev, h in dom["rows"]] == [r["host"] for r in report["hosts"]]
    assert [s for s, _h in dom["rows"]] == [r["severity"] for r in report["hosts"]]
    zones = [z for r in report["hosts"] for z in r["zones"]]
    assert len(zones) >= 3 and len(dom["charts"]) == len(zones)
    # Each chart lists its zone's free blocks per order and draws a bar for every order with free blocks.
    assert dom["titles"] == ["free blocks by order 0-%d: %s" % (len(z["free_blocks"]) - 1, " ".join(map(str, z["free_blocks"])))
                             for z in zones]
    assert all(paths >= 1 for paths, z in zip(dom["charts"], zones) if any(z["free_blocks"]))
    assert dom["overviewBottom"] <= 900 and dom["scripts"] == 0
    assert seen["requests"] == ["file://" + page]
    assert os.path.getsize(shot) > 10000
    shutil.copy(page, os.path.join(output_dir, "fleet-report.html"))
