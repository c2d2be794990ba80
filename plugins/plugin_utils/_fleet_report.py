# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet report: per-host facts of the diagnose/reclaim roles shaped into one data set, rendered
as a self-contained HTML page (inline CSS and SVG, no scripts, nothing fetched) and as Prometheus
text exposition for node_exporter's textfile collector.

Input per host is what the roles leave in hostvars: ``ansible_facts['memfrag_buddyinfo']``,
``memfrag_verdict``, ``memfrag_findings``, ``memfrag_log_counts``, ``memfrag_reclaim`` and ``memfrag_xfs_files``. A host
without a verdict (unreachable, failed, or not diagnosed) is kept in the report as ``no_data``:
an operator must see the hosts the run could not judge.
"""

from __future__ import annotations

import datetime
import html
import math
import re
import typing as t
from ansible_collections.memfrag.linux.plugins.module_utils._findings.judge import SEVERITY_RANK
from ansible_collections.memfrag.linux.plugins.module_utils._kernel_log.kinds import KINDS
from ansible_collections.memfrag.linux.plugins.module_utils._units import format_bytes

# Sort order of the report rows: the worst first, a host that could not be judged before healthy ones.
# Report rows worst first: a host without data sorts between warning and ok (with "info").
REPORT_SEVERITIES = ("critical", "warning", "no_data", "ok")
SEVERITY_VALUE = {"ok": 0, "warning": 1, "critical": 2}  # memfrag_verdict_severity in Prometheus


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
    if isinstance(value, dict):
        value = value.get(order, value.get(str(order)))
        return None if value is None else float(value)
    if isinstance(value, (list, tuple)) and 0 <= order < len(value) and value[order] is not None:
        return float(value[order])
    return None


def shape_zone(zone: t.Dict[str, t.Any], page_size: int, order: int) -> t.Dict[str, t.Any]:
    free_blocks = [int(b) for b in zone.get("free_blocks") or []]
    bytes_per_order = [blocks * page_size * (1 << o) for o, blocks in enumerate(free_blocks)]
    free_bytes = zone.get("free_bytes")
    total = int(free_bytes) if isinstance(free_bytes, (int, float)) else sum(bytes_per_order)
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
        "largest_free_order": zone.get("largest_free_order"),
        "watermark_ok": _watermark_at(zone.get("watermark_ok"), order),
    }


def _watermark_at(value: t.Any, order: int) -> t.Optional[bool]:
    """buddyinfo_facts gives one verdict per order; older shapes a single bool."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, dict):
        value = value.get(order, value.get(str(order)))
        return None if value is None else bool(value)
    if isinstance(value, (list, tuple)) and 0 <= order < len(value):
        return None if value[order] is None else bool(value[order])
    return None


def _host_order(findings: t.List[t.Dict[str, t.Any]], default: int) -> int:
    # A logged failure of a higher order is the order that matters on that host.
    orders = [int(f["numbers"]["order"]) for f in findings
              if isinstance(f.get("numbers"), dict) and isinstance(f["numbers"].get("order"), int)]
    return max([default] + orders)


def shape_host(name: str, hostvars: t.Mapping[str, t.Any], order: int = 4,
               baseline: t.Optional[t.Mapping[str, t.Any]] = None) -> t.Dict[str, t.Any]:
    """One report row from one host's variables."""
    facts = hostvars.get("ansible_facts") or {}
    buddy = facts.get("memfrag_buddyinfo") or {}
    verdict = hostvars.get("memfrag_verdict") or {}
    findings = [f for f in (hostvars.get("memfrag_findings") or []) if isinstance(f, dict)]
    severity = verdict.get("severity") if verdict.get("severity") in SEVERITY_VALUE else "no_data"
    host_order = _host_order(findings, order)
    page_size = int(buddy.get("page_size") or 4096)

    log = hostvars.get("memfrag_log_counts") or {}
    counts = dict((k, int(v)) for k, v in (log.get("counts") or {}).items())
    last_seen = dict(log.get("last_seen") or {})

    current = dict((_norm_tunable(k), v) for k, v in (buddy.get("tunables") or {}).items())
    wanted = dict((_norm_tunable(k), v) for k, v in (baseline or {}).items())
    tunables = []
    for tname in sorted(set(current) | set(wanted)):
        row = {"name": tname, "current": None if tname not in current else _norm_value(current[tname]),
               "baseline": None if tname not in wanted else _norm_value(wanted[tname])}
        row["differs"] = row["baseline"] is not None and row["current"] != row["baseline"]
        tunables.append(row)

    reclaim = hostvars.get("memfrag_reclaim")
    return {
        "host": name,
        "severity": severity,
        "summary": verdict.get("summary") or ("no diagnosis: host unreachable, failed, or not diagnosed"
                                              if severity == "no_data" else ""),
        "order": host_order,
        "page_size": page_size,
        "kernel": buddy.get("kernel_release") or hostvars.get("ansible_kernel"),
        "zones": [shape_zone(z, page_size, host_order) for z in buddy.get("zones") or [] if isinstance(z, dict)],
        "findings": findings,
        "log_counts": counts if log else None,
        "log_last_seen": last_seen,
        "tunables": tunables,
        "tunables_off_baseline": sum(1 for r in tunables if r["differs"]),
        "reclaim": reclaim if isinstance(reclaim, dict) else None,
        "xfs_files": _xfs_files(facts.get("memfrag_xfs_files") or hostvars.get("memfrag_xfs_files")),
    }


def _xfs_files(data: t.Any) -> t.Optional[t.Dict[str, t.Any]]:
    """The worst XFS files of a host (memfrag_xfs_files of xfs_extent_scan or the diagnose XFS scan), or None."""
    if not isinstance(data, dict) or not data.get("scanned"):
        return None
    files = [dict((key, item.get(key)) for key in ("path", "extents", "alloc_bytes", "alloc_order"))
             for item in data.get("files") or [] if isinstance(item, dict)]
    return {"files": files[:5], "found": data.get("found"), "stopped_early": bool(data.get("stopped_early"))}


def fleet_report(hostvars: t.Mapping[str, t.Any], hosts: t.Iterable[str], order: int = 4,
                 baseline: t.Optional[t.Mapping[str, t.Any]] = None, generated: str = "") -> t.Dict[str, t.Any]:
    """The whole report: rows sorted worst first (then by name) and a count per severity."""
    rows = []
    for name in hosts:
        try:
            vars_ = hostvars[name]
        except KeyError:
            vars_ = {}
        host_baseline = baseline
        if baseline is None and hasattr(vars_, "get"):
            # The baseline this host was tuned to (sysctl_tuning role), or one the inventory states.
            host_baseline = vars_.get("memfrag_baseline") or vars_.get("sysctl_tuning_baseline")
        rows.append(shape_host(name, vars_ if hasattr(vars_, "get") else {}, order, host_baseline))
    rows.sort(key=lambda r: (-SEVERITY_RANK.get(r["severity"], SEVERITY_RANK["info"]), r["host"]))
    counts = dict((s, 0) for s in REPORT_SEVERITIES)
    for row in rows:
        counts[row["severity"]] += 1
    return {"generated": generated, "order": order, "hosts": rows, "counts": counts}


# ---------------------------------------------------------------- Prometheus text exposition

def _escape_label(value: t.Any) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: t.Any) -> str:
    value = float(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(int(value)) if value == int(value) and abs(value) < 1e15 else repr(value)


class _Families(object):
    def __init__(self) -> None:
        self.order = []  # type: t.List[str]
        self.meta = {}  # type: t.Dict[str, t.Tuple[str, str]]
        self.samples = {}  # type: t.Dict[str, t.List[str]]

    def add(self, name: str, mtype: str, doc: str, labels: t.Dict[str, t.Any], value: t.Any) -> None:
        if value is None:
            return
        if isinstance(value, bool):
            value = 1 if value else 0
        try:
            text = _number(value)
        except (TypeError, ValueError):
            return
        if name not in self.meta:
            self.order.append(name)
            self.meta[name] = (mtype, doc)
            self.samples[name] = []
        label_text = ",".join('%s="%s"' % (k, _escape_label(v)) for k, v in labels.items())
        self.samples[name].append("%s{%s} %s" % (name, label_text, text) if label_text else "%s %s" % (name, text))

    def text(self) -> str:
        out = []
        for name in self.order:
            mtype, doc = self.meta[name]
            out.append("# HELP %s %s" % (name, doc.replace("\\", "\\\\").replace("\n", "\\n")))
            out.append("# TYPE %s %s" % (name, mtype))
            out.extend(self.samples[name])
        return "\n".join(out) + "\n"


_TS = re.compile(r"^\d+(\.\d+)?$")


def _timestamp(value: t.Any) -> t.Optional[float]:
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


def prometheus_text(row: t.Dict[str, t.Any], generated_ts: t.Optional[float] = None) -> str:
    """Prometheus text exposition (format 0.0.4) of one host's report row."""
    fam = _Families()
    sev = row["severity"]
    fam.add("memfrag_up", "gauge", "1 when the host was diagnosed in the last run, 0 when it had no data.", {},
            0 if sev == "no_data" else 1)
    if sev != "no_data":
        fam.add("memfrag_verdict_severity", "gauge", "Host verdict: 0 ok, 1 warning, 2 critical.", {}, SEVERITY_VALUE[sev])
    findings_by = {}  # type: t.Dict[str, int]
    for f in row["findings"]:
        findings_by[str(f.get("severity"))] = findings_by.get(str(f.get("severity")), 0) + 1
    for severity in ("critical", "warning", "info"):
        if sev != "no_data":
            fam.add("memfrag_findings", "gauge", "Findings of the last diagnosis by severity.", {"severity": severity},
                    findings_by.get(severity, 0))
    for zone in row["zones"]:
        zl = {"node": zone["node"], "zone": zone["zone"]}
        for o, blocks in enumerate(zone["free_blocks"]):
            fam.add("memfrag_free_blocks", "gauge", "Free blocks of 2^order pages (/proc/buddyinfo).",
                    dict(zl, order=o), blocks)
        for o, nbytes in enumerate(zone["free_bytes_per_order"]):
            fam.add("memfrag_free_bytes", "gauge", "Free bytes held in blocks of exactly this order.",
                    dict(zl, order=o), nbytes)
        ol = dict(zl, order=row["order"])
        fam.add("memfrag_free_bytes_at_or_above_order", "gauge",
                "Free bytes in blocks of at least the order that matters.", ol, zone["free_bytes_at_or_above_order"])
        fam.add("memfrag_fragmentation_index", "gauge",
                "Kernel fragmentation index at the order that matters (-1: a block is free).", ol, zone["fragmentation_index"])
        fam.add("memfrag_unusable_index", "gauge",
                "Share of free memory unusable for the order that matters (kernel unusable_free_index).", ol, zone["unusable_index"])
        fam.add("memfrag_largest_free_order", "gauge", "Highest order with a free block (-1: none).", zl,
                zone["largest_free_order"])
        fam.add("memfrag_watermark_ok", "gauge", "1 when the zone is above its watermark for the order that matters.",
                ol, zone["watermark_ok"])
    if row["log_counts"] is not None:
        for kind in sorted(set(KINDS) | set(row["log_counts"])):
            fam.add("memfrag_kernel_log_events", "gauge",
                    "Kernel log events in the scan window (allocation deadlocks, failures, stalls, hung tasks, OOM kills).",
                    {"kind": kind}, row["log_counts"].get(kind, 0))
        for kind, seen in sorted(row["log_last_seen"].items()):
            fam.add("memfrag_kernel_log_last_seen_timestamp_seconds", "gauge",
                    "When the newest event of this kind was logged.", {"kind": kind}, _timestamp(seen))
    for tun in row["tunables"]:
        for which, mname in (("current", "memfrag_vm_tunable"), ("baseline", "memfrag_vm_tunable_baseline")):
            value = tun[which]
            if value is not None and re.match(r"^-?\d+(\.\d+)?$", value):
                fam.add(mname, "gauge", "vm sysctl value (%s)." % which, {"name": tun["name"]}, float(value))
        if tun["baseline"] is not None:
            fam.add("memfrag_vm_tunable_off_baseline", "gauge", "1 when the running value differs from the baseline.",
                    {"name": tun["name"]}, tun["differs"])
    reclaim = row["reclaim"]
    if reclaim:
        fam.add("memfrag_reclaim_needed", "gauge", "1 when the last reclaim run judged action needed.", {},
                bool(reclaim.get("needed")))
        if reclaim.get("target_met") is not None:
            fam.add("memfrag_reclaim_target_met", "gauge", "1 when the last reclaim reached its target.", {},
                    bool(reclaim.get("target_met")))
        for action, detail in zip(_reclaim_actions(reclaim), _reclaim_details(reclaim)):
            fam.add("memfrag_reclaim_action", "gauge",
                    "Steps of the last reclaim run: 1 when the step changed the host, 0 when refused or a no-op.",
                    {"action": action}, bool(detail.get("changed", True)) and not detail.get("refused"))
        for stage in ("before", "after"):
            fam.add("memfrag_reclaim_high_order_bytes", "gauge",
                    "Free bytes at or above the reclaim order in the judged zones, before and after the last reclaim run.",
                    {"stage": stage}, reclaim.get(stage + "_high_order_bytes"))
    if generated_ts is not None:
        fam.add("memfrag_report_timestamp_seconds", "gauge", "When this report was generated.", {}, generated_ts)
    return fam.text()


def _reclaim_details(reclaim: t.Dict[str, t.Any]) -> t.List[t.Dict[str, t.Any]]:
    actions = reclaim.get("actions") or []
    return [a if isinstance(a, dict) else {} for a in (actions if isinstance(actions, list) else [actions])]


def _reclaim_actions(reclaim: t.Dict[str, t.Any]) -> t.List[str]:
    actions = reclaim.get("actions") or []
    names = []
    for action in actions if isinstance(actions, list) else [actions]:
        if isinstance(action, dict):
            action = action.get("name") or action.get("action") or action.get("module") or "?"
        names.append(str(action))
    return names


# ---------------------------------------------------------------- HTML

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;background:#fafafa}
h1{font-size:1.4em;margin:0 0 .3em} .meta{color:#666;margin-bottom:1em}
table.fleet{border-collapse:collapse;width:100%;background:#fff}
table.fleet>thead th{position:sticky;top:0;background:#eee;text-align:left;padding:.4em;border-bottom:2px solid #ccc}
tr.host>td{vertical-align:top;padding:.5em .4em;border-bottom:1px solid #ddd}
.sev{display:inline-block;padding:.1em .5em;border-radius:3px;color:#fff;font-weight:600;text-transform:uppercase;font-size:.8em}
.sev-critical{background:#c0392b}.sev-warning{background:#d68910}.sev-ok{background:#1e8449}.sev-no_data{background:#7f8c8d}
tr.host.critical{background:#fdf0ef}tr.host.warning{background:#fef9ee}tr.host.no_data{background:#f2f3f4}
.zone{display:inline-block;margin:0 .8em .4em 0;font-size:.85em}
.zone svg{display:block} .zone .cap{color:#555}
table.mini{border-collapse:collapse;font-size:.85em} table.mini td,table.mini th{padding:0 .5em 0 0;text-align:left}
.off{color:#c0392b;font-weight:600} .muted{color:#888} ul.find{margin:.3em 0 0 1em;padding:0;font-size:.85em}
.counts span{margin-right:1em}
"""

_BAR_LOW = "#c0392b"   # orders below the one that matters: free, but unusable for it
_BAR_HIGH = "#2e86c1"  # orders at or above it


def _human_bytes(nbytes: t.Optional[float]) -> str:
    return format_bytes(nbytes, none="-")


def zone_chart(zone: t.Dict[str, t.Any], order: int) -> str:
    """A small inline SVG bar chart: free bytes per order (share of the zone's free memory)."""
    per_order = zone["free_bytes_per_order"]
    n = max(len(per_order), 1)
    bar_w, gap, height, label_h = 10, 2, 48, 12
    width = n * (bar_w + gap)
    total = float(sum(per_order)) or 1.0
    label = html.escape("node %d %s" % (zone["node"], zone["zone"]))
    full_h = height + label_h
    parts = ['<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" role="img" '
             'aria-label="free memory per order, %s">' % (width, full_h, width, full_h, label)]
    parts.append('<line x1="0" y1="%d" x2="%d" y2="%d" stroke="#999" stroke-width="1"/>' % (height, width, height))
    for o, nbytes in enumerate(per_order):
        h = 0 if nbytes <= 0 else max(1, int(round(height * nbytes / total)))
        x = o * (bar_w + gap)
        parts.append('<rect class="bar" x="%d" y="%d" width="%d" height="%d" fill="%s"><title>order %d: %d blocks, %s</title></rect>'
                     % (x, height - h, bar_w, h, _BAR_HIGH if o >= order else _BAR_LOW, o, zone["free_blocks"][o],
                        html.escape(_human_bytes(nbytes))))
        if o % 2 == 0 or n <= 11:
            parts.append('<text x="%d" y="%d" font-size="8" text-anchor="middle" fill="#555">%d</text>'
                         % (x + bar_w // 2, height + label_h - 2, o))
    parts.append("</svg>")
    return "".join(parts)


def _fmt_index(value: t.Optional[float]) -> str:
    if value is None:
        return "-"
    if value < 0:
        return "%.3f (block free)" % value
    return "%.3f" % value


def _host_row(row: t.Dict[str, t.Any]) -> str:
    e = html.escape
    sev = row["severity"]
    cells = []
    kernel = (' <span class="muted">%s</span>' % e(str(row["kernel"]))) if row.get("kernel") else ""
    cells.append('<td class="name"><strong>%s</strong>%s<br><span class="sev sev-%s">%s</span><br><span class="summary">%s</span></td>'
                 % (e(row["host"]), kernel, e(sev), e(sev.replace("_", " ")), e(row["summary"])))
    zones = []
    for zone in row["zones"]:
        zones.append('<div class="zone" data-node="%d" data-zone="%s">%s<div class="cap">node %d %s: %s free; '
                     'fragmentation index @%d: %s; unusable: %s; largest order %s%s</div></div>'
                     % (zone["node"], e(zone["zone"]), zone_chart(zone, row["order"]), zone["node"], e(zone["zone"]),
                        e(_human_bytes(zone["free_bytes"])), row["order"], e(_fmt_index(zone["fragmentation_index"])),
                        "-" if zone["unusable_index"] is None else "%.0f%%" % (100 * zone["unusable_index"]),
                        e(str(zone["largest_free_order"])),
                        "" if zone["watermark_ok"] in (None, True) else '; <span class="off">below watermark</span>'))
    cells.append('<td class="zones">%s</td>' % ("".join(zones) or '<span class="muted">no buddyinfo</span>'))
    if row["log_counts"] is None:
        logs = '<span class="muted">not scanned</span>'
    else:
        items = []
        for kind in sorted(set(KINDS) | set(row["log_counts"])):
            count = row["log_counts"].get(kind, 0)
            seen = row["log_last_seen"].get(kind)
            items.append('<tr class="log%s"><th>%s</th><td>%d</td><td class="muted">%s</td></tr>'
                         % (" off" if count else "", e(kind), count, e(str(seen)) if seen else ""))
        logs = '<table class="mini">%s</table>' % "".join(items)
    xfs = row.get("xfs_files")
    if xfs and xfs["files"]:
        logs += '<div class="xfs">XFS files with the most extents%s:<ul class="find">%s</ul></div>' % (
            " (scan stopped early)" if xfs["stopped_early"] else "",
            "".join("<li>%s: %s extents (map order %s)</li>" % (
                e(str(item["path"])), e(str(item["extents"])), e(str(item["alloc_order"]))) for item in xfs["files"]))
    cells.append('<td class="logs">%s</td>' % logs)
    tun = []
    for tunable in row["tunables"]:
        tun.append('<tr class="%s"><th>%s</th><td>%s</td><td class="muted">%s</td></tr>'
                   % ("off" if tunable["differs"] else "", e(tunable["name"]),
                      e("-" if tunable["current"] is None else tunable["current"]),
                      e("" if tunable["baseline"] is None else "baseline " + tunable["baseline"])))
    cells.append('<td class="tunables">%s</td>' % ('<table class="mini">%s</table>' % "".join(tun) if tun
                                                   else '<span class="muted">-</span>'))
    reclaim = row["reclaim"]
    if not reclaim:
        rec = '<span class="muted">not run</span>'
    else:
        steps = []
        for action, detail in zip(_reclaim_actions(reclaim), _reclaim_details(reclaim)):
            note = detail.get("summary") or ("refused: %s" % detail["refused"] if detail.get("refused") else "")
            steps.append("<li>%s%s</li>" % (e(action), (": " + e(str(note))) if note else ""))
        gain = ""
        if isinstance(reclaim.get("before_high_order_bytes"), (int, float)) and \
                isinstance(reclaim.get("after_high_order_bytes"), (int, float)):
            gain = "<br>order &ge; %s free: %s &rarr; %s" % (
                e(str(reclaim.get("order", ""))), e(_human_bytes(reclaim["before_high_order_bytes"])),
                e(_human_bytes(reclaim["after_high_order_bytes"])))
        rec = '%s, target %s%s%s<ul class="find">%s</ul>%s' % (
            "needed" if reclaim.get("needed") else "not needed",
            "met" if reclaim.get("target_met") else '<span class="off">not met</span>',
            " (check mode)" if reclaim.get("check_mode") else "", gain, "".join(steps),
            ('<span class="muted">%s</span>' % e(str(reclaim["reason"]))) if reclaim.get("reason") else "")
    cells.append('<td class="reclaim">%s</td>' % rec)
    if row["findings"]:
        cells[0] = cells[0][:-5] + '<ul class="find">%s</ul></td>' % "".join(
            '<li class="%s">%s</li>' % (e(str(f.get("severity"))), e(str(f.get("message")))) for f in row["findings"][:6])
    return '<tr class="host %s" data-host="%s" data-severity="%s">%s</tr>' % (e(sev), e(row["host"]), e(sev), "".join(cells))


def render_html(report: t.Dict[str, t.Any], title: str = "memfrag fleet report") -> str:
    """The whole report as one self-contained HTML document (no scripts, no external resources)."""
    e = html.escape
    counts = " ".join('<span class="count-%s">%s: %d</span>' % (e(s), e(s.replace("_", " ")), n)
                      for s, n in report["counts"].items())
    rows = "\n".join(_host_row(row) for row in report["hosts"])
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">"
            "<title>%s</title><style>%s</style></head><body>\n<h1>%s</h1>\n"
            "<div class=\"meta\">generated %s &middot; %d hosts &middot; order that matters: %d "
            "(bars: free bytes per order; <span style=\"color:%s\">red</span> below it, <span style=\"color:%s\">blue</span> usable)"
            "<div class=\"counts\">%s</div></div>\n"
            "<table class=\"fleet\"><thead><tr><th>host</th><th>free memory per order, per zone</th>"
            "<th>kernel log</th><th>vm tunables</th><th>reclaim</th></tr></thead>\n<tbody>\n%s\n</tbody></table>\n"
            "</body></html>\n") % (e(title), _CSS, e(title), e(str(report.get("generated") or "")), len(report["hosts"]),
                                   int(report["order"]), _BAR_LOW, _BAR_HIGH, counts, rows)
