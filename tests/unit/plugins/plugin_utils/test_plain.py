# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""plugin_utils/_plain.py: the one copy of host data into plain types (the report's JSON, the query filter)."""
from __future__ import annotations

import datetime
from collections import OrderedDict

import pytest

from ansible_collections.memfrag.linux.plugins.plugin_utils._plain import TooDeep, plain


class TaggedStr(str):
    """Stands for the str subclasses Ansible passes for templated values."""


class TaggedInt(int):
    pass


def test_subclasses_become_their_builtin_types():
    copied = plain(OrderedDict([(TaggedStr("k"), [TaggedStr("v"), TaggedInt(3), (1.5, b"\xff")])]), 10)
    assert copied == {"k": ["v", 3, [1.5, u"\ufffd"]]}
    # jmespath compares type names: the subclasses must be gone, not merely equal.
    names = [type(value).__name__ for value in (copied, list(copied)[0], copied["k"], *copied["k"])]
    assert names == ["dict", "str", "list", "str", "int", "list"]


def test_other_types_become_text():
    assert plain({"when": datetime.date(2026, 11, 30)}, 10) == {"when": "2026-11-30"}


def test_depth_is_cut_or_refused():
    nested = {"a": {"b": {"c": 1}}}
    assert plain(nested, 2) == {"a": {"b": None}}
    assert plain(nested, 3) == nested
    with pytest.raises(TooDeep):
        plain(nested, 2, cut=False)
