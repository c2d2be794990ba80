# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Property-based fuzzing of every filter's entry point (issue 10, item 4).

Filters take facts that passed through templates, user variables and other hosts: any JSON-like value
can arrive. Property: a filter returns, or raises AnsibleFilterError with a message; never another
exception. Inputs are real facts (gathered from a fixture tree) with one value replaced by a hostile one,
and free JSON-like values. Fixed seed and a small budget in the suite (MEMFRAG_FUZZ_EXAMPLES for more).
"""

from __future__ import annotations

import copy
import os

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

from ansible.errors import AnsibleFilterError  # noqa: E402

from ansible_collections.memfrag.linux.plugins.filter.diagnose import findings, host_verdict  # noqa: E402
from ansible_collections.memfrag.linux.plugins.filter.fleet_report import fleet_report, fleet_report_html, fleet_report_prometheus  # noqa: E402
from ansible_collections.memfrag.linux.plugins.filter.gfp_flags import gfp_flags  # noqa: E402
from ansible_collections.memfrag.linux.plugins.filter.query import query  # noqa: E402
from ansible_collections.memfrag.linux.plugins.filter.reclaim import reclaim_need  # noqa: E402
from ansible_collections.memfrag.linux.plugins.module_utils._facts.buddyinfo import gather as gather_buddyinfo  # noqa: E402
from ansible_collections.memfrag.linux.plugins.module_utils._facts.meminfo import gather as gather_meminfo  # noqa: E402
from ansible_collections.memfrag.linux.tests.helpers.hostile_tree import FIXTURE_TREE  # noqa: E402

EXAMPLES = int(os.environ.get("MEMFRAG_FUZZ_EXAMPLES", "60"))
# The suite replays the same inputs every run; the benchmark can ask for new ones (MEMFRAG_FUZZ_RANDOM=1).
FIXED_SEED = not os.environ.get("MEMFRAG_FUZZ_RANDOM")
FUZZ = settings(max_examples=EXAMPLES, derandomize=FIXED_SEED, database=None, deadline=None, print_blob=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

BUDDYINFO = gather_buddyinfo(FIXTURE_TREE, 4096)[0]
MEMINFO = gather_meminfo(FIXTURE_TREE, 4096, 5, ("meminfo",))[0]
LOG_SCAN = {"counts": {"oom_kill": 2, "page_alloc_failure": 1}, "first_seen": {"oom_kill": "2024-03-01T08:00:00"},
            "last_seen": {"oom_kill": "2024-03-02T08:00:00"}}

SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=-(1 << 70), max_value=1 << 70),
    st.sampled_from((10 ** 100, -1, 1 << 64, "9" * 5000, "-5", "", "Normal", "\u00b2", "1e400", "nan")),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20))
JSON = st.recursive(
    SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=10), inner, max_size=5)),
    max_leaves=20)


def _paths(value, prefix=()):
    """Every path (tuple of keys/indexes) into nested dicts and lists."""
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, prefix + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, prefix + (index,))


@st.composite
def damaged(draw, facts):
    """``facts`` with one value, anywhere in it, replaced by a hostile one."""
    facts = copy.deepcopy(facts)
    paths = [path for path in _paths(facts) if path]
    path = draw(st.sampled_from(paths))
    target = facts
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = draw(JSON)
    return facts


def _clean(call):
    try:
        call()
    except AnsibleFilterError as exc:
        assert str(exc)


@FUZZ
@given(st.one_of(damaged(BUDDYINFO), JSON), st.one_of(damaged(MEMINFO), st.none(), JSON),
       st.one_of(damaged(LOG_SCAN), st.none(), JSON), st.one_of(st.none(), st.dictionaries(
           st.sampled_from(("order", "zones", "min_zone_mb", "unusable_warning", "unusable_critical", "bogus")), JSON, max_size=3)))
def test_findings_and_verdict(buddyinfo, meminfo, log_scan, thresholds):
    try:
        result = findings(buddyinfo, meminfo, log_scan, thresholds)
    except AnsibleFilterError as exc:
        assert str(exc).startswith("findings: ")
        return
    assert host_verdict(result)["severity"] in ("ok", "warning", "critical")


@FUZZ
@given(st.one_of(JSON, st.lists(st.fixed_dictionaries({"severity": JSON, "message": JSON}), max_size=4)))
def test_verdict(items):
    _clean(lambda: host_verdict(items))


EXPRESSIONS = st.lists(st.sampled_from(("zones", "[", "]", "[0]", "[*]", ".", "free_bytes", "|", "length(@)", "to_number(@)",
                                        "max_by(@, &free_bytes)", "sort(@)", "?", "==", "`1`", "'x'", "(", ")", "&", "!",
                                        "@", "*", "{a: b}", "sum(@)", "abs(@)", "join(',', @)", "-1", ":", "::-1")),
                       min_size=1, max_size=12).map("".join)


@FUZZ
@given(st.one_of(st.just(BUDDYINFO), JSON), st.one_of(EXPRESSIONS, JSON))
def test_query(data, expression):
    _clean(lambda: query(data, expression))


@FUZZ
@given(st.one_of(damaged(BUDDYINFO), JSON), st.one_of(st.just(4), JSON), st.one_of(st.just(256), JSON),
       st.one_of(damaged(LOG_SCAN), st.none(), JSON))
def test_reclaim_need(zones, order, target_mb, log_scan):
    _clean(lambda: reclaim_need(zones, order, target_mb, ("Normal", "DMA32"), log_scan))


HOST_FACTS = st.one_of(st.just({"memfrag_buddyinfo": BUDDYINFO}), JSON.map(lambda value: {"memfrag_buddyinfo": value}),
                       damaged({"memfrag_buddyinfo": BUDDYINFO}))


@FUZZ
@given(st.one_of(st.fixed_dictionaries({"web1": HOST_FACTS}), JSON), st.one_of(st.just(["web1"]), JSON),
       st.one_of(st.just(4), JSON))
def test_fleet_report(hostvars, hosts, order):
    try:
        report = fleet_report(hostvars, hosts, order)
    except AnsibleFilterError as exc:
        assert str(exc)
        return
    _clean(lambda: fleet_report_html(report))
    for row in report.get("hosts", []):
        _clean(lambda: fleet_report_prometheus(row))


@FUZZ
@given(st.one_of(JSON, st.sampled_from(("0x6000c0", "0x" + "f" * 5000, "mode:0x100cca", "-0x1", "0x"))),
       st.one_of(JSON, st.sampled_from(("5.14.0", "4.18.0-80.el8.x86_64", "9" * 5000 + ".1"))))
def test_gfp_flags(mode, release):
    _clean(lambda: gfp_flags(mode, release))
