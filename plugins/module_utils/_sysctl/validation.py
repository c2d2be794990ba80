# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Checking vm.* settings against the running kernel before anything is written.

Private to the collection. The ranges come from the kernel sources per version (see
kernel-formats.md section 9 in the design notes): a value the running kernel would reject, or
would silently ignore (extfrag_threshold through 4.x), is refused here with the reason instead.
Policy limits that protect the host (min_free_kbytes above 5% of RAM, vfs_cache_pressure 0) can
be overridden with ``force``; the one-shot triggers can not.
"""


import re
import typing as t

from ansible_collections.memfrag.linux.plugins.module_utils._sysctl.dropin import dotted_key, key_path

Version = t.Tuple[int, int, int]

# Writing these does something once; persisting them re-runs it at every boot or `sysctl --system`.
TRIGGERS = {
    "vm.drop_caches": "memfrag.linux.drop_caches",
    "vm.compact_memory": "memfrag.linux.compact_memory",
}

# A share of RAM above which a min_free_kbytes reserve starves ordinary allocations.
MIN_FREE_MAX_PERCENT = 5
# The kernel's own lower clamp for its computed default (mm/page_alloc.c).
MIN_FREE_FLOOR_KB = 128


class Range(object):
    """Accepted integer range of a tunable from kernel ``since`` on (None: no bound)."""

    __slots__ = ("since", "minimum", "maximum", "note")

    def __init__(self, since: Version, minimum: t.Optional[int], maximum: t.Optional[int], note: str = "") -> None:
        self.since = since
        self.minimum = minimum
        self.maximum = maximum
        self.note = note


class Tunable(object):
    """A vm tunable we know: the first kernel that has it and its ranges over time."""

    __slots__ = ("first", "ranges")

    def __init__(self, first: Version, ranges: t.Sequence[Range]) -> None:
        self.first = first
        self.ranges = list(ranges)


# Integer tunables whose limits we know. Keys not listed may still be set (the kernel checks
# them, and the value is read back), but only integers are range-checked here.
TUNABLES = {
    # minmax with min 0 (negative is EINVAL), no maximum; 2.6.32 used plain proc_dointvec.
    "vm.min_free_kbytes": Tunable((2, 6, 0), [Range((2, 6, 0), 0, None)]),
    # 4.6+; [1,1000], raised to [1,3000] in 5.17 (commit 39c65a94cd96).
    "vm.watermark_scale_factor": Tunable((4, 6, 0), [Range((4, 6, 0), 1, 1000), Range((5, 17, 0), 1, 3000)]),
    # 5.0+; minimum 0 (0 disables boosting), no maximum.
    "vm.watermark_boost_factor": Tunable((5, 0, 0), [Range((5, 0, 0), 0, None)]),
    # 2.6.35+; [0,1000]. Through 4.x an out-of-range write "succeeds" but changes nothing.
    "vm.extfrag_threshold": Tunable((2, 6, 35), [
        Range((2, 6, 35), 0, 1000, "this kernel ignores out-of-range writes silently"),
        Range((5, 0, 0), 0, 1000)]),
    # 5.9+; [0,100].
    "vm.compaction_proactiveness": Tunable((5, 9, 0), [Range((5, 9, 0), 0, 100)]),
    # Plain proc_dointvec through 5.10 (negative accepted but meaningless: it scales reclaim by a
    # negative ratio), minmax with min 0 by 6.1. We refuse negatives on every kernel.
    "vm.vfs_cache_pressure": Tunable((2, 6, 0), [Range((2, 6, 0), 0, None)]),
    # Documented bounds of other common vm integers (Documentation/admin-guide/sysctl/vm.rst).
    "vm.swappiness": Tunable((2, 6, 0), [Range((2, 6, 0), 0, 100), Range((5, 8, 0), 0, 200)]),
    "vm.dirty_ratio": Tunable((2, 6, 0), [Range((2, 6, 0), 0, 100)]),
    "vm.dirty_background_ratio": Tunable((2, 6, 0), [Range((2, 6, 0), 0, 100)]),
    "vm.overcommit_memory": Tunable((2, 6, 0), [Range((2, 6, 0), 0, 2)]),
    "vm.panic_on_oom": Tunable((2, 6, 0), [Range((2, 6, 0), 0, 2)]),
    "vm.min_slab_ratio": Tunable((2, 6, 0), [Range((2, 6, 0), 0, 100)]),
    "vm.min_unmapped_ratio": Tunable((2, 6, 0), [Range((2, 6, 0), 0, 100)]),
}


class Validation(object):
    """Outcome of :func:`validate`: normalized values, refusals, and keys the kernel lacks."""

    def __init__(self) -> None:
        self.values = {}  # type: t.Dict[str, str]
        self.refused = []  # type: t.List[str]
        self.forceable = []  # type: t.List[str]
        self.missing = {}  # type: t.Dict[str, str]


def version_text(version: Version) -> str:
    return "%d.%d" % version[:2] if version[2] == 0 else "%d.%d.%d" % version


def range_for(key: str, kernel: t.Optional[Version]) -> t.Optional[Range]:
    """The range that applies to ``key`` on ``kernel`` (the newest one when the kernel is unknown)."""
    tunable = TUNABLES.get(key)
    if tunable is None:
        return None
    chosen = tunable.ranges[-1] if kernel is None else None
    for candidate in tunable.ranges:
        if kernel is not None and candidate.since <= kernel:
            chosen = candidate
    return chosen


def normalize_key(name: t.Any) -> t.Tuple[t.Optional[str], t.Optional[str]]:
    """(dotted key, None) or (None, reason). Only plain ``vm.<name>`` keys are accepted."""
    if not isinstance(name, str) or not name.strip():
        return None, "%r is not a sysctl name" % (name,)
    key = dotted_key(name)
    if re.match(r"^vm\.[A-Za-z0-9_-]+$", key) is None:
        return None, ("%r is not a vm.* tunable: vm_sysctl manages only keys directly under /proc/sys/vm "
                      "(no globs, no other namespaces)" % (name,))
    return key, None


def normalize_value(key: str, value: t.Any) -> t.Tuple[t.Optional[str], t.Optional[str]]:
    """(value text, None) or (None, reason). Integers and whitespace-separated integer lists."""
    if isinstance(value, bool):
        # YAML turns yes/no/on/off into booleans; sysctl wants the digits, so ask for them.
        return None, "%s: %r is a boolean; write 0 or 1" % (key, value)
    if isinstance(value, int):
        return str(value), None
    if isinstance(value, (list, tuple)):
        parts = [str(v) for v in value]
        if not parts or not all(re.match(r"^-?\d+$", p) for p in parts):
            return None, "%s: a list value must hold integers, got %r" % (key, value)
        return " ".join(parts), None
    if isinstance(value, str):
        text = " ".join(value.split())
        if not text:
            return None, "%s: empty value" % key
        if not re.match(r"^[A-Za-z0-9 _.,:+-]+$", text):
            return None, "%s: %r has characters no vm tunable accepts" % (key, value)
        return text, None
    return None, "%s: %r (%s) is not an integer or a string" % (key, value, type(value).__name__)


def validate(settings: t.Mapping[t.Any, t.Any], kernel: t.Optional[Version], mem_total: t.Optional[int],
             has_key: t.Callable[[str], bool]) -> Validation:
    """Check every setting; nothing here touches the host except through ``has_key``.

    Refusals are split: ``refused`` can never be applied, ``forceable`` are policy limits that
    ``force: true`` lifts. ``missing`` maps keys the kernel does not have to the reason.
    """
    result = Validation()
    for name, raw_value in settings.items():
        key, problem = normalize_key(name)
        if key is None:
            result.refused.append(problem or "invalid key")
            continue
        if key in TRIGGERS:
            result.refused.append(
                "%s is a one-shot trigger, not a setting: persisted, it fires again at every boot and every "
                "`sysctl --system`; use %s to run it once, guarded and measured" % (key, TRIGGERS[key]))
            continue
        if key in result.values:
            result.refused.append("%s is given twice (as %r)" % (key, name))
            continue
        value, problem = normalize_value(key, raw_value)
        if value is None:
            result.refused.append(problem or "invalid value")
            continue
        if not has_key(key):
            tunable = TUNABLES.get(key)
            reason = "%s does not exist in this kernel (/proc/sys/%s is missing)" % (key, key_path(key))
            if tunable is not None and kernel is not None and kernel < tunable.first:
                reason += "; it appeared in Linux %s and this kernel is %s" % (
                    version_text(tunable.first), version_text(kernel))
            result.missing[key] = reason
            continue
        result.values[key] = value
        _check_range(key, value, kernel, result)
        _check_policy(key, value, mem_total, result)
    return result


def _check_range(key: str, value: str, kernel: t.Optional[Version], result: Validation) -> None:
    limits = range_for(key, kernel)
    if limits is None:
        return
    try:
        number = int(value, 10)
    except ValueError:
        result.refused.append("%s: %r is not an integer" % (key, value))
        return
    too_low = limits.minimum is not None and number < limits.minimum
    too_high = limits.maximum is not None and number > limits.maximum
    if too_low or too_high:
        bounds = "[%s, %s]" % (limits.minimum if limits.minimum is not None else "-inf",
                               limits.maximum if limits.maximum is not None else "inf")
        kernel_name = "Linux %s" % version_text(kernel) if kernel else "current kernels"
        note = " (%s)" % limits.note if limits.note else ""
        result.refused.append("%s = %d is outside %s accepted by %s%s" % (key, number, bounds, kernel_name, note))


def _check_policy(key: str, value: str, mem_total: t.Optional[int], result: Validation) -> None:
    if key == "vm.min_free_kbytes":
        try:
            number = int(value, 10)
        except ValueError:
            return
        if mem_total is None:
            result.forceable.append(
                "vm.min_free_kbytes: MemTotal could not be read, so %d kB cannot be checked against the %d%% limit"
                % (number, MIN_FREE_MAX_PERCENT))
        elif number * 100 > mem_total * MIN_FREE_MAX_PERCENT:
            result.forceable.append(
                "vm.min_free_kbytes = %d kB is %.1f%% of MemTotal (%d kB), above %d%%: the kernel keeps the min "
                "watermark (and low/high above it) free in every zone, so ordinary allocations go into direct "
                "reclaim and the OOM killer can fire with that much memory idle"
                % (number, number * 100.0 / mem_total, mem_total, MIN_FREE_MAX_PERCENT))
        if number < MIN_FREE_FLOOR_KB:
            result.forceable.append(
                "vm.min_free_kbytes = %d kB is below the kernel's own floor of %d kB: atomic allocations "
                "(network receive, interrupt context) start failing" % (number, MIN_FREE_FLOOR_KB))
    elif key == "vm.vfs_cache_pressure":
        try:
            number = int(value, 10)
        except ValueError:
            return
        if number == 0:
            result.forceable.append(
                "vm.vfs_cache_pressure = 0 means dentries and inodes are never reclaimed: the slab grows until "
                "the host runs out of memory")


def decide(checked: Validation, force: bool, skip_missing: bool) -> t.Tuple[t.List[str], t.List[str]]:
    """``(refusals, warnings)`` of a validation under the ``force`` and ``skip_missing`` options.

    Any refusal stops the run before anything is written; the warnings name what was forced, and
    what is skipped when the run goes on.
    """
    refusals = list(checked.refused)
    warnings = []  # type: t.List[str]
    if force:
        warnings.extend("forced: %s" % reason for reason in checked.forceable)
    else:
        refusals.extend("%s (force: true applies it anyway)" % reason for reason in checked.forceable)
    if not skip_missing:
        refusals.extend("%s (skip_missing: true skips it with a warning)" % checked.missing[key]
                        for key in sorted(checked.missing))
    elif not refusals:
        warnings.extend("skipped: %s" % checked.missing[key] for key in sorted(checked.missing))
    return refusals, warnings
