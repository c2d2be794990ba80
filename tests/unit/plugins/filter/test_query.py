# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.memfrag.linux.plugins.filter import query as query_plugin

FACTS = {"memfrag_buddyinfo": {"zones": [
    {"node": 0, "zone": "DMA32", "largest_free_order": 10, "free_bytes_at_or_above_order": [9, 9, 9, 9, 9]},
    {"node": 0, "zone": "Normal", "largest_free_order": 3, "free_bytes_at_or_above_order": [7, 5, 3, 1, 0]},
]}}


class TaggedStr(str):
    """Stands for the str subclasses Ansible passes for templated values."""


@pytest.mark.parametrize("expression, expected", [
    ("memfrag_buddyinfo.zones[?largest_free_order < `4`].zone", ["Normal"]),
    ("length(memfrag_buddyinfo.zones[?free_bytes_at_or_above_order[4] < `1`]) > `0`", True),
    ("max_by(memfrag_buddyinfo.zones, &largest_free_order).zone", "DMA32"),
    ("memfrag_buddyinfo.absent", None),
])
def test_query(expression, expected):
    assert query_plugin.query(FACTS, expression) == expected


def test_query_accepts_str_subclasses():
    data = {TaggedStr("zones"): [{TaggedStr("zone"): TaggedStr("Normal")}]}
    assert query_plugin.query(data, TaggedStr("zones[0].zone")) == "Normal"
    assert query_plugin.query(data, "length(zones[0].zone)") == 6


@pytest.mark.parametrize("expression, words", [
    ("zones[?", "invalid JMESPath expression"),
    ("", "non-empty string"),
    ("abs(memfrag_buddyinfo)", "failed on the data"),
])
def test_query_errors(expression, words):
    with pytest.raises(AnsibleFilterError) as info:
        query_plugin.query(FACTS, expression)
    assert words in str(info.value)


def test_query_without_jmespath(monkeypatch):
    monkeypatch.setattr(query_plugin, "jmespath", None)
    with pytest.raises(AnsibleFilterError) as info:
        query_plugin.query(FACTS, "a")
    assert "jmespath Python package is not installed" in str(info.value)


def _nested(levels):
    data = "leaf"
    for _level in range(levels):
        data = {"a": data}
    return data


def test_data_nested_too_deep_is_a_clear_error_not_a_cut():
    assert query_plugin.query(_nested(50), "a.a.a") == _nested(47)
    with pytest.raises(AnsibleFilterError, match="nested more than 100 levels deep"):
        query_plugin.query(_nested(150), "a")
