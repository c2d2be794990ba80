# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The report page at 10,000 synthetic hosts, opened in headless Chromium (Debian's, installed when missing).

It must render every host, show the fleet overview on the first screen, and fetch nothing. How long it takes and
how big it is are measured by tests/benchmarks/bench_report_scale.py, not asserted here.
"""

from __future__ import annotations

import json
import os

import pytest

from conftest import REPO_ROOT
from helpers import chromium
from helpers.synthetic_fleet import HOSTILE_NAMES, fleet
from ansible_collections.memfrag.linux.plugins.plugin_utils._fleet_files import write_report
from ansible_collections.memfrag.linux.plugins.plugin_utils._fleet_report import fleet_report

HOSTS = 10000
WIDTH, HEIGHT = 1400, 900

# Run by the DevTools protocol after the load event (the page itself has no script).
MEASURE = """JSON.stringify({
  rows: Array.from(document.querySelectorAll('#hosts .host')).map(r => r.dataset.host),
  sections: Array.from(document.querySelectorAll('#hosts [role=rowgroup]')).map(s => s.id),
  overview: document.getElementById('overview').getBoundingClientRect().toJSON(),
  cards: Array.from(document.querySelectorAll('#overview .card')).map(c => [c.id, c.getBoundingClientRect().toJSON()]),
  worstLinks: Array.from(document.querySelectorAll('#ov-worst a')).map(a => a.getAttribute('href')),
  hostsTop: document.getElementById('hosts').getBoundingClientRect().top,
  viewport: [innerWidth, innerHeight],
  scripts: document.scripts.length,
  charts: document.querySelectorAll('#hosts svg').length
})"""


@pytest.fixture(scope="module")
def output_dir():
    path = os.path.join(REPO_ROOT, "tests", "output")
    os.makedirs(path, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def big_report(tmp_path_factory):
    hostvars = fleet(HOSTS)
    report = fleet_report(hostvars, list(hostvars), 4, None, "2026-11-21T00:00:00Z")
    out = str(tmp_path_factory.mktemp("scale") / "report")
    write_report(out, report)
    return report, out


def test_ten_thousand_hosts_render_with_the_overview_on_the_first_screen(big_report, output_dir):
    report, out = big_report
    try:
        chromium.chromium()
    except chromium.ChromiumUnavailable as exc:
        pytest.skip(str(exc))
    shot = os.path.join(output_dir, "fleet-report-10000.png")
    seen = chromium.open_page(os.path.join(out, "index.html"), MEASURE, WIDTH, HEIGHT, screenshot=shot)
    page = json.loads(seen["measure"])
    # Every host is in the page, in the report's order (worst first), in one section per severity present.
    assert page["rows"] == [r["host"] for r in report["hosts"]]
    assert page["sections"] == ["sev-" + s for s, n in report["counts"].items() if n]
    assert page["charts"] == sum(len(r["zones"]) for r in report["hosts"])
    # The overview's four cards are whole on the first screen; the host list starts below it.
    assert page["viewport"] == [WIDTH, HEIGHT]
    assert [c[0] for c in page["cards"]] == ["ov-severity", "ov-worst", "ov-free", "ov-logs"]
    for card_id, box in page["cards"]:
        assert box["top"] >= 0 and box["left"] >= 0 and box["bottom"] <= HEIGHT and box["right"] <= WIDTH, (card_id, box)
    assert page["overview"]["bottom"] <= page["hostsTop"]
    assert len(page["worstLinks"]) == 10 and all(link.startswith("#h") for link in page["worstLinks"])
    # No script, and the page asked for nothing but itself.
    assert page["scripts"] == 0
    assert seen["requests"] == ["file://" + os.path.join(out, "index.html")]
    assert os.path.getsize(shot) > 20000


def test_hostile_names_stay_escaped_at_scale(big_report):
    report, out = big_report
    with open(os.path.join(out, "index.html")) as f:
        page = f.read()
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    with open(os.path.join(out, "report.json")) as f:
        files = json.load(f)["prometheus_files"]
    assert set(HOSTILE_NAMES) <= set(files)
    assert len(set(files.values())) == HOSTS
    assert sorted(os.listdir(os.path.join(out, "metrics"))) == sorted(os.path.basename(p) for p in files.values())
