# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fleet report shaping, HTML structure and Prometheus text format."""

from __future__ import annotations

import html.parser
import json
import re

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.memfrag.linux.plugins.filter.fleet_report import (
    fleet_report,
    fleet_report_html,
    fleet_report_prometheus,
)
from ansible_collections.memfrag.linux.plugins.plugin_utils._fleet_html import zone_chart as fleet_report_html_zone_chart
from ansible_collections.memfrag.linux.plugins.module_utils._mm.fragmentation import (
    fragmentation_indexes,
    unusable_indexes,
)

PAGE = 4096


def zone(node, name, free_blocks):
    """A zone as buddyinfo_facts returns it, with indexes from the collection's own arithmetic."""
    return {
        "node": node, "zone": name, "free_blocks": free_blocks,
        "free_bytes": sum(b * PAGE << o for o, b in enumerate(free_blocks)),
        "free_bytes_at_or_above_order": [sum(b * PAGE << o for o, b in enumerate(free_blocks) if o >= k)
                                         for k in range(len(free_blocks))],
        "unusable_index": unusable_indexes(free_blocks), "fragmentation_index": fragmentation_indexes(free_blocks),
        "largest_free_order": max([o for o, b in enumerate(free_blocks) if b] or [-1]),
        "watermark_ok": [sum(b << o for o, b in enumerate(free_blocks) if o >= k) > 64 for k in range(len(free_blocks))],
    }


FRAGMENTED = [9000, 4000, 800, 20, 0, 0, 0, 0, 0, 0, 0]
HEALTHY = [100, 80, 60, 40, 30, 20, 10, 8, 4, 2, 600]


def host(severity, zones, tunables=None, findings=(), log=None, reclaim=None, kernel="6.1.0-test"):
    hv = {"ansible_facts": {"memfrag_buddyinfo": {"zones": zones, "page_size": PAGE, "tunables": tunables or {},
                                                  "kernel_release": kernel}},
          "memfrag_findings": list(findings),
          "memfrag_verdict": {"severity": severity, "summary": "%s summary" % severity}}
    if log is not None:
        hv["memfrag_log_counts"] = log
    if reclaim is not None:
        hv["memfrag_reclaim"] = reclaim
    return hv


@pytest.fixture
def hostvars():
    return {
        "web-ok": host("ok", [zone(0, "DMA32", HEALTHY), zone(0, "Normal", HEALTHY)],
                       tunables={"min_free_kbytes": "67584", "vfs_cache_pressure": "100"}),
        "db-crit": host("critical", [zone(0, "Normal", FRAGMENTED)],
                        tunables={"min_free_kbytes": "45056", "vfs_cache_pressure": "200"},
                        findings=[{"severity": "critical", "code": "page_alloc_failure", "message": "order:5 failures",
                                   "numbers": {"order": 5, "count": 3}}],
                        log={"counts": {"xfs_alloc_deadlock": 7, "page_alloc_failure": 3},
                             "last_seen": {"xfs_alloc_deadlock": "2026-11-20T10:00:00+00:00"}},
                        reclaim={"needed": True, "reason": "unusable 0.99", "target_met": False, "order": 4,
                                 "before_high_order_bytes": 1048576, "after_high_order_bytes": 5 * 1048576,
                                 "actions": [{"action": "compact_memory", "changed": True, "refused": None,
                                              "summary": "compact_memory in 0.1s"},
                                             {"action": "drop_caches pagecache", "changed": False, "refused": "dirty",
                                              "summary": ""}]}),
        "app-warn": host("warning", [zone(1, "Normal", FRAGMENTED)]),
        "gone": {},  # unreachable: no facts at all
    }


def test_rows_sorted_worst_first_and_counted(hostvars):
    report = fleet_report(hostvars, ["web-ok", "gone", "app-warn", "db-crit"], 4, None, "2026-11-21T00:00:00Z")
    assert [r["host"] for r in report["hosts"]] == ["db-crit", "app-warn", "gone", "web-ok"]
    assert report["counts"] == {"critical": 1, "warning": 1, "no_data": 1, "ok": 1}
    gone = report["hosts"][2]
    assert gone["severity"] == "no_data" and gone["zones"] == [] and "unreachable" in gone["summary"]
    assert report["hosts"][0]["kernel"] == "6.1.0-test"
    json.dumps(report)  # the role writes it as JSON


def test_zone_shaping_uses_the_order_that_matters(hostvars):
    report = fleet_report(hostvars, ["web-ok", "db-crit"], 4)
    rows = dict((r["host"], r) for r in report["hosts"])
    ok_zone = rows["web-ok"]["zones"][1]
    assert ok_zone["free_bytes_per_order"] == [b * PAGE * 2 ** o for o, b in enumerate(HEALTHY)]
    assert ok_zone["free_bytes"] == sum(ok_zone["free_bytes_per_order"])
    assert ok_zone["fragmentation_index"] == -1.0  # order-4 blocks exist
    assert rows["web-ok"]["order"] == 4
    # db-crit logged an order:5 failure: its indexes are reported at order 5.
    crit_zone = rows["db-crit"]["zones"][0]
    assert rows["db-crit"]["order"] == 5
    assert crit_zone["fragmentation_index"] == fragmentation_indexes(FRAGMENTED)[5]
    assert crit_zone["unusable_index"] == 1.0
    assert crit_zone["free_bytes_at_or_above_order"] == 0
    assert crit_zone["watermark_ok"] is False and ok_zone["watermark_ok"] is True


def test_tunables_against_baseline(hostvars):
    baseline = {"vm.min_free_kbytes": 67584, "vm.vfs_cache_pressure": "100", "vm.watermark_scale_factor": 200}
    rows = dict((r["host"], r) for r in fleet_report(hostvars, ["web-ok", "db-crit"], 4, baseline)["hosts"])
    tun = dict((t["name"], t) for t in rows["db-crit"]["tunables"])
    assert tun["min_free_kbytes"] == {"name": "min_free_kbytes", "current": "45056", "baseline": "67584", "differs": True}
    assert tun["watermark_scale_factor"]["current"] is None and tun["watermark_scale_factor"]["differs"]
    assert rows["db-crit"]["tunables_off_baseline"] == 3
    assert rows["web-ok"]["tunables_off_baseline"] == 1  # only the missing watermark_scale_factor


def test_per_host_baseline_when_none_given(hostvars):
    hostvars["web-ok"]["memfrag_baseline"] = {"vm.min_free_kbytes": "1"}
    hostvars["db-crit"]["sysctl_tuning_baseline"] = {"vm.vfs_cache_pressure": 200}
    rows = dict((r["host"], r) for r in fleet_report(hostvars, ["web-ok", "db-crit"], 4)["hosts"])
    assert [t["name"] for t in rows["web-ok"]["tunables"] if t["differs"]] == ["min_free_kbytes"]
    assert [t for t in rows["db-crit"]["tunables"] if t["baseline"] is not None] == [
        {"name": "vfs_cache_pressure", "current": "200", "baseline": "200", "differs": False}]


class _Collect(html.parser.HTMLParser):
    def __init__(self):
        html.parser.HTMLParser.__init__(self)
        self.tags = []
        self.stack = []
        self.titles = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self.stack.append(tag)

    def handle_endtag(self, tag):
        if self.stack and self.stack[-1] == tag:
            self.stack.pop()

    def handle_data(self, data):
        if self.stack and self.stack[-1] == "title" and "svg" in self.stack:
            self.titles.append(data)


def _parse(page):
    parser = _Collect()
    parser.feed(page)
    return parser


def _bars(d):
    """(x, height) of every bar of a chart path: "M<x> <base>v-<h>h<w>v<h>" per bar."""
    return [(int(x), int(h)) for x, h in re.findall(r"M(\d+) \d+v-(\d+)h\d+v\d+", d)]


def test_html_is_self_contained_with_a_row_and_a_chart_per_zone(hostvars):
    hostvars["evil<script>"] = host("warning", [zone(0, "Normal", HEALTHY)], findings=[
        {"severity": "warning", "code": "x", "message": "<img src=http://x/>"},
        {"severity": "warning", "code": "y", "message": "second <b>warning</b>"}])
    report = fleet_report(hostvars, sorted(hostvars), 4)
    page = fleet_report_html(report, "Fleet & friends")
    parser = _parse(page)
    rows = [a for tag, a in parser.tags if tag == "div" and "host" in a.get("class", "").split()]
    assert [a["data-host"] for a in rows] == [r["host"] for r in report["hosts"]]
    assert [a["id"] for a in rows] == ["h%d" % i for i in range(len(rows))]
    # One chart per zone in the host list (the overview's two histograms come first).
    charts = [a for tag, a in parser.tags if tag == "svg"]
    assert len(charts) == 2 + sum(len(r["zones"]) for r in report["hosts"]) == 2 + 5
    zones = [z for r in report["hosts"] for z in r["zones"]]
    # Each zone chart's tooltip lists its free blocks of every order, in order.
    assert parser.titles[-5:] == ["free blocks by order 0-%d: %s" % (len(z["free_blocks"]) - 1, " ".join(map(str, z["free_blocks"])))
                                  for z in zones]
    assert not [tag for tag, _attrs in parser.tags if tag in ("script", "img", "link", "iframe", "object", "embed")]
    assert not [a for _tag, a in parser.tags if any(v and "http" in v for k, v in a.items())]
    assert not [a for _tag, a in parser.tags if any(k.startswith("on") for k in a)]
    csp = [a["content"] for tag, a in parser.tags if tag == "meta" and a.get("http-equiv") == "Content-Security-Policy"]
    assert csp and csp[0].startswith("default-src 'none'")
    assert "Fleet &amp; friends" in page and "evil&lt;script&gt;" in page and "second &lt;b&gt;warning&lt;/b&gt;" in page
    assert "drop_caches pagecache: refused: dirty" in page and "1 MiB &rarr; 5 MiB" in page


def test_zone_chart_bars_follow_the_free_memory_per_order():
    shaped = fleet_report({"h": host("critical", [zone(0, "Normal", FRAGMENTED)])}, ["h"], 4)["hosts"][0]["zones"][0]
    svg = fleet_report_html_zone_chart(shaped, 4)
    paths = dict(re.findall(r'<path class="(lo|hi)" d="([^"]+)"', svg))
    nonzero = [o for o, b in enumerate(FRAGMENTED) if b]
    assert [x // 12 for x, _h in _bars(paths["lo"])] == [o for o in nonzero if o < 4] and "hi" not in paths
    heights = dict((x // 12, h) for x, h in _bars(paths["lo"]))
    total = float(sum(shaped["free_bytes_per_order"]))
    for order, h in heights.items():
        assert h == max(1, int(round(40 * shaped["free_bytes_per_order"][order] / total)))
    healthy = fleet_report({"h": host("ok", [zone(0, "Normal", HEALTHY)])}, ["h"], 4)["hosts"][0]["zones"][0]
    paths = dict(re.findall(r'<path class="(lo|hi)" d="([^"]+)"', fleet_report_html_zone_chart(healthy, 4)))
    assert [x // 12 for x, _h in _bars(paths["hi"])] == list(range(4, 11))
    assert [x // 12 for x, _h in _bars(paths["lo"])] == [0, 1, 2, 3]


def test_overview_comes_first_and_sums_the_fleet(hostvars):
    report = fleet_report(hostvars, ["web-ok", "gone", "app-warn", "db-crit"], 4)
    ov = report["overview"]
    assert ov["hosts"] == 4 and ov["hosts_with_data"] == 3
    assert [w["host"] for w in ov["worst"]] == ["db-crit", "app-warn"]
    assert sum(b["hosts"] for b in ov["free_at_order"]) == 3
    assert sum(b["hosts"] for b in ov["unusable_share"]) == 3
    # db-crit (order 5) and app-warn have nothing free at or above their order; web-ok has gigabytes.
    assert ov["free_at_order"][0] == {"from_bytes": 0, "below_bytes": 1, "hosts": 2}
    assert ov["unusable_share"][-1]["hosts"] == 2
    assert ov["log_events"]["xfs_alloc_deadlock"] == {"events": 7, "hosts": 1, "last_seen": "2026-11-20T10:00:00+00:00"}
    assert ov["log_events"]["oom_kill"] == {"events": 0, "hosts": 0, "last_seen": None}
    assert ov["log_scanned_hosts"] == 1
    assert ov["orders"] == [{"order": 4, "hosts": 2}, {"order": 5, "hosts": 1}]
    assert ov["reclaim"] == {"run": 1, "needed": 1, "target_met": 0, "target_missed": 1}
    page = fleet_report_html(report)
    parser = _parse(page)
    ids = [a.get("id") for _tag, a in parser.tags if a.get("id")]
    assert ids.index("overview") < ids.index("ov-severity") < ids.index("ov-worst") < ids.index("ov-free") \
        < ids.index("ov-logs") < ids.index("hosts") < ids.index("h0")
    # The worst hosts link to their rows; the severity legend to the sections of the host list.
    links = [a["href"] for tag, a in parser.tags if tag == "a" and a.get("href", "").startswith("#")]
    rows = dict((a["data-host"], a["id"]) for tag, a in parser.tags if a.get("data-host"))
    assert "#" + rows["db-crit"] in links and "#" + rows["app-warn"] in links
    assert set("#sev-" + s for s in ("critical", "warning", "no_data", "ok")) <= set(links)
    assert all(link[1:] in ids for link in links)
    assert "order 5 on 1 hosts" in page  # db-crit is judged at the order of its logged failure
    assert "xfs_alloc_deadlock</td><td class=\"n\">7</td><td class=\"n\">1</td><td>2026-11-20 10:00 UTC" in page


def test_rows_show_the_tunables_that_stand_out(hostvars):
    for name in ("a", "b", "c"):
        hostvars[name] = host("ok", [zone(0, "Normal", HEALTHY)], tunables={"min_free_kbytes": "67584", "swappiness": "60"})
    hostvars["odd"] = host("ok", [zone(0, "Normal", HEALTHY)], tunables={"min_free_kbytes": "67584", "swappiness": "10"})
    report = fleet_report(hostvars, ["a", "b", "c", "odd"], 4, {"vm.min_free_kbytes": 90112})
    assert report["overview"]["tunables_usual"] == {"min_free_kbytes": "67584", "swappiness": "60"}
    assert report["overview"]["tunables_off_baseline_hosts"] == 4
    page = fleet_report_html(report)
    row = re.search(r'data-host="odd".*?\n', page).group(0)
    assert "swappiness 10 <span class=\"k\">fleet 60</span>" in row and "min_free_kbytes 67584</span> <span class=\"k\">baseline 90112" in row
    row = re.search(r'data-host="a".*?\n', page).group(0)
    assert "swappiness" not in row


def test_rows_within_a_severity_put_the_least_usable_memory_first():
    hostvars = {"big": host("warning", [zone(0, "Normal", [0, 0, 0, 0, 900, 0, 0, 0, 0, 0, 0])]),
                "small": host("warning", [zone(0, "Normal", [0, 0, 0, 0, 20, 0, 0, 0, 0, 0, 0])]),
                "none": host("warning", [])}
    report = fleet_report(hostvars, ["big", "none", "small"], 4)
    assert [r["host"] for r in report["hosts"]] == ["small", "big", "none"]
    assert report["hosts"][0]["free_bytes_at_or_above_order"] == 20 * PAGE * 16


def test_facts_not_injected_as_variables_are_read_from_ansible_facts(hostvars):
    hv = hostvars["db-crit"]
    moved = {"ansible_facts": dict(hv["ansible_facts"], memfrag_verdict=hv["memfrag_verdict"],
                                   memfrag_findings=hv["memfrag_findings"], memfrag_log_counts=hv["memfrag_log_counts"]),
             "memfrag_reclaim": hv["memfrag_reclaim"]}
    a = fleet_report({"h": hv}, ["h"], 4, None, "x")
    b = fleet_report({"h": moved}, ["h"], 4, None, "x")
    assert a == b and a["hosts"][0]["severity"] == "critical"


def test_hostile_shapes_become_no_data_or_a_clear_error():
    odd = {"ansible_facts": "nope", "memfrag_verdict": ["critical"], "memfrag_findings": "x", "memfrag_log_counts": 3}
    row = fleet_report({"h": odd, "i": None}, ["h", "i", "h"], 4)["hosts"]
    assert [(r["host"], r["severity"], r["zones"]) for r in row] == [("h", "no_data", []), ("i", "no_data", [])]


# A strict reader of the text exposition format 0.0.4 (what node_exporter's textfile collector parses).
_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*",?)*)\})? '
                     r'(-?[0-9.]+(?:e[+-]?\d+)?|NaN|[+-]Inf)$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"')


def parse_prometheus(text):
    assert text.endswith("\n")
    families, samples, typed = {}, [], set()
    for line in text.splitlines():
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            name, mtype = line.split(" ")[2:4]
            assert name not in typed, "TYPE twice for %s" % name
            typed.add(name)
            families[name] = mtype
            continue
        match = _SAMPLE.match(line)
        assert match, "not a valid sample line: %r" % line
        name = match.group(1)
        assert name in typed, "sample before its TYPE: %r" % line
        labels = dict((k, v.replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\"))
                      for k, v in _LABEL.findall(match.group(3) or ""))
        samples.append((name, labels, float(match.group(4))))
    keys = [(n, tuple(sorted(l.items()))) for n, l, _value in samples]
    assert len(keys) == len(set(keys)), "duplicate series"
    return families, samples


def test_prometheus_text_for_a_critical_host(hostvars):
    report = fleet_report(hostvars, ["db-crit"], 4, {"vm.min_free_kbytes": 67584}, "2026-11-21T00:00:00Z")
    text = fleet_report_prometheus(report["hosts"][0], report["generated"])
    families, samples = parse_prometheus(text)
    assert all(name.startswith("memfrag_") and mtype == "gauge" for name, mtype in families.items())
    value = dict(((n, tuple(sorted(l.items()))), v) for n, l, v in samples)
    for order, blocks in enumerate(FRAGMENTED):
        assert value[("memfrag_free_blocks", (("node", "0"), ("order", str(order)), ("zone", "Normal")))] == blocks
    assert value[("memfrag_verdict_severity", ())] == 2
    assert value[("memfrag_kernel_log_events", (("kind", "xfs_alloc_deadlock"),))] == 7
    assert value[("memfrag_kernel_log_events", (("kind", "oom_kill"),))] == 0
    assert value[("memfrag_kernel_log_last_seen_timestamp_seconds", (("kind", "xfs_alloc_deadlock"),))] == 1795168800
    assert value[("memfrag_fragmentation_index", (("node", "0"), ("order", "5"), ("zone", "Normal")))] == \
        fragmentation_indexes(FRAGMENTED)[5]
    assert value[("memfrag_vm_tunable", (("name", "min_free_kbytes"),))] == 45056
    assert value[("memfrag_vm_tunable_off_baseline", (("name", "min_free_kbytes"),))] == 1
    assert value[("memfrag_reclaim_needed", ())] == 1 and value[("memfrag_reclaim_target_met", ())] == 0
    assert value[("memfrag_reclaim_action", (("action", "compact_memory"),))] == 1
    assert value[("memfrag_reclaim_action", (("action", "drop_caches pagecache"),))] == 0  # refused
    assert value[("memfrag_reclaim_high_order_bytes", (("stage", "after"),))] == 5 * 1048576
    assert value[("memfrag_report_timestamp_seconds", ())] == 1795219200


def test_prometheus_keeps_each_series_once(hostvars):
    reclaim = dict(hostvars["db-crit"]["memfrag_reclaim"])
    reclaim["actions"] = [{"action": "compact_memory", "changed": True}, {"action": "compact_memory", "changed": False}]
    hostvars["db-crit"]["memfrag_reclaim"] = reclaim
    hostvars["db-crit"]["ansible_facts"]["memfrag_buddyinfo"]["zones"].append(zone(0, "Normal", HEALTHY))
    row = fleet_report(hostvars, ["db-crit"], 4)["hosts"][0]
    families, samples = parse_prometheus(fleet_report_prometheus(row))  # asserts no series twice
    value = dict(((n, tuple(sorted(l.items()))), v) for n, l, v in samples)
    assert value[("memfrag_reclaim_action", (("action", "compact_memory"),))] == 1
    assert value[("memfrag_reclaim_action", (("action", "compact_memory #2"),))] == 0
    # The zone listed twice keeps its first numbers.
    assert value[("memfrag_free_blocks", (("node", "0"), ("order", "0"), ("zone", "Normal")))] == FRAGMENTED[0]


def test_prometheus_for_unreachable_host_and_label_escaping(hostvars):
    report = fleet_report(hostvars, ["gone"], 4)
    families, samples = parse_prometheus(fleet_report_prometheus(report["hosts"][0]))
    assert samples == [("memfrag_up", {}, 0.0)]
    hostvars["odd"] = host("ok", [zone(0, 'No"r\\m\nal', [1, 2])])
    row = fleet_report(hostvars, ["odd"], 4)["hosts"][0]
    samples = parse_prometheus(fleet_report_prometheus(row))[1]
    assert {l["zone"] for n, l, v in samples if n == "memfrag_free_blocks"} == {'No"r\\m\nal'}


@pytest.mark.parametrize("call, message", [
    (lambda: fleet_report("nope", []), "expected hostvars"),
    (lambda: fleet_report({}, "web"), "hosts must be a list"),
    (lambda: fleet_report({}, [], "four"), "order must be an integer"),
    (lambda: fleet_report({"h": {"ansible_facts": {"memfrag_buddyinfo": {"zones": [{"free_blocks": ["x"]}]}},
                                 "memfrag_verdict": {"severity": "ok"}}}, ["h"]), "not in the shape"),
    (lambda: fleet_report_html({"hosts": []}), "expected the output"),
    (lambda: fleet_report_prometheus({"nope": 1}), "expected one entry"),
])
def test_bad_input_is_a_clear_filter_error(call, message):
    with pytest.raises(AnsibleFilterError, match=message):
        call()


def test_worst_xfs_files_reach_the_row_and_the_page(hostvars):
    hostvars["db-crit"]["memfrag_xfs_files"] = {
        "scanned": True, "found": 9, "stopped_early": True,
        "files": [{"path": "/var/lib/docker/<overlay>.img", "extents": 91234, "alloc_bytes": 1 << 20, "alloc_order": 8,
                   "inode": 1}] * 7}
    hostvars["web-ok"]["memfrag_xfs_files"] = {"scanned": False, "files": [{"path": "/x", "extents": 1}]}
    rows = dict((r["host"], r) for r in fleet_report(hostvars, ["db-crit", "web-ok"], 4)["hosts"])
    xfs = rows["db-crit"]["xfs_files"]
    assert xfs["found"] == 9 and xfs["stopped_early"] and len(xfs["files"]) == 5
    assert xfs["files"][0] == {"path": "/var/lib/docker/<overlay>.img", "extents": 91234, "alloc_bytes": 1 << 20,
                               "alloc_order": 8}
    assert rows["web-ok"]["xfs_files"] is None
    page = fleet_report_html(fleet_report(hostvars, ["db-crit", "web-ok"], 4))
    assert page.count("/var/lib/docker/&lt;overlay&gt;.img: 91234 extents (map order 8)") == 5
    assert "(scan stopped early)" in page
