# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every era's message forms, line prefixes, spoofed lines, and the ``since`` syntax."""

from __future__ import annotations

import calendar
import datetime
import os
import time

import pytest
import yaml

from ansible_collections.memfrag.linux.plugins.module_utils._kernel_log.kinds import KINDS
from ansible_collections.memfrag.linux.plugins.module_utils._kernel_log.patterns import (
    FORM_KIND, FORMS, NEEDLES, classify_message, confirm_line, iso, parse_prefix, parse_since)
from ansible_collections.memfrag.linux.plugins.module_utils._kernel_log.scan import Summary, feed_line_hit
from ansible_collections.memfrag.linux.plugins.module_utils._kernel_log.sources import LineHit

HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, "cases", "kernel_log_lines.yml")) as handle:
    CASES = yaml.safe_load(handle)

REFERENCE = time.mktime((2024, 6, 1, 12, 0, 0, 0, 0, -1))
DEFAULT_RELEASE = "3.10.0-1160.el7.x86_64"


def _enc(text):
    return None if text is None else text.encode("utf-8")


def _run(case):
    summary = Summary(None, 10)
    hit = LineHit(0, _enc(case["line"]), _enc(case.get("previous")), _enc(case.get("following")))
    feed_line_hit(summary, hit, "/var/log/test", REFERENCE, str(case.get("release", DEFAULT_RELEASE)))
    return summary


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_line(case):
    summary = _run(case)
    form = case["form"]
    if form is None:
        assert sum(summary.forms.values()) == 0, summary.forms
        assert summary.events_total == 0
        for counter in ("not_kernel",):
            assert summary.ignored[counter] == (1 if case.get("ignored") == counter else 0)
        return
    assert summary.forms[form] == 1, summary.forms
    assert sum(summary.forms.values()) == 1
    kind = FORM_KIND.get(form)
    if kind is None:  # an OOM report part: counted as a form, not a kill
        assert summary.events_total == 0 and sum(summary.counts.values()) == 0
        fields = classify_message(parse_prefix(case["line"], REFERENCE).message, str(case.get("release", DEFAULT_RELEASE))).fields
        for key, value in (case.get("fields") or {}).items():
            assert fields.get(key) == value, key
        return
    assert summary.counts[kind] == 1
    event = summary.events[-1]
    assert event["kind"] == kind and event["form"] == form and event["source"] == "files"
    if "origin" in case:
        assert event["origin"] == case["origin"]
    for key, value in (case.get("fields") or {}).items():
        assert event.get(key) == value, (key, event)
    if "timestamp_local" in case:
        assert event["timestamp"] == iso(time.mktime(tuple(case["timestamp_local"]) + (0, 0, -1)))
    if "timestamp_utc" in case:
        assert event["timestamp"] == iso(calendar.timegm(tuple(case["timestamp_utc"]) + (0, 0, 0)))


@pytest.mark.parametrize("case", [c for c in CASES if c["form"]], ids=[c["id"] for c in CASES if c["form"]])
def test_prefilter_needles_cover_every_form(case):
    # The fast path only decodes lines holding a needle that sits inside one of its literals: a form it
    # misses would never be seen.
    line = case["line"].encode("utf-8")
    assert any(needle in line for needle in NEEDLES)
    assert confirm_line(line)


@pytest.mark.parametrize("line", [
    b"Mar  5 10:00:00 h systemd[1]: app.service: Main process exited, code=exited, status=0/SUCCESS",
    b"Mar  5 10:00:00 h systemd[1]: app.service: Killing process 1234 (java) with signal SIGKILL.",
    b"[  427.1] oom_reaper: reaped process 4362 (normal-priority), now anon-rss:0kB",
    b"Mar  5 10:00:00 h app[1]: allocation of 4096 bytes failed",
])
def test_prefilter_drops_common_noise(line):
    assert not confirm_line(line)


def test_every_form_and_kind_has_a_case():
    assert {c["form"] for c in CASES if c["form"]} == set(FORMS)
    assert set(FORM_KIND.values()) == set(KINDS)


def test_syslog_year_comes_from_the_reference_time():
    # A January line in a file last written in February 2024 is from 2024; a December line is from 2023.
    reference = time.mktime((2024, 2, 1, 0, 0, 0, 0, 0, -1))
    jan = parse_prefix("Jan 31 23:00:00 h kernel: x", reference).timestamp
    dec = parse_prefix("Dec 31 23:00:00 h kernel: x", reference).timestamp
    assert time.localtime(jan).tm_year == 2024
    assert time.localtime(dec).tm_year == 2023


def test_prefix_fields():
    speaker = parse_prefix("Mar  5 22:42:57 node06 kernel: [  12.500000] <4>XFS: x", REFERENCE)
    assert (speaker.origin, speaker.kernel, speaker.tag, speaker.uptime) == ("syslog", True, "kernel", 12.5)
    assert speaker.message == "XFS: x"
    speaker = parse_prefix("Mar  5 22:42:57 node06 CRON[12]: x", REFERENCE)
    assert (speaker.origin, speaker.kernel, speaker.tag) == ("syslog", False, "CRON")


NOW = calendar.timegm((2024, 6, 1, 12, 0, 0, 0, 0, 0))


@pytest.mark.parametrize("value,expected", [
    ("24h", NOW - 86400), ("30m", NOW - 1800), ("7d", NOW - 7 * 86400), ("2w", NOW - 14 * 86400),
    ("3600", NOW - 3600), ("90s", NOW - 90), ("2024-05-01T00:00:00Z", calendar.timegm((2024, 5, 1, 0, 0, 0, 0, 0, 0))),
    ("2024-05-01T02:00:00+02:00", calendar.timegm((2024, 5, 1, 0, 0, 0, 0, 0, 0))),
    ("2024-05-01", time.mktime((2024, 5, 1, 0, 0, 0, 0, 0, -1))), (None, None), ("", None)])
def test_parse_since(value, expected):
    assert parse_since(value, NOW) == expected


@pytest.mark.parametrize("value", ["yesterday", "24x", "-5h", "2024-13-45", "5 hours ago"])
def test_parse_since_rejects(value):
    with pytest.raises(ValueError) as info:
        parse_since(value, NOW)
    assert "24h" in str(info.value)


def test_iso_is_utc():
    assert iso(0) == "1970-01-01T00:00:00+00:00"
    assert iso(None) is None
    assert iso(datetime.datetime(2024, 3, 5, 21, 42, 57, tzinfo=datetime.timezone.utc).timestamp()) == "2024-03-05T21:42:57+00:00"
