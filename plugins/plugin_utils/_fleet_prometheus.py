# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Prometheus text exposition (format 0.0.4) of one fleet report row, for node_exporter's textfile collector."""

from __future__ import annotations

import math
import re
import typing as t

from ansible_collections.memfrag.linux.plugins.plugin_utils._fleet_report import LOG_KINDS, SEVERITY_VALUE, timestamp

__all__ = ["prometheus_text", "reclaim_steps"]


# name -> HELP text (every family is a gauge). The order here is the order in the file.
METRICS = (
    ("memfrag_up", "1 when the host was diagnosed in the last run, 0 when it had no data."),
    ("memfrag_verdict_severity", "Host verdict: 0 ok, 1 warning, 2 critical."),
    ("memfrag_findings", "Findings of the last diagnosis by severity."),
    ("memfrag_free_blocks", "Free blocks of 2^order pages (/proc/buddyinfo)."),
    ("memfrag_free_bytes", "Free bytes held in blocks of exactly this order."),
    ("memfrag_free_bytes_at_or_above_order", "Free bytes in blocks of at least the order that matters."),
    ("memfrag_fragmentation_index", "Kernel fragmentation index at the order that matters (-1: a block is free)."),
    ("memfrag_unusable_index", "Share of free memory unusable for the order that matters (kernel unusable_free_index)."),
    ("memfrag_largest_free_order", "Highest order with a free block (-1: none)."),
    ("memfrag_watermark_ok", "1 when the zone is above its watermark for the order that matters."),
    ("memfrag_kernel_log_events",
     "Kernel log events in the scan window (allocation deadlocks, failures, stalls, hung tasks, OOM kills)."),
    ("memfrag_kernel_log_last_seen_timestamp_seconds", "When the newest event of this kind was logged."),
    ("memfrag_vm_tunable", "vm sysctl value (current)."),
    ("memfrag_vm_tunable_baseline", "vm sysctl value (baseline)."),
    ("memfrag_vm_tunable_off_baseline", "1 when the running value differs from the baseline."),
    ("memfrag_reclaim_needed", "1 when the last reclaim run judged action needed."),
    ("memfrag_reclaim_target_met", "1 when the last reclaim reached its target."),
    ("memfrag_reclaim_action", "Steps of the last reclaim run: 1 when the step changed the host, 0 when refused or a no-op."),
    ("memfrag_reclaim_high_order_bytes",
     "Free bytes at or above the reclaim order in the judged zones, before and after the last reclaim run."),
    ("memfrag_report_timestamp_seconds", "When this report was generated."),
)
_NUMERIC = re.compile(r"^-?\d{1,300}(\.\d{1,300})?$")


def _escape_label(value: t.Any) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(**labels: t.Any) -> str:
    return ",".join('%s="%s"' % (k, _escape_label(v)) for k, v in labels.items())


def _number(value: t.Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int) and -(10 ** 15) < value < 10 ** 15:
        return str(value)
    value = float(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(int(value)) if value == int(value) and abs(value) < 1e15 else repr(value)


def _sample(name: str, labels: str, value: t.Any) -> t.Optional[str]:
    if value is None:
        return None
    try:
        text = _number(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return "%s{%s} %s" % (name, labels, text) if labels else "%s %s" % (name, text)


def prometheus_text(row: t.Mapping[str, t.Any], generated_ts: t.Optional[float] = None) -> str:
    """Prometheus text exposition (format 0.0.4) of one host's report row.

    Each series appears once (node_exporter's textfile collector rejects a file with a series twice): a zone
    listed twice, a log kind or a reclaim step repeated, keeps its first value. At 10,000 hosts this runs
    10,000 times, hence plain string building."""
    fam = dict((name, []) for name, _doc in METRICS)  # type: t.Dict[str, t.List[t.Optional[str]]]
    sev = row["severity"]
    fam["memfrag_up"].append("memfrag_up %d" % (0 if sev == "no_data" else 1))
    if sev != "no_data":
        fam["memfrag_verdict_severity"].append("memfrag_verdict_severity %d" % SEVERITY_VALUE[sev])
        findings_by = {}  # type: t.Dict[str, int]
        for f in row["findings"]:
            findings_by[str(f.get("severity"))] = findings_by.get(str(f.get("severity")), 0) + 1
        for severity in ("critical", "warning", "info"):
            fam["memfrag_findings"].append('memfrag_findings{severity="%s"} %d' % (severity, findings_by.get(severity, 0)))
    order = int(row["order"])
    zones_seen = set()  # type: t.Set[t.Tuple[int, str]]
    for zone in row["zones"]:
        if (zone["node"], zone["zone"]) in zones_seen:
            continue
        zones_seen.add((zone["node"], zone["zone"]))
        zl = _labels(node=int(zone["node"]), zone=zone["zone"])
        fam["memfrag_free_blocks"].extend('memfrag_free_blocks{%s,order="%d"} %d' % (zl, o, int(blocks))
                                          for o, blocks in enumerate(zone["free_blocks"]))
        fam["memfrag_free_bytes"].extend('memfrag_free_bytes{%s,order="%d"} %d' % (zl, o, int(nbytes))
                                         for o, nbytes in enumerate(zone["free_bytes_per_order"]))
        ol = '%s,order="%d"' % (zl, order)
        for name, value in (("memfrag_free_bytes_at_or_above_order", zone["free_bytes_at_or_above_order"]),
                            ("memfrag_fragmentation_index", zone["fragmentation_index"]),
                            ("memfrag_unusable_index", zone["unusable_index"]),
                            ("memfrag_watermark_ok", zone["watermark_ok"])):
            fam[name].append(_sample(name, ol, value))
        fam["memfrag_largest_free_order"].append(_sample("memfrag_largest_free_order", zl, zone["largest_free_order"]))
    if row["log_counts"] is not None:
        for kind in sorted(set(LOG_KINDS) | set(row["log_counts"])):
            fam["memfrag_kernel_log_events"].append(
                _sample("memfrag_kernel_log_events", _labels(kind=kind), row["log_counts"].get(kind, 0)))
        for kind, seen in sorted(row["log_last_seen"].items()):
            fam["memfrag_kernel_log_last_seen_timestamp_seconds"].append(
                _sample("memfrag_kernel_log_last_seen_timestamp_seconds", _labels(kind=kind), timestamp(seen)))
    tunables_seen = set()  # type: t.Set[str]
    for tun in row["tunables"]:
        if tun["name"] in tunables_seen:
            continue
        tunables_seen.add(tun["name"])
        nl = _labels(name=tun["name"])
        for which, mname in (("current", "memfrag_vm_tunable"), ("baseline", "memfrag_vm_tunable_baseline")):
            value = tun[which]
            if value is not None and _NUMERIC.match(value):
                fam[mname].append(_sample(mname, nl, float(value)))
        if tun["baseline"] is not None:
            fam["memfrag_vm_tunable_off_baseline"].append(_sample("memfrag_vm_tunable_off_baseline", nl, tun["differs"]))
    reclaim = row["reclaim"]
    if reclaim:
        fam["memfrag_reclaim_needed"].append(_sample("memfrag_reclaim_needed", "", bool(reclaim.get("needed"))))
        if reclaim.get("target_met") is not None:
            fam["memfrag_reclaim_target_met"].append(
                _sample("memfrag_reclaim_target_met", "", bool(reclaim.get("target_met"))))
        for action, detail in reclaim_steps(reclaim):
            fam["memfrag_reclaim_action"].append(_sample("memfrag_reclaim_action", _labels(action=action),
                                                         bool(detail.get("changed", True)) and not detail.get("refused")))
        for stage in ("before", "after"):
            fam["memfrag_reclaim_high_order_bytes"].append(_sample(
                "memfrag_reclaim_high_order_bytes", 'stage="%s"' % stage, reclaim.get(stage + "_high_order_bytes")))
    if generated_ts is not None:
        fam["memfrag_report_timestamp_seconds"].append(_sample("memfrag_report_timestamp_seconds", "", generated_ts))
    out = []
    for name, doc in METRICS:
        samples = [s for s in fam[name] if s is not None]
        if samples:
            out.append("# HELP %s %s\n# TYPE %s gauge" % (name, doc, name))
            out.extend(samples)
    return "\n".join(out) + "\n"


def reclaim_steps(reclaim: t.Mapping[str, t.Any]) -> t.List[t.Tuple[str, t.Dict[str, t.Any]]]:
    """(name, detail) of each step of a reclaim run; a repeated name gets ' #2', ' #3' (one series per step)."""
    actions = reclaim.get("actions") or []
    steps = []
    seen = {}  # type: t.Dict[str, int]
    for action in actions if isinstance(actions, list) else [actions]:
        detail = action if isinstance(action, dict) else {}
        name = str(detail.get("name") or detail.get("action") or detail.get("module") or "?") if detail else str(action)
        seen[name] = seen.get(name, 0) + 1
        steps.append((name if seen[name] == 1 else "%s #%d" % (name, seen[name]), detail))
    return steps
