# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The shape of a kernel_log_scan result handed back by a user (``log_scan`` of memory_facts and the filters).

Consumers read ``counts``, ``first_seen``, ``last_seen`` and ``events``; a value of another shape (``counts``
given as a list, a count that is text) must fail with one clear message where it is read, not as a traceback
deep inside the judgement. Small on purpose: modules that only check a result import nothing else.
"""


import typing as t

_COUNT_DIGITS = 20  # no count of log lines has more digits; longer text is not converted


def log_scan_problem(value: t.Any) -> t.Optional[str]:
    """Why ``value`` is not a kernel_log_scan result consumers can read, or None."""
    if value is None:
        return None
    if not isinstance(value, t.Mapping):
        return "log_scan must be a kernel_log_scan result (a dict), got %s" % type(value).__name__
    counts = value.get("counts")
    if counts is not None:
        if not isinstance(counts, t.Mapping):
            return "log_scan.counts must be a dict of event kind to count, got %s" % type(counts).__name__
        for kind, count in counts.items():
            if not _is_count(count):
                return "log_scan.counts.%s must be a count (a whole number of 0 or more), got %.80r" % (kind, count)
    for key in ("first_seen", "last_seen"):
        times = value.get(key)
        if times is None:
            continue
        if not isinstance(times, t.Mapping):
            return "log_scan.%s must be a dict of event kind to time, got %s" % (key, type(times).__name__)
        for kind, when in times.items():
            if when is not None and not isinstance(when, str):
                return "log_scan.%s.%s must be an ISO time or null, got %.80r" % (key, kind, when)
    events = value.get("events")
    if events is not None and not isinstance(events, list):
        return "log_scan.events must be a list of events, got %s" % type(events).__name__
    return None


def _is_count(count: t.Any) -> bool:
    """A whole number >= 0, or its decimal digits (a templated value may arrive as text)."""
    if isinstance(count, bool):
        return False
    if isinstance(count, int):
        return count >= 0
    return isinstance(count, str) and 0 < len(count) <= _COUNT_DIGITS and all("0" <= c <= "9" for c in count)


def check_log_scan(value: t.Any) -> None:
    """Raise ValueError with log_scan_problem's message."""
    problem = log_scan_problem(value)
    if problem:
        raise ValueError(problem)
