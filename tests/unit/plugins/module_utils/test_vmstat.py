# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Parser for /proc/vmstat and the fragmentation counter subset."""

from __future__ import annotations

import os

import pytest
import yaml
from ansible_collections.memfrag.linux.tests.collection_tree import corpus_params

from ansible_collections.memfrag.linux.plugins.module_utils._procfs.files import ProcFileError, read_text
from ansible_collections.memfrag.linux.plugins.module_utils._procfs.vmstat import fragmentation_counters, parse_vmstat

HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, "cases", "vmstat_corpus.yml")) as handle:
    CASES = yaml.safe_load(handle)


def test_every_corpus_file_has_a_case(corpus):
    assert sorted(os.listdir(os.path.join(corpus, "vmstat"))) == sorted(CASES)


@pytest.mark.parametrize("name", corpus_params(CASES))
def test_corpus_file(corpus, name):
    case = CASES[name]
    counters, warnings = parse_vmstat(read_text(os.path.join(corpus, "vmstat"), name), name)
    assert warnings == []
    assert len(counters) == case["count"]
    for key, value in case["check"].items():
        assert counters[key] == value
    selected = fragmentation_counters(counters)
    for key in case.get("selected", []):
        assert key in selected
    for key in case.get("absent", []):
        assert key not in selected
    assert all(name_.startswith(("compact_", "pgmigrate_", "allocstall", "drop_", "pageoutrun", "kswapd_", "pgscan_",
                                 "pgsteal_", "slabs_", "thp_", "htlb_", "oom_kill", "nr_free_pages"))
               for name_ in selected)
    assert "nr_dirty" not in selected and "pgfault" not in selected


def test_selection_keeps_kernel_order():
    counters, _unused = parse_vmstat("nr_free_pages 5\npgfault 9\ncompact_stall 3\nallocstall_normal 2\ncompact_fail 1\n")
    assert list(fragmentation_counters(counters)) == ["nr_free_pages", "compact_stall", "allocstall_normal", "compact_fail"]


def test_live_kernel_vmstat():
    counters, warnings = parse_vmstat(read_text("/proc", "vmstat"))
    assert warnings == []
    assert "nr_free_pages" in counters


def test_bad_lines_are_warnings():
    counters, warnings = parse_vmstat("compact_stall 3\nthis is not\ncompact_fail x\n\ncompact_success 4\n", "/v")
    assert counters == {"compact_stall": 3, "compact_success": 4}
    assert [w.split(":")[0] for w in warnings] == ["/v line 2", "/v line 3"]


def test_empty_is_an_error():
    with pytest.raises(ProcFileError) as info:
        parse_vmstat("\n\n", "/x/vmstat")
    assert "/x/vmstat" in str(info.value)
