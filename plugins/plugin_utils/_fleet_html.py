# -*- coding: utf-8 -*-
# Copyright: memfrag.linux contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet report as one self-contained HTML page: inline CSS and SVG, no script, nothing fetched (a
Content-Security-Policy forbids it), usable at 10,000 hosts.

The page opens on the fleet overview (hosts by severity, the worst hosts, the distribution of free memory at
the order that matters, kernel-log events by kind), which fits the first screen whatever the fleet size; the
full table follows, one row per host, worst first, one section per severity. Rows are kept small (a chart per
zone is two SVG paths, info findings stay in report.json) because at fleet scale the page's size is the
reader's wait. Everything from the hosts (names, kernel-log text, findings) is escaped.
"""

from __future__ import annotations

import datetime
import html
import typing as t

from ansible_collections.memfrag.linux.plugins.module_utils._units import format_bytes
from ansible_collections.memfrag.linux.plugins.plugin_utils._fleet_prometheus import reclaim_steps
from ansible_collections.memfrag.linux.plugins.plugin_utils._fleet_report import (
    LOG_KINDS,
    REPORT_SEVERITIES,
    fleet_overview,
    timestamp,
)

__all__ = ["iter_html", "render_html", "zone_chart"]

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"

_BAR_LOW = "#c0392b"   # orders below the one that matters: free, but unusable for it
_BAR_HIGH = "#2e86c1"  # orders at or above it
_SEV_COLOR = {"critical": "#c0392b", "warning": "#d68910", "no_data": "#7f8c8d", "ok": "#1e8449"}
_FINDINGS_SHOWN = 3  # critical and warning findings per row; the rest (and every info finding) is in report.json

_CSS = """
body{font:14px/1.35 system-ui,sans-serif;margin:1em 1.5em;color:#222;background:#fafafa}
h1{font-size:1.35em;margin:0 0 .2em}h2{font-size:1em;margin:0 0 .4em}.meta{color:#555;margin:0 0 .8em}
a{color:inherit}
#overview{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,1.5fr) minmax(0,1.2fr) minmax(0,1fr);gap:.8em;
margin-bottom:1.2em}
@media (max-width:1100px){#overview{grid-template-columns:minmax(0,1fr) minmax(0,1fr)}}
.card{background:#fff;border:1px solid #ddd;border-radius:4px;padding:.6em .8em;min-width:0}
.sevbar{display:flex;height:22px;border-radius:3px;overflow:hidden;margin:.2em 0 .5em;background:#eee}
.sevbar span{display:block;min-width:3px}
ul.legend{list-style:none;margin:0;padding:0}ul.legend li{margin:.15em 0}
.sev{display:inline-block;padding:0 .45em;border-radius:3px;color:#fff;font-weight:600;text-transform:uppercase;
font-size:.75em;line-height:1.6}
.sev-critical{background:#c0392b}.sev-warning{background:#d68910}.sev-ok{background:#1e8449}.sev-no_data{background:#7f8c8d}
table.t{border-collapse:collapse;width:100%;font-size:.85em}table.t th,table.t td{text-align:left;padding:.1em .4em .1em 0;
white-space:nowrap;overflow:hidden;text-overflow:ellipsis;max-width:18em}table.t td.n{text-align:right}
.hist text{font-size:9px;fill:#444}.hist .c{font-size:10px;fill:#222}
.note{color:#666;font-size:.8em;margin:.3em 0 0}
/* The host list is a grid of rows, not a table: with content-visibility the browser lays out only the rows on
   screen (10,000 hosts: seconds, against a minute for a table, which must lay out every row). */
.fleet{background:#fff;border:1px solid #ddd}
.row{display:grid;grid-template-columns:22% 42% 12% 14% 10%}.row>div{padding:.35em .4em;min-width:0;overflow-wrap:anywhere}
.row.head{position:sticky;top:0;background:#eee;font-weight:600;border-bottom:2px solid #ccc;z-index:1}
.row.sh{display:block;padding:.5em .4em .2em;background:#f4f4f4;border-bottom:1px solid #ccc;font-weight:600}
.host{content-visibility:auto;contain-intrinsic-size:auto 110px;border-bottom:1px solid #e3e3e3;scroll-margin-top:4em}
.host.critical{background:#fdf0ef}.host.warning{background:#fef9ee}.host.no_data{background:#f2f3f4}
.k{color:#777;font-size:.85em}.sum{font-size:.9em}ul.f{margin:.2em 0 0 1.1em;padding:0;font-size:.82em}
.z{display:inline-block;vertical-align:top;margin:0 .7em .3em 0;font-size:.78em;color:#444;width:150px}
.z svg{display:block;height:40px;border-bottom:1px solid #999}.z .lo{fill:#c0392b}.z .hi{fill:#2e86c1}
.off{color:#c0392b;font-weight:600}.muted{color:#888}.small{font-size:.82em}
"""


def _e(value: t.Any) -> str:
    return html.escape(str(value), quote=True)


def _human(nbytes: t.Optional[float]) -> str:
    return format_bytes(nbytes, none="-")


def _when(value: t.Any) -> str:
    """A last-seen time as ``YYYY-MM-DD HH:MM UTC`` (the raw text when it is not a time)."""
    seconds = timestamp(value)
    if seconds is None:
        return str(value)
    try:
        return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    except (OverflowError, OSError, ValueError):
        return str(value)


# ---------------------------------------------------------------- per host

def zone_chart(zone: t.Mapping[str, t.Any], order: int) -> str:
    """Free bytes per order as bars (share of the zone's free memory): one SVG, one path per colour.

    The tooltip lists the free blocks of every order; orders below ``order`` are red (free but unusable for
    it), the rest blue. An order without free blocks has no bar."""
    per_order = zone["free_bytes_per_order"]
    bar_width, step, height = 10, 12, 40
    width = max(len(per_order), 1) * step
    total = float(sum(per_order)) or 1.0
    paths = {"lo": [], "hi": []}  # type: t.Dict[str, t.List[str]]
    for o, nbytes in enumerate(per_order):
        if nbytes <= 0:
            continue
        h = max(1, int(round(height * nbytes / total)))
        paths["hi" if o >= order else "lo"].append("M%d %dv-%dh%dv%d" % (o * step, height, h, bar_width, h))
    body = "".join('<path class="%s" d="%s"/>' % (cls, "".join(d)) for cls, d in sorted(paths.items()) if d)
    return ('<svg width="%d" viewBox="0 0 %d %d"><title>free blocks by order 0-%d: %s</title>%s</svg>'
            % (width, width, height, len(per_order) - 1, " ".join(str(b) for b in zone["free_blocks"]), body))


def _zone(zone: t.Mapping[str, t.Any], order: int) -> str:
    unusable, index = zone["unusable_index"], zone["fragmentation_index"]
    return ('<div class="z" data-zone="%s" data-node="%d">%s<b>node %d %s</b>: %s free, %s at order &ge;%d%s%s; '
            'largest order %s%s</div>'
            % (_e(zone["zone"]), zone["node"], zone_chart(zone, order), zone["node"], _e(zone["zone"]),
               _e(_human(zone["free_bytes"])), _e(_human(zone["free_bytes_at_or_above_order"])), order,
               "" if unusable is None else " (%.0f%% unusable)" % (100 * unusable),
               # -1 means a block of that order is free: only a failing zone's index says something.
               "" if index is None or index < 0 else "; frag. index %.3f" % index,
               _e(zone["largest_free_order"]),
               "" if zone["watermark_ok"] in (None, True) else '; <span class="off">below watermark</span>'))


def _logs(row: t.Mapping[str, t.Any]) -> str:
    items = []
    counts = row["log_counts"] or {}
    for kind in sorted(set(LOG_KINDS) | set(counts)):
        count = counts.get(kind, 0)
        if count:
            seen = row["log_last_seen"].get(kind)
            items.append('<span class="off">%s %d</span>%s' % (_e(kind), count,
                                                               (' <span class="k">last %s</span>' % _e(_when(seen))) if seen else ""))
    text = "<br>".join(items) if items else '<span class="muted">%s</span>' % (
        "not scanned" if row["log_counts"] is None else "no events")
    xfs = row.get("xfs_files")
    if xfs and xfs["files"]:
        text += '<div>XFS files with the most extents%s:<ul class="f">%s</ul></div>' % (
            " (scan stopped early)" if xfs["stopped_early"] else "",
            "".join("<li>%s: %s extents (map order %s)</li>" % (_e(item["path"]), _e(item["extents"]), _e(item["alloc_order"]))
                    for item in xfs["files"]))
    return text


def _tunables(row: t.Mapping[str, t.Any], usual: t.Mapping[str, str]) -> str:
    """The tunables that stand out: off the baseline (red), or not the value most of the fleet runs."""
    items = []
    for r in row["tunables"]:
        if r["differs"]:
            items.append('<span class="off">%s %s</span> <span class="k">baseline %s</span>'
                         % (_e(r["name"]), _e("-" if r["current"] is None else r["current"]), _e(r["baseline"])))
        elif r["current"] is not None and r["current"] != usual.get(r["name"]):
            items.append('%s %s <span class="k">fleet %s</span>' % (_e(r["name"]), _e(r["current"]), _e(usual.get(r["name"], "-"))))
    if items:
        return '<div class="small">%s</div>' % "<br>".join(items)
    return '<span class="muted">%s</span>' % ("as the fleet" if row["tunables"] else "-")


def _reclaim(row: t.Mapping[str, t.Any]) -> str:
    reclaim = row["reclaim"]
    if not reclaim:
        return '<span class="muted">not run</span>'
    steps = []
    for action, detail in reclaim_steps(reclaim):
        note = detail.get("summary") or ("refused: %s" % detail["refused"] if detail.get("refused") else "")
        steps.append("<li>%s%s</li>" % (_e(action), (": " + _e(note)) if note else ""))
    gain = ""
    before, after = reclaim.get("before_high_order_bytes"), reclaim.get("after_high_order_bytes")
    if isinstance(before, (int, float)) and isinstance(after, (int, float)):
        gain = "<br>order &ge; %s free: %s &rarr; %s" % (_e(reclaim.get("order", "")), _e(_human(before)), _e(_human(after)))
    return '<div class="small">%s, target %s%s%s<ul class="f">%s</ul>%s</div>' % (
        "needed" if reclaim.get("needed") else "not needed",
        "met" if reclaim.get("target_met") else '<span class="off">not met</span>',
        " (check mode)" if reclaim.get("check_mode") else "", gain, "".join(steps),
        ('<span class="muted">%s</span>' % _e(reclaim["reason"])) if reclaim.get("reason") else "")


def _host_row(index: int, row: t.Mapping[str, t.Any], usual: t.Mapping[str, str]) -> str:
    sev = row["severity"]
    # The verdict's summary is the first serious finding's message: not shown twice.
    serious = [f for f in row["findings"] if f.get("severity") in ("critical", "warning")
               and not row["summary"].startswith(str(f.get("message")))]
    more = len(serious) - _FINDINGS_SHOWN  # info findings are never shown: report.json has them all
    findings = "".join('<li class="%s">%s</li>' % (_e(f.get("severity")), _e(f.get("message")))
                       for f in serious[:_FINDINGS_SHOWN])
    if findings:
        findings = '<ul class="f">%s%s</ul>' % (findings, '<li class="muted">%d more in report.json</li>' % more
                                                if more > 0 else "")
    zones = "".join(_zone(z, row["order"]) for z in row["zones"]) or '<span class="muted">no buddyinfo</span>'
    return ('<div class="row host %s" id="h%d" role="row" data-host="%s" data-severity="%s"><div role="cell"><b>%s</b> '
            '<span class="k">%s</span><br><span class="sev sev-%s">%s</span> <span class="sum">%s</span>%s</div>'
            '<div role="cell">%s</div><div role="cell" class="small">%s</div><div role="cell">%s</div>'
            '<div role="cell">%s</div></div>\n'
            % (_e(sev), index, _e(row["host"]), _e(sev), _e(row["host"]), _e(row["kernel"] or ""), _e(sev),
               _e(sev.replace("_", " ")), _e(row["summary"]), findings, zones, _logs(row), _tunables(row, usual), _reclaim(row)))


# ---------------------------------------------------------------- overview

def _pct(part: int, whole: int) -> str:
    return "%.1f%%" % (100.0 * part / whole) if whole else "-"


def _severity_card(report: t.Mapping[str, t.Any]) -> str:
    counts, total = report["counts"], len(report["hosts"])
    ov = report["overview"]
    segments = "".join('<span style="width:%.3f%%;background:%s" title="%s: %d"></span>'
                       % (100.0 * n / total, _SEV_COLOR[s], _e(s.replace("_", " ")), n)
                       for s, n in counts.items() if n and total)
    legend = "".join('<li><a href="#sev-%s"><span class="sev sev-%s">%s</span></a> <b>%d</b> <span class="k">%s</span></li>'
                     % (_e(s), _e(s), _e(s.replace("_", " ")), n, _pct(n, total)) for s, n in counts.items())
    rec = ov["reclaim"]
    notes = ["vm tunables off the baseline on <b>%d</b> hosts" % ov["tunables_off_baseline_hosts"],
             "kernel logs scanned on %d of %d hosts with data" % (ov["log_scanned_hosts"], ov["hosts_with_data"])]
    if rec["run"]:
        notes.append("reclaim ran on %d hosts: needed on %d, target met on %d, <span class=\"off\">missed on %d</span>"
                     % (rec["run"], rec["needed"], rec["target_met"], rec["target_missed"]))
    return ('<div class="card" id="ov-severity"><h2>Hosts by severity</h2><div class="sevbar">%s</div>'
            '<ul class="legend">%s</ul><p class="note">%s</p></div>' % (segments, legend, "<br>".join(notes)))


def _worst_card(report: t.Mapping[str, t.Any], index_of: t.Mapping[str, int]) -> str:
    rows = []
    for w in report["overview"]["worst"]:
        rows.append('<tr><td><a href="#h%d">%s</a></td><td><span class="sev sev-%s">%s</span></td><td class="n">%s</td>'
                    '<td title="%s">%s</td></tr>'
                    % (index_of[w["host"]], _e(w["host"]), _e(w["severity"]), _e(w["severity"]),
                       _e(_human(w["free_bytes_at_or_above_order"])), _e(w["summary"]), _e(w["summary"])))
    body = ('<table class="t"><tr><th>host</th><th>verdict</th><th class="n">free &ge; order</th><th>why</th></tr>%s</table>'
            % "".join(rows)) if rows else '<p class="muted">no host has a warning or a critical finding</p>'
    return '<div class="card" id="ov-worst"><h2>Worst hosts</h2>%s</div>' % body


def _histogram(bins: t.Sequence[t.Tuple[str, int, str]], label: str) -> str:
    """Hosts per bin as vertical bars with the count above each and the bin's label below."""
    width, height, top, bottom = 300, 110, 14, 16
    step = width / float(max(len(bins), 1))
    most = float(max([n for _l, n, _c in bins] + [1]))
    parts = ['<svg class="hist" width="100%%" viewBox="0 0 %d %d" role="img" aria-label="%s"><title>%s</title>'
             % (width, height + top + bottom, _e(label), _e(label))]
    for i, (text, hosts, colour) in enumerate(bins):
        h = 0 if not hosts else max(1, int(round(height * hosts / most)))
        x = i * step
        parts.append('<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s"><title>%s: %d hosts</title></rect>'
                     '<text class="c" x="%.1f" y="%d" text-anchor="middle">%d</text>'
                     '<text x="%.1f" y="%d" text-anchor="middle">%s</text>'
                     % (x + 2, top + height - h, step - 4, h, colour, _e(text), hosts,
                        x + step / 2, top + height - h - 3, hosts, x + step / 2, top + height + bottom - 4, _e(text)))
    parts.append("</svg>")
    return "".join(parts)


def _short(nbytes: t.Optional[int]) -> str:
    return format_bytes(nbytes).replace(" ", "") if nbytes else "0"


def _distribution_card(report: t.Mapping[str, t.Any]) -> str:
    ov = report["overview"]
    order = ov["order"]
    free_bins = []
    for b in ov["free_at_order"]:
        if b["below_bytes"] == 1:
            text = "none"
        elif b["below_bytes"] is None:
            text = "\u2265" + _short(b["from_bytes"])
        else:
            text = "<" + _short(b["below_bytes"])
        # Red up to 64 MiB: below the diagnose role's default min_high_order_free_mb.
        free_bins.append((text, b["hosts"], _BAR_LOW if b["below_bytes"] is not None and b["below_bytes"] <= 64 << 20
                          else _BAR_HIGH))
    unusable = [("%d%%" % round(100 * b["from"]), b["hosts"], _BAR_LOW if b["from"] >= 0.75 else _BAR_HIGH)
                for b in ov["unusable_share"]]
    higher = dict((o["order"], o["hosts"]) for o in ov["orders"] if o["order"] != order)
    note = ""
    if higher:
        note = ('<p class="note">judged at a higher order after logged allocation failures: %s</p>'
                % ", ".join("order %d on %d hosts" % (o, n) for o, n in sorted(higher.items())))
    return ('<div class="card" id="ov-free"><h2>Free memory in blocks of order &ge; %d, hosts per range</h2>%s'
            '<h2>Share of free memory unusable at order %d, hosts per decile</h2>%s%s</div>'
            % (order, _histogram(free_bins, "hosts by free memory in blocks of order >= %d" % order), order,
               _histogram(unusable, "hosts by share of free memory unusable at order %d" % order), note))


def _log_card(report: t.Mapping[str, t.Any]) -> str:
    ov = report["overview"]
    rows = []
    for kind, entry in sorted(ov["log_events"].items(), key=lambda kv: (-kv[1]["events"], kv[0])):
        rows.append('<tr%s><td>%s</td><td class="n">%d</td><td class="n">%d</td><td>%s</td></tr>'
                    % (' class="off"' if entry["events"] else "", _e(kind), entry["events"], entry["hosts"],
                       _e(_when(entry["last_seen"]) if entry["last_seen"] else "-")))
    return ('<div class="card" id="ov-logs"><h2>Kernel log events by kind</h2><table class="t"><tr><th>kind</th>'
            '<th class="n">events</th><th class="n">hosts</th><th>last seen</th></tr>%s</table>'
            '<p class="note">scan window of the diagnose role; %d hosts scanned</p></div>'
            % ("".join(rows), ov["log_scanned_hosts"]))


# ---------------------------------------------------------------- page

def _head(report: t.Mapping[str, t.Any], title: str) -> str:
    ov = report["overview"]
    return ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            '<meta http-equiv="Content-Security-Policy" content="%s">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            '<title>%s</title><style>%s</style></head><body>\n<h1>%s</h1>\n'
            '<p class="meta">generated %s &middot; %d hosts, %d with data &middot; order that matters: %d &middot; '
            '<a href="#hosts">all hosts</a> &middot; data: report.json, metrics/*.prom</p>\n'
            % (_e(CSP), _e(title), _CSS, _e(title), _e(report.get("generated") or "-"), len(report["hosts"]),
               ov["hosts_with_data"], int(report["order"])))


def iter_html(report: t.Mapping[str, t.Any], title: str = "memfrag fleet report") -> t.Iterator[str]:
    """The page piece by piece (a file takes them one by one: 10,000 rows never sit in memory as one string)."""
    for row in report["hosts"]:
        if row["severity"] not in REPORT_SEVERITIES:
            raise ValueError("unknown severity %r for host %r" % (row["severity"], row["host"]))
    if not report.get("overview"):  # a report.json of an earlier version
        report = dict(report, overview=fleet_overview(report["hosts"], int(report["order"])))
    index_of = dict((row["host"], i) for i, row in enumerate(report["hosts"]))
    usual = report["overview"].get("tunables_usual") or {}
    yield _head(report, title)
    yield '<section id="overview">%s%s%s%s</section>\n' % (
        _severity_card(report), _worst_card(report, index_of), _distribution_card(report), _log_card(report))
    yield ('<section id="hosts"><h2>All hosts, worst first</h2>\n<p class="note">vm tunables most hosts run: %s</p>\n'
           % (_e(", ".join("%s %s" % kv for kv in sorted(usual.items()))) or "-"))
    yield ('<div class="fleet" role="table" aria-label="all hosts"><div class="row head" role="row">'
           '<div role="columnheader">host</div><div role="columnheader">free memory per order, per zone (bars: orders '
           'from 0; <span style="color:%s">red</span> below the order that matters, <span style="color:%s">blue</span> '
           'at or above it)</div><div role="columnheader">kernel log</div><div role="columnheader">vm tunables off the '
           'baseline or the fleet&#39;s value</div><div role="columnheader">reclaim</div></div>\n' % (_BAR_LOW, _BAR_HIGH))
    current = None
    for i, row in enumerate(report["hosts"]):
        if row["severity"] != current:
            if current is not None:
                yield "</div>\n"
            current = row["severity"]
            yield '<div id="sev-%s" role="rowgroup"><div class="row sh" role="row"><div role="cell">%s: %d hosts</div></div>\n' % (
                _e(current), _e(current.replace("_", " ")), report["counts"].get(current, 0))
        yield _host_row(i, row, usual)
    if current is not None:
        yield "</div>\n"
    yield "</div></section>\n</body></html>\n"


def render_html(report: t.Mapping[str, t.Any], title: str = "memfrag fleet report") -> str:
    """The whole report as one self-contained HTML document (no scripts, no external resources)."""
    return "".join(iter_html(report, title))
