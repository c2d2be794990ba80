# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet report's data: per-host facts of the diagnose/reclaim roles shaped into one row per host,
and the fleet overview (hosts by severity, the worst hosts, the distribution of free memory at the order
that matters, kernel-log events by kind) computed from the rows in one pass.

Input per host is what the roles leave in hostvars: ``ansible_facts['memfrag_buddyinfo']``,
``memfrag_verdict``, ``memfrag_findings``, ``memfrag_log_counts`` (top-level when facts are injected as
variables, else under ``ansible_facts``), ``memfrag_reclaim`` and ``memfrag_xfs_files``. A host without a
verdict (unreachable, failed, or not diagnosed) is kept in the report as ``no_data``: an operator must see the
hosts the run could not judge.

Rendering lives beside this file: ``_fleet_html.py``, ``_fleet_prometheus.py``; writing the report
directory in ``_fleet_files.py``.
"""

from __future__ import annotations

import datetime
import re
import typing as t
from collections.abc import Mapping

from ansible_collections.memfrag.linux.plugins.module_utils._findings.judge import SEVERITY_RANK
from ansible_collections.memfrag.linux.plugins.plugin_utils._plain import plain as to_plain
from ansible_collections.memfrag.linux.plugins.module_utils._kernel_log.kinds import KINDS as LOG_KINDS

# Report rows worst first: a host without data sorts between warning and ok (where "info" ranks).
REPORT_SEVERITIES = ("critical", "warning", "no_data", "ok")
SEVERITY_VALUE = {"ok": 0, "warning": 1, "critical": 2}  # memfrag_verdict_severity in Prometheus

# Upper bounds (bytes, exclusive) of the overview's histogram of free memory at the order that matters.
FREE_AT_ORDER_BINS = (1, 4 << 20, 16 << 20, 64 << 20, 256 << 20, 1 << 30, 4 << 30, None)
UNUSABLE_BINS = 10  # deciles of the share of free memory unusable at the order that matters
WORST_HOSTS = 10

__all__ = ["LOG_KINDS", "REPORT_SEVERITIES", "SEVERITY_VALUE", "fleet_overview", "fleet_report", "plain", "shape_host",
           "shape_zone", "timestamp"]


_MAX_DEPTH = 32  # data nested deeper than this is cut: no memfrag role sets such a shape


def plain(value: t.Any) -> t.Any:
    """A plain copy of host data for the report's JSON (plugin_utils/_plain.py)."""
    return to_plain(value, _MAX_DEPTH)


def _norm_tunable(name: str) -> str:
    # Baselines are written as sysctl keys (vm.min_free_kbytes), facts as file names (min_free_kbytes).
    name = str(name).strip().replace("/", ".")
    return name[3:] if name.startswith("vm.") else name


def _norm_value(value: t.Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (list, tuple)):
        return " ".join(_norm_value(v) for v in value)
    return " ".join(str(value).split())


def _per_order(value: t.Any, order: int) -> t.Optional[float]:
    """Value at ``order`` from a per-order list (or a dict keyed by order), else None."""
    if isinstance(value, Mapping):
        value = value.get(order, value.get(str(order)))
        return None if value is None else float(value)
    if isinstance(value, (list, tuple)) and 0 <= order < len(value) and value[order] is not None:
        return float(value[order])
    return None


def _watermark_at(value: t.Any, order: int) -> t.Optional[bool]:
    """buddyinfo_facts gives one verdict per order; older shapes a single bool."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, Mapping):
        value = value.get(order, value.get(str(order)))
        return None if value is None else bool(value)
    if isinstance(value, (list, tuple)) and 0 <= order < len(value):
        return None if value[order] is None else bool(value[order])
    return None


def shape_zone(zone: t.Mapping[str, t.Any], page_size: int, order: int) -> t.Dict[str, t.Any]:
    free_blocks = [int(b) for b in zone.get("free_blocks") or []]
    bytes_per_order = [blocks * page_size * (1 << o) for o, blocks in enumerate(free_blocks)]
    free_bytes = zone.get("free_bytes")
    total = int(free_bytes) if isinstance(free_bytes, (int, float)) and not isinstance(free_bytes, bool) \
        else sum(bytes_per_order)
    at_or_above = zone.get("free_bytes_at_or_above_order")
    return {
        "node": int(zone.get("node", 0)),
        "zone": str(zone.get("zone", "?")),
        "free_blocks": free_blocks,
        "free_bytes_per_order": bytes_per_order,
        "free_bytes": total,
        "free_bytes_at_or_above_order": _per_order(at_or_above, order) if at_or_above is not None
        else float(sum(bytes_per_order[order:])),
        "fragmentation_index": _per_order(zone.get("fragmentation_index"), order),
        "unusable_index": _per_order(zone.get("unusable_index"), order),
        "largest_free_order": None if zone.get("largest_free_order") is None else int(zone["largest_free_order"]),
        "watermark_ok": _watermark_at(zone.get("watermark_ok"), order),
    }


def _host_order(findings: t.List[t.Dict[str, t.Any]], default: int) -> int:
    # A logged failure of a higher order is the order that matters on that host.
    orders = [int(f["numbers"]["order"]) for f in findings
              if isinstance(f.get("numbers"), dict) and isinstance(f["numbers"].get("order"), int)
              and not isinstance(f["numbers"]["order"], bool)]
    return max([default] + orders)


def _items(value: t.Any) -> t.List[t.Tuple[t.Any, t.Any]]:
    return list(value.items()) if isinstance(value, Mapping) else []


def _fact(hostvars: t.Mapping[str, t.Any], facts: t.Mapping[str, t.Any], name: str) -> t.Any:
    # Facts are injected as top-level variables by default (INJECT_FACTS_AS_VARS); without that they are
    # only under ansible_facts. A top-level variable (set_fact, inventory) wins, as in Ansible.
    value = hostvars.get(name)
    return facts.get(name) if value is None else value


def shape_host(name: str, hostvars: t.Mapping[str, t.Any], order: int = 4,
               baseline: t.Optional[t.Mapping[str, t.Any]] = None) -> t.Dict[str, t.Any]:
    """One report row from one host's variables."""
    facts = hostvars.get("ansible_facts") or {}
    if not isinstance(facts, Mapping):
        facts = {}
    buddy = _fact(hostvars, facts, "memfrag_buddyinfo") or {}
    if not isinstance(buddy, Mapping):
        buddy = {}
    verdict = _fact(hostvars, facts, "memfrag_verdict") or {}
    if not isinstance(verdict, Mapping):
        verdict = {}
    findings = _fact(hostvars, facts, "memfrag_findings") or []
    findings = [plain(f) for f in (findings if isinstance(findings, (list, tuple)) else []) if isinstance(f, Mapping)]
    severity = verdict.get("severity") if verdict.get("severity") in SEVERITY_VALUE else "no_data"
    host_order = _host_order(findings, order)
    page_size = int(buddy.get("page_size") or 4096)

    log = _fact(hostvars, facts, "memfrag_log_counts") or {}
    if not isinstance(log, Mapping):
        log = {}
    counts = dict((str(k), int(v)) for k, v in _items(log.get("counts")))
    last_seen = dict((str(k), plain(v)) for k, v in _items(log.get("last_seen")) if v is not None)

    current = dict((_norm_tunable(k), v) for k, v in _items(buddy.get("tunables")))
    # Without facts nothing is known about the host's tunables: no comparison rather than all of them "off".
    wanted = dict((_norm_tunable(k), v) for k, v in _items(baseline)) if buddy else {}
    tunables = []
    for tname in sorted(set(current) | set(wanted)):
        row = {"name": tname, "current": None if tname not in current else _norm_value(current[tname]),
               "baseline": None if tname not in wanted else _norm_value(wanted[tname])}
        row["differs"] = row["baseline"] is not None and row["current"] != row["baseline"]
        tunables.append(row)

    zones = buddy.get("zones") or []
    zones = [shape_zone(z, page_size, host_order) for z in (zones if isinstance(zones, (list, tuple)) else [])
             if isinstance(z, Mapping)]
    free = sum(z["free_bytes"] for z in zones)
    high = sum(z["free_bytes_at_or_above_order"] or 0 for z in zones)
    reclaim = _fact(hostvars, facts, "memfrag_reclaim")
    return {
        "host": name,
        "severity": severity,
        "summary": str(verdict.get("summary") or ("no diagnosis: host unreachable, failed, or not diagnosed"
                                                  if severity == "no_data" else "")),
        "order": host_order,
        "page_size": page_size,
        "kernel": plain(buddy.get("kernel_release") or hostvars.get("ansible_kernel")),
        "zones": zones,
        # The host's free memory over all zones, and the part in blocks of at least its order.
        "free_bytes": free if zones else None,
        "free_bytes_at_or_above_order": high if zones else None,
        "findings": findings,
        "log_counts": counts if log else None,
        "log_last_seen": last_seen,
        "tunables": tunables,
        "tunables_off_baseline": sum(1 for r in tunables if r["differs"]),
        "reclaim": plain(reclaim) if isinstance(reclaim, Mapping) else None,
        "xfs_files": _xfs_files(_fact(hostvars, facts, "memfrag_xfs_files")),
    }


def _xfs_files(data: t.Any) -> t.Optional[t.Dict[str, t.Any]]:
    """The worst XFS files of a host (memfrag_xfs_files of xfs_extent_scan or the diagnose XFS scan), or None."""
    if not isinstance(data, Mapping) or not data.get("scanned"):
        return None
    files = data.get("files") or []
    files = [dict((key, plain(item.get(key))) for key in ("path", "extents", "alloc_bytes", "alloc_order"))
             for item in (files if isinstance(files, (list, tuple)) else []) if isinstance(item, Mapping)]
    return {"files": files[:5], "found": plain(data.get("found")), "stopped_early": bool(data.get("stopped_early"))}


def _sort_key(row: t.Mapping[str, t.Any]) -> t.Tuple[int, float, str]:
    # Worst first: severity, then the least free memory at the order that matters (no zones last).
    high = row["free_bytes_at_or_above_order"]
    return (-SEVERITY_RANK.get(row["severity"], SEVERITY_RANK["info"]), float("inf") if high is None else float(high),
            row["host"])


def fleet_report(hostvars: t.Mapping[str, t.Any], hosts: t.Iterable[str], order: int = 4,
                 baseline: t.Optional[t.Mapping[str, t.Any]] = None, generated: str = "",
                 bad_hosts: t.Optional[t.List[t.Tuple[str, str]]] = None) -> t.Dict[str, t.Any]:
    """The whole report: rows sorted worst first, a count per severity and the fleet overview.

    A host whose facts are not in the shape the roles set raises (TypeError, ValueError...), unless ``bad_hosts``
    is a list: then the host is reported as ``no_data`` saying so, and ``(host, reason)`` is appended to it (one
    host's odd facts must not cost the report of 10,000)."""
    rows = []
    seen = set()
    for name in hosts:
        name = str(name)
        if name in seen:  # a host listed twice is one row
            continue
        seen.add(name)
        try:
            vars_ = hostvars[name]
        except KeyError:
            vars_ = {}
        if not isinstance(vars_, Mapping):  # an undefined host: ansible gives a marker, not a mapping
            vars_ = {}
        host_baseline = baseline
        if baseline is None:
            # The baseline this host was tuned to (sysctl_tuning role), or one the inventory states.
            host_baseline = vars_.get("memfrag_baseline") or vars_.get("sysctl_tuning_baseline")
            if not isinstance(host_baseline, Mapping):
                host_baseline = None
        try:
            rows.append(shape_host(name, vars_, order, host_baseline))
        except (TypeError, ValueError, KeyError, AttributeError, OverflowError) as exc:
            if bad_hosts is None:
                raise
            bad_hosts.append((name, str(exc)))
            rows.append(shape_host(name, {}, order, None))
            rows[-1]["summary"] = "facts not in the shape memfrag.linux roles set: %s" % exc
    rows.sort(key=_sort_key)
    counts = dict((s, 0) for s in REPORT_SEVERITIES)
    for row in rows:
        counts[row["severity"]] += 1
    return {"generated": generated, "order": order, "hosts": rows, "counts": counts,
            "overview": fleet_overview(rows, order)}


def _bin(value: float, bounds: t.Sequence[t.Optional[int]]) -> int:
    for i, upper in enumerate(bounds):
        if upper is None or value < upper:
            return i
    return len(bounds) - 1


def _later(a: t.Any, b: t.Any) -> t.Any:
    """The later of two last-seen times (ISO text or epoch seconds); an unparsable one loses."""
    if a is None:
        return b
    ta, tb = timestamp(a), timestamp(b)
    if tb is None:
        return a
    return b if ta is None or tb > ta else a


def fleet_overview(rows: t.Sequence[t.Mapping[str, t.Any]], order: int = 4,
                   worst: int = WORST_HOSTS) -> t.Dict[str, t.Any]:
    """What the top of the report shows, from the sorted rows in one pass (10,000 hosts: milliseconds)."""
    free_bins = [0] * len(FREE_AT_ORDER_BINS)
    unusable_bins = [0] * UNUSABLE_BINS
    events = dict((kind, {"events": 0, "hosts": 0, "last_seen": None}) for kind in LOG_KINDS)
    with_data = scanned = tunables_off = 0
    reclaim = {"run": 0, "needed": 0, "target_met": 0, "target_missed": 0}
    orders = {}  # type: t.Dict[int, int]
    tunable_values = {}  # type: t.Dict[str, t.Dict[str, int]]
    for row in rows:
        if row["severity"] == "no_data":
            continue
        with_data += 1
        orders[row["order"]] = orders.get(row["order"], 0) + 1
        high, free = row["free_bytes_at_or_above_order"], row["free_bytes"]
        if high is not None:
            free_bins[_bin(high, FREE_AT_ORDER_BINS)] += 1
            if free:
                share = min(max(1.0 - float(high) / free, 0.0), 1.0)
                unusable_bins[min(int(share * UNUSABLE_BINS), UNUSABLE_BINS - 1)] += 1
        if row["log_counts"] is not None:
            scanned += 1
            for kind, count in row["log_counts"].items():
                entry = events.setdefault(kind, {"events": 0, "hosts": 0, "last_seen": None})
                if count:
                    entry["events"] += count
                    entry["hosts"] += 1
            for kind, seen in row["log_last_seen"].items():
                entry = events.setdefault(kind, {"events": 0, "hosts": 0, "last_seen": None})
                entry["last_seen"] = _later(entry["last_seen"], seen)
        if row["tunables_off_baseline"]:
            tunables_off += 1
        for tun in row["tunables"]:
            if tun["current"] is not None:
                values = tunable_values.setdefault(tun["name"], {})
                values[tun["current"]] = values.get(tun["current"], 0) + 1
        rec = row["reclaim"]
        if rec:
            reclaim["run"] += 1
            if rec.get("needed"):
                reclaim["needed"] += 1
                reclaim["target_met" if rec.get("target_met") else "target_missed"] += 1
    lower = 0
    free_hist = []
    for upper, hosts in zip(FREE_AT_ORDER_BINS, free_bins):
        free_hist.append({"from_bytes": lower, "below_bytes": upper, "hosts": hosts})
        lower = upper
    return {
        "hosts": len(rows),
        "hosts_with_data": with_data,
        "order": order,
        # Hosts whose order that matters is higher than the fleet's (a logged failure of a higher order).
        "orders": [{"order": o, "hosts": n} for o, n in sorted(orders.items())],
        "worst": [{"host": r["host"], "severity": r["severity"], "summary": r["summary"], "order": r["order"],
                   "free_bytes": r["free_bytes"], "free_bytes_at_or_above_order": r["free_bytes_at_or_above_order"]}
                  for r in rows[:worst] if r["severity"] in ("critical", "warning")],
        "free_at_order": free_hist,
        "unusable_share": [{"from": i / float(UNUSABLE_BINS), "below": (i + 1) / float(UNUSABLE_BINS), "hosts": n}
                           for i, n in enumerate(unusable_bins)],
        "log_events": events,
        "log_scanned_hosts": scanned,
        "tunables_off_baseline_hosts": tunables_off,
        # Per vm tunable the value most hosts run (ties: the smaller text), so a row can show only what stands out.
        "tunables_usual": dict((name, min(values.items(), key=lambda kv: (-kv[1], kv[0]))[0])
                               for name, values in sorted(tunable_values.items())),
        "reclaim": reclaim,
    }


_TS = re.compile(r"^\d+(\.\d+)?$")


def timestamp(value: t.Any) -> t.Optional[float]:
    """Seconds since the epoch from a number or an ISO 8601 text; None when not a time."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, str):
        return None
    if _TS.match(value):
        return float(value)
    text = value.strip().replace("Z", "+00:00")
    try:
        parsed = datetime.datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.timezone.utc)
    return parsed.timestamp()
