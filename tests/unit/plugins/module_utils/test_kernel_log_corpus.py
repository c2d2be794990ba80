# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""kernel_log_scan on every real log excerpt of the shared corpus, against the counts in PROVENANCE.md.

The corpus is read in place. PROVENANCE.md states per file, by physical line: XFS deadlocks, page
allocation failures (with their orders), hung tasks, OOM report lines (invoked, kill decision,
Killed process, oom-kill:constraint, sharing same memory) and allocation stalls (with orders).
"""

from __future__ import annotations

import os
import re

import pytest

from ansible_collections.memfrag.linux.tests.collection_tree import CORPUS_SKIP_REASON, corpus_dir

from ansible_collections.memfrag.linux.plugins.module_utils._kernel_log.scan import scan
from ansible_collections.memfrag.linux.plugins.module_utils._kernel_log.state import empty_state

CORPUS = corpus_dir()
LOGS = sorted(os.listdir(os.path.join(CORPUS, "logs"))) if CORPUS else []


def _expectations():
    with open(os.path.join(CORPUS, "PROVENANCE.md")) as handle:
        text = handle.read()
    section = text[text.index("## C. Kernel log excerpts"):text.index("## Totals (logs/")]
    expected = {}
    for block in section.split("\n### ")[1:]:
        name = block.split("\n", 1)[0].strip()
        line = re.search(r"\*\*expect:\*\*(.*)", block).group(1)

        def number(label):
            return int(re.search(re.escape(label) + r"=(\d+)", line).group(1))

        def orders(label):
            found = re.search(re.escape(label) + r"=\d+ \(orders ([\d,]+)\)", line)
            return [int(v) for v in found.group(1).split(",")] if found else []

        expected[name] = {
            "xfs_alloc_deadlock": number("XFS-deadlock"), "page_alloc_failure": number("page-alloc-failure"),
            "hung_task": number("hung-task"), "oom_lines": number("OOM"), "page_alloc_stall": number("alloc-stall"),
            "failure_orders": orders("page-alloc-failure"), "stall_orders": orders("alloc-stall"),
        }
    return expected


EXPECTED = _expectations() if CORPUS else {}


def _scan(path):
    warnings = []
    result, _state = scan(["files"], [path], None, empty_state(), "4.9.0", 10000, False, warnings.append)
    return result, warnings


if not CORPUS:
    def test_corpus_logs():
        pytest.skip(CORPUS_SKIP_REASON)
else:
    def test_every_log_has_an_expectation():
        assert LOGS and sorted(EXPECTED) == LOGS

    @pytest.mark.parametrize("name", LOGS)
    def test_corpus_log(name):
        want = EXPECTED[name]
        result, warnings = _scan(os.path.join(CORPUS, "logs", name))
        counts, forms = result["counts"], result["forms"]
        for kind in ("xfs_alloc_deadlock", "page_alloc_failure", "hung_task", "page_alloc_stall"):
            assert counts[kind] == want[kind], (kind, counts, result["ignored"])
        # PROVENANCE counts every line of an OOM report; counts.oom_kill counts killed processes only.
        assert sum(v for k, v in forms.items() if k.startswith("oom_")) == want["oom_lines"], forms
        assert counts["oom_kill"] == forms["oom_killed"] + forms["oom_kill_shared_mm"]
        events = result["events"]
        assert [e["order"] for e in events if e["kind"] == "page_alloc_failure"] == want["failure_orders"]
        assert [e["order"] for e in events if e["kind"] == "page_alloc_stall"] == want["stall_orders"]
        assert len(events) == sum(counts.values()) and result["events_dropped"] == 0
        # Nothing in the corpus is binary or spoofed.
        assert result["ignored"] == {"not_kernel": 0, "userspace_kmsg": 0, "before_since": 0, "duplicates": 0}
        assert warnings == []
        for event in events:
            assert event["origin"] in ("syslog", "dmesg", "text")
            if event["kind"] == "xfs_alloc_deadlock":
                assert event.get("function") in ("kmem_alloc", "kmem_zone_alloc", "xfs_buf_allocate_memory"), event
                assert isinstance(event.get("mode"), int) and event["gfp_flags"], event
            if event["kind"] == "hung_task":
                assert event["seconds"] >= 120 and event.get("comm") and event.get("pid"), event
            if event["kind"] == "oom_kill":
                assert event["killed_pid"] > 0, event

    def test_corpus_totals():
        # The totals table of PROVENANCE.md, over all 50 files at once (one scan of many files).
        result, _warnings = scan(["files"], [os.path.join(CORPUS, "logs", "*.log")], None, empty_state(), "4.9.0",
                                 5, False, [].append)
        assert result["counts"]["xfs_alloc_deadlock"] == 48
        assert result["counts"]["page_alloc_failure"] == 33
        assert result["counts"]["hung_task"] == 28
        assert result["counts"]["page_alloc_stall"] == 8
        assert sum(v for k, v in result["forms"].items() if k.startswith("oom_")) == 27
        assert len(result["events"]) == 5 and result["events_dropped"] == sum(result["counts"].values()) - 5
