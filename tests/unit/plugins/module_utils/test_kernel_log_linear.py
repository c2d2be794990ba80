# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""No line costs more than linear time: adversarial lines at 1 KiB, 64 KiB and 1 MiB.

Issue 18: ``XFS: `` repeated 12,000 times before ``possible memory allocation deadlock`` took seconds per
line because patterns backtracked quadratically. Every generator in tests/helpers/kernel_log_adversarial.py
(repeated prefixes of every form, long digit runs, nested parentheses, long separator runs) is timed at
the three lengths in one run. Linear cost per character stays flat from 64 KiB to 1 MiB (16 times the
text); quadratic cost grows 16-fold per character. The bound allows a factor of FACTOR for a noisy,
shared machine - generous, and still far below what quadratic behaviour gives. No absolute times.
"""

from __future__ import annotations

import gc
import io
import time

import pytest

from ansible_collections.memfrag.linux.tests.helpers.kernel_log_adversarial import GENERATORS, KERNEL_PREFIX, LENGTHS, PREFIX_GENERATORS, USER_PREFIX

from ansible_collections.memfrag.linux.plugins.module_utils._kernel_log import sources
from ansible_collections.memfrag.linux.plugins.module_utils._kernel_log.patterns import (
    classify_message, confirm_text, parse_prefix, release_of)
from ansible_collections.memfrag.linux.plugins.module_utils._kernel_log.scan import Summary, feed_line_hit
from ansible_collections.memfrag.linux.plugins.module_utils._kernel_log.sources import LineHit

FACTOR = 4.0
REFERENCE = 1.7e9


def _cost(function, argument, rounds=3):
    """Best of ``rounds`` CPU times of the calls in 1 ms or more. CPU time of this thread, not wall time: on a
    machine shared with other jobs a long call is preempted more often than a short one."""
    best = float("inf")
    # The garbage collector off while timing: a full collection walks every object the test process holds (under
    # ansible-test's xdist workers, those of hundreds of earlier tests), and would land on whichever call allocates.
    enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        for _round in range(rounds):
            calls = 0
            started = time.thread_time()
            while True:
                function(argument)
                calls += 1
                spent = time.thread_time() - started
                if spent >= 0.001:
                    break
            best = min(best, spent / calls)
    finally:
        if enabled:
            gc.enable()
    return best


def _assert_linear(name, function, build):
    texts = [build(length) for length in LENGTHS]
    # Interleaved rounds: a burst of load on the machine hits every length alike.
    costs = [float("inf")] * len(texts)
    for _round in range(3):
        for index, text in enumerate(texts):
            costs[index] = min(costs[index], _cost(function, text, rounds=1))
    per_char = [cost / len(text) for cost, text in zip(costs, texts)]
    growth = [per_char[i + 1] / per_char[i] for i in range(len(per_char) - 1)]
    assert all(g <= FACTOR for g in growth), (
        "%s: CPU time per character grows %s from %s characters (times %s s)"
        % (name, ["%.1fx" % g for g in growth], [len(t) for t in texts], ["%.2g" % c for c in costs]))


def _message_path(message):
    """Everything a kernel-tagged file line goes through once it holds a needle."""
    summary = Summary(None, 10)
    feed_line_hit(summary, LineHit(0, (KERNEL_PREFIX + message).encode("utf-8"), None, None), "/l", REFERENCE, None)
    return summary


def _spoof_path(message):
    summary = Summary(None, 10)
    feed_line_hit(summary, LineHit(0, (USER_PREFIX + message).encode("utf-8"), None, None), "/l", REFERENCE, None)
    return summary


@pytest.mark.parametrize("name,build", GENERATORS, ids=[g[0] for g in GENERATORS])
def test_classifier_is_linear(name, build):
    _assert_linear(name, lambda text: (classify_message(text, "3.10.0"), classify_message(text), release_of(text),
                                       confirm_text(text)), build)


@pytest.mark.parametrize("name,build", GENERATORS, ids=[g[0] for g in GENERATORS])
def test_kernel_line_is_linear(name, build):
    _assert_linear(name, _message_path, build)


@pytest.mark.parametrize("name,build", GENERATORS[::3], ids=[g[0] for g in GENERATORS[::3]])
def test_spoofed_line_is_linear_and_never_classified(name, build, monkeypatch):
    _assert_linear(name, _spoof_path, build)
    classified = []
    monkeypatch.setattr("ansible_collections.memfrag.linux.plugins.module_utils._kernel_log.scan.classify_message",
                        lambda *args: classified.append(args))
    summary = _spoof_path(build(1024))
    assert classified == [] and sum(summary.forms.values()) == 0


@pytest.mark.parametrize("name,build", PREFIX_GENERATORS, ids=[g[0] for g in PREFIX_GENERATORS])
def test_prefix_parser_is_linear(name, build):
    _assert_linear(name, lambda text: parse_prefix(text, REFERENCE), build)


def _scan_bytes(data):
    return sum(1 for _item in sources.scan_stream(io.BytesIO(data), "x", 0, [].append))


@pytest.mark.parametrize("name,build", GENERATORS[::2], ids=[g[0] for g in GENERATORS[::2]])
def test_file_scan_is_linear_in_the_file_size(name, build):
    # The whole file path (needle search, line cut-out, confirmation, lines past MAX_LINE skipped): four times
    # the lines of each length cost at most FACTOR times four times as much. The smaller file spans four reads
    # (CHUNK) at least: a file inside one read stays in the CPU cache and costs a fraction per byte of any
    # larger one, which under a loaded machine looked like a 16-fold growth (CI, 1 MiB lines).
    for length in LENGTHS:
        line = (KERNEL_PREFIX + build(length) + "\n").encode("utf-8")
        lines = max(1, 4 * sources.CHUNK // len(line))
        small, large = line * lines, line * (4 * lines)
        small_cost = _cost(_scan_bytes, small)
        large_cost = _cost(_scan_bytes, large)
        assert large_cost <= 4 * FACTOR * small_cost, (name, length, small_cost, large_cost)
