# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""GFP flag tables per kernel era: reference values, era boundaries, and the kernel's own names in the corpus."""

from __future__ import annotations

import os
import re

import pytest
import yaml

from ansible_collections.memfrag.linux.plugins.module_utils._mm.gfp import (
    ERAS, decode, era_of, flag_table, parse_mode, parse_release, split_names)

HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, "cases", "gfp.yml")) as handle:
    CASES = yaml.safe_load(handle)

# "mode:0x24280ca(GFP_HIGHUSER_MOVABLE|__GFP_ZERO)" and "gfp_mask=0x408d40(GFP_NOFS|...)"
_PRINTED = re.compile(r"(?:mode:|gfp_mask=)(0x[0-9a-f]+)\(([^)]*)\)")


@pytest.mark.parametrize("case", CASES["decode"], ids=lambda c: "%#x@%s" % (c["mode"], c["release"]))
def test_decode(case):
    assert decode(case["mode"], case["release"]) == case["names"]


@pytest.mark.parametrize("release,era", sorted(CASES["eras"].items()))
def test_era_of(release, era):
    assert era_of(str(release)) == era


def test_every_era_has_distinct_gfp_kernel():
    # GFP_KERNEL moved with every layout change; the tables must reflect it.
    values = {}
    for era, release in zip(ERAS, ("2.6.32", "3.10.0", "4.4.0", "4.10.0", "4.15.0", "5.1.0", "5.14.0", "5.18.0",
                                   "6.3.0", "6.15.0")):
        assert era_of(release) == era
        values[era] = dict(flag_table(release))["GFP_KERNEL"]
    assert values == {"2.6.32": 0xd0, "3.10": 0xd0, "4.4": 0x24000c0, "4.10": 0x14000c0,
                      "4.15": 0x6000c0, "5.1": 0xcc0, "5.14": 0xcc0, "5.18": 0xcc0, "6.3": 0xcc0, "6.15": 0xcc0}


def test_composites_precede_single_flags():
    for release in ("2.6.32", "3.10.0", "4.9.0", "4.14.0", "4.19.0", "5.10.0", "6.6.0"):
        names = [name for name, _mask in flag_table(release)]
        first_single = min(i for i, n in enumerate(names) if n.startswith("__GFP_"))
        assert all(n.startswith("GFP_") for n in names[:first_single]), (release, names)
        # Most bits first: a composite never precedes a composite that contains it.
        masks = dict(flag_table(release))
        composites = [n for n in names[:first_single] if n not in ("GFP_DMA", "GFP_DMA32")]
        for i, earlier in enumerate(composites):
            for later in composites[i + 1:]:
                assert masks[earlier] & masks[later] != masks[earlier] or masks[earlier] == masks[later], (earlier, later)


@pytest.mark.parametrize("name,release", sorted(CASES["corpus_oracle"].items()))
def test_decode_matches_names_the_kernel_printed(corpus, name, release):
    with open(os.path.join(corpus, "logs", name), "rb") as handle:
        text = handle.read().decode("utf-8", "replace")
    printed = _PRINTED.findall(text)
    assert printed, "no mode with printed names in %s" % name
    for hex_value, names in printed:
        assert decode(int(hex_value, 16), release) == split_names(names), (hex_value, names)


@pytest.mark.parametrize("value,expected", [(592, 592), ("0x250", 0x250), ("250", 0x250), ("mode:0xd0", 0xd0), (" 0XCC0 ", 0xcc0)])
def test_parse_mode(value, expected):
    assert parse_mode(value) == expected


@pytest.mark.parametrize("value", ["", "0x", "xyz", "0x25g", -1, True, None])
def test_parse_mode_rejects(value):
    with pytest.raises(ValueError):
        parse_mode(value)


@pytest.mark.parametrize("value", ["", "linux", "v5.10", None])
def test_parse_release_rejects(value):
    with pytest.raises(ValueError):
        parse_release(value)


def test_decode_rejects_negative_and_bool():
    with pytest.raises(ValueError):
        decode(-1, "6.1.0")
    with pytest.raises(ValueError):
        decode(True, "6.1.0")


def test_split_names():
    assert split_names("GFP_KERNEL|__GFP_ZERO") == ["GFP_KERNEL", "__GFP_ZERO"]
    assert split_names("none") == []
    assert split_names("") == []
